//! Administration of accounts (admin API and CLI) and health.

use super::{AuthService, Initiator};
use crate::account::{ProfileChanges, Role, User, UserId, Username};
use crate::admin::{AdminUserChanges, MAX_PAGE_SIZE, UserListQuery, UserPage};
use crate::audit::{AdminChangeSummary, AuditEvent, AuditRecord};
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
        initiator: &Initiator,
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
        let now = self.now();
        let audit = self.admin_record(
            now,
            initiator,
            Some(id),
            AdminChangeSummary {
                role: changes.role,
                disabled: changes.disabled,
                email: changes.email.is_some(),
                full_name: changes.full_name.is_some(),
            },
        );
        Ok(self
            .ports
            .store
            .admin_update_user(id, &changes, now, &audit)
            .await?)
    }

    /// Deletes an account (admin); the last enabled admin cannot be deleted.
    pub async fn admin_delete_user(
        &self,
        id: UserId,
        initiator: &Initiator,
    ) -> Result<(), AuthError> {
        let audit = self
            .audit_context(self.now(), initiator.actor_id, &initiator.client)
            .record(Some(id), AuditEvent::AccountDeleted);
        Ok(self.ports.store.delete_user(id, &audit).await?)
    }

    /// Disables or enables an account by username (CLI).
    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        initiator: &Initiator,
    ) -> Result<User, AuthError> {
        let username = Username::parse(username).map_err(|e| AuthError::Validation(vec![e]))?;
        let now = self.now();
        let audit = self.admin_record(
            now,
            initiator,
            None,
            AdminChangeSummary {
                disabled: Some(disabled),
                ..AdminChangeSummary::default()
            },
        );
        Ok(self
            .ports
            .store
            .set_disabled(&username, disabled, now, &audit)
            .await?)
    }

    /// Changes an account's role by username (CLI).
    pub async fn set_role(
        &self,
        username: &str,
        role: Role,
        initiator: &Initiator,
    ) -> Result<User, AuthError> {
        let username = Username::parse(username).map_err(|e| AuthError::Validation(vec![e]))?;
        let now = self.now();
        let audit = self.admin_record(
            now,
            initiator,
            None,
            AdminChangeSummary {
                role: Some(role),
                ..AdminChangeSummary::default()
            },
        );
        Ok(self
            .ports
            .store
            .set_role(&username, role, now, &audit)
            .await?)
    }

    fn admin_record(
        &self,
        now: time::OffsetDateTime,
        initiator: &Initiator,
        subject_id: Option<UserId>,
        changes: AdminChangeSummary,
    ) -> AuditRecord {
        self.audit_context(now, initiator.actor_id, &initiator.client)
            .record(subject_id, AuditEvent::AdminUserUpdated(changes))
    }

    /// Succeeds when the user store can be read and could take a write
    /// within a short wait.
    pub async fn check_health(&self) -> Result<(), AuthError> {
        self.ports.store.check_health().await?;
        Ok(self.ports.store.ensure_writable().await?)
    }
}
