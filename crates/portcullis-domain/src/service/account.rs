//! The caller's own account: profile, password, deletion.

use super::{AuthService, ClientInfo, Principal, gone_is_invalid_token};
use crate::account::{ProfileChanges, User};
use crate::audit::AuditEvent;
use crate::error::{AuthError, FieldError, StoreError};
use crate::password::Password;

/// A password change as submitted.
#[derive(Debug)]
pub struct PasswordChangeRequest {
    /// The password in force, re-verified.
    pub current_password: Password,
    /// The new password, checked against the policy.
    pub new_password: Password,
}

/// Profile changes as submitted.
#[derive(Debug, Default)]
pub struct ProfileUpdateRequest {
    /// New email address.
    pub email: Option<String>,
    /// New display name; `Some(None)` clears it.
    pub full_name: Option<Option<String>>,
    /// The password in force: required (and re-verified) whenever `email`
    /// is present; ignored otherwise.
    pub current_password: Option<Password>,
}

impl AuthService {
    /// Changes the caller's email and/or display name.
    ///
    /// Changing the email re-authenticates: `current_password` is required
    /// and re-verified like a password change's, after the attempt limiter
    /// (per client address and the caller's username). Without that, any
    /// `profile` credential could change the address, and the 409 on a
    /// taken one answered an unthrottled, hash-free existence probe.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        request: ProfileUpdateRequest,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        let mut errors: Vec<FieldError> = Vec::new();
        let changes = ProfileChanges::parse(
            request.email.as_deref(),
            request.full_name.as_ref().map(Option::as_deref),
            &mut errors,
        );
        let reauthenticate_with = match (&request.email, request.current_password) {
            (None, _) => None,
            (Some(_), Some(password)) => Some(password),
            (Some(_), None) => {
                errors.push(FieldError::new(
                    "current_password",
                    "is required to change the email",
                ));
                None
            }
        };
        if !errors.is_empty() {
            return Err(AuthError::Validation(errors));
        }
        if let Some(password) = reauthenticate_with {
            self.limit_attempt(client.ip, principal.user.username.as_str())
                .await?;
            self.ports.store.ensure_writable().await?;
            self.reverify_password(principal, &password, "current_password")
                .await?;
        }
        if changes.email.is_none() && changes.full_name.is_none() {
            // Nothing to change, so nothing to write or audit.
            return Ok(principal.user.clone());
        }
        let now = self.now();
        let audit = self.own_record(
            now,
            principal,
            client,
            AuditEvent::ProfileUpdated {
                email: changes.email.is_some(),
                full_name: changes.full_name.is_some(),
            },
        );
        match self
            .ports
            .store
            .update_profile(principal.user.id, &changes, now, &audit)
            .await
        {
            Ok(user) => Ok(user),
            // The account vanished between authentication and update.
            Err(StoreError::NotFound) => Err(AuthError::InvalidToken),
            Err(error) => Err(error.into()),
        }
    }

    /// Changes the caller's password: the current one is re-verified, the new
    /// one must pass the policy, and every other session ends; the current
    /// session stays.
    pub async fn change_password(
        &self,
        principal: &Principal,
        request: PasswordChangeRequest,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let user = &principal.user;
        self.limit_attempt(client.ip, user.username.as_str())
            .await?;
        self.settings
            .password_policy
            .check_field(
                &request.new_password,
                "new_password",
                &user.username,
                &user.email,
            )
            .map_err(|error| AuthError::Validation(vec![error]))?;
        self.ports.store.ensure_writable().await?;
        self.reverify_password(principal, &request.current_password, "current_password")
            .await?;
        let hash = self
            .ports
            .hasher
            .hash_password(&request.new_password.nfkc())
            .await?;
        let now = self.now();
        let audit = self.own_record(now, principal, client, AuditEvent::PasswordChanged);
        self.ports
            .store
            .change_password(user.id, &hash, principal.session_id(), now, &audit)
            .await
            .map_err(gone_is_invalid_token)
    }

    /// Deletes the caller's account, its sessions and every credential of it,
    /// after re-verifying the password. The last enabled admin cannot delete
    /// itself ([`AuthError::LastAdmin`]).
    pub async fn delete_account(
        &self,
        principal: &Principal,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.limit_attempt(client.ip, principal.user.username.as_str())
            .await?;
        self.ports.store.ensure_writable().await?;
        self.reverify_password(principal, password, "password")
            .await?;
        self.ports
            .store
            .delete_user(
                principal.user.id,
                &self.own_record(self.now(), principal, client, AuditEvent::AccountDeleted),
            )
            .await
            .map_err(gone_is_invalid_token)
    }
}
