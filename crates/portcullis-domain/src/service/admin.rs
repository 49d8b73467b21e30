//! Administration of accounts (admin API and CLI) and health.

use super::AuthService;
use crate::account::{ProfileChanges, Role, User, UserId, Username};
use crate::admin::{AdminUserChanges, MAX_PAGE_SIZE, UserListQuery, UserPage};
use crate::error::AuthError;

/// An admin's changes as submitted.
#[derive(Debug, Default)]
pub struct AdminUserUpdate {
    /// Disable (true) or enable (false).
    pub disabled: Option<bool>,
    /// Roles: must name `user` or `admin`; containing `admin` makes an admin.
    pub roles: Option<Vec<String>>,
    /// New email address.
    pub email: Option<String>,
    /// New display name; `Some(None)` clears it.
    pub full_name: Option<Option<String>>,
}

impl AuthService {
    /// One page of users (admin). A cursor that is not one a listing
    /// returned is a validation error on `cursor`.
    pub async fn list_users(&self, mut query: UserListQuery) -> Result<UserPage, AuthError> {
        query.limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        query.search = query.search.filter(|s| !s.as_str().is_empty());
        Ok(self.ports.store.list_users(&query).await?)
    }

    /// One user by id (admin).
    pub async fn get_user(&self, id: UserId) -> Result<User, AuthError> {
        self.ports
            .store
            .find_user(id)
            .await?
            .ok_or(AuthError::NotFound)
    }

    /// Changes an account (admin). Disabling or demoting takes effect on the
    /// next request of every credential the user holds; the last enabled
    /// admin cannot be disabled or demoted.
    pub async fn admin_update_user(
        &self,
        id: UserId,
        update: AdminUserUpdate,
    ) -> Result<User, AuthError> {
        let mut errors = Vec::new();
        let role = match update.roles {
            None => None,
            Some(roles) => Role::parse_list(&roles, "roles")
                .map_err(|error| errors.push(error))
                .ok(),
        };
        let profile = ProfileChanges::parse(
            update.email.as_deref(),
            update.full_name.as_ref().map(Option::as_deref),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(AuthError::Validation(errors));
        }
        let changes = AdminUserChanges {
            disabled: update.disabled,
            role,
            email: profile.email,
            full_name: profile.full_name,
        };
        Ok(self
            .ports
            .store
            .admin_update_user(id, &changes, self.now())
            .await?)
    }

    /// Deletes an account (admin); the last enabled admin cannot be deleted.
    pub async fn admin_delete_user(&self, id: UserId) -> Result<(), AuthError> {
        Ok(self.ports.store.delete_user(id).await?)
    }

    /// Disables or enables an account by username (CLI).
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<User, AuthError> {
        let username = Username::parse(username).map_err(|e| AuthError::Validation(vec![e]))?;
        Ok(self
            .ports
            .store
            .set_disabled(&username, disabled, self.now())
            .await?)
    }

    /// Changes an account's role by username (CLI).
    pub async fn set_role(&self, username: &str, role: Role) -> Result<User, AuthError> {
        let username = Username::parse(username).map_err(|e| AuthError::Validation(vec![e]))?;
        Ok(self
            .ports
            .store
            .set_role(&username, role, self.now())
            .await?)
    }

    /// Succeeds when the user store can be read and could take a write
    /// within a short wait.
    pub async fn check_health(&self) -> Result<(), AuthError> {
        self.ports.store.check_health().await?;
        Ok(self.ports.store.ensure_writable().await?)
    }
}
