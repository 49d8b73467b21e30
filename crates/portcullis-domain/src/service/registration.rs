//! New accounts.

use super::{AuthService, ClientInfo, Initiator};
use crate::account::{NewAccount, NewUser, Role, User, UserId};
use crate::audit::AuditEvent;
use crate::error::AuthError;
use crate::password::Password;

/// A registration as submitted. [`NewAccount::parse`] parses it, reporting
/// every invalid field at once.
#[derive(Debug)]
pub struct RegistrationRequest {
    /// Desired username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Optional display name.
    pub full_name: Option<String>,
    /// The new password.
    pub password: Password,
}

impl AuthService {
    /// Creates an ordinary account. Counts as a credential check for the
    /// attempt limiter (per client address and per requested username).
    pub async fn register(
        &self,
        request: RegistrationRequest,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        self.limit_attempt(client.ip, &request.username).await?;
        self.insert_account(request, Role::User, None, client).await
    }

    /// Creates an account with the given role (the CLI uses this to make the
    /// first admin). Every invalid field is reported at once.
    pub async fn create_user(
        &self,
        request: RegistrationRequest,
        role: Role,
        initiator: &Initiator,
    ) -> Result<User, AuthError> {
        self.insert_account(request, role, initiator.actor_id, &initiator.client)
            .await
    }

    /// Creates the account; `actor_id` is who made it (`None`: the new
    /// user itself, or the command line).
    async fn insert_account(
        &self,
        request: RegistrationRequest,
        role: Role,
        actor_id: Option<UserId>,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        let NewAccount {
            username,
            email,
            full_name,
        } = NewAccount::parse(
            &request.username,
            &request.email,
            request.full_name.as_deref(),
            &request.password,
            &self.settings.password_policy,
        )
        .map_err(AuthError::Validation)?;
        self.ports.store.ensure_writable().await?;
        // The policy judged the NFKC form; that is also the form stored.
        let password_hash = self
            .ports
            .hasher
            .hash_password(&request.password.nfkc())
            .await?;
        let now = self.now();
        let user = User {
            id: UserId::random(),
            username,
            email,
            full_name,
            role,
            disabled: false,
            created_at: now,
        };
        let audit = self.audit_context(now, actor_id, client).record(
            Some(user.id),
            AuditEvent::UserRegistered {
                username: user.username.clone(),
                role,
            },
        );
        self.ports
            .store
            .insert_user(
                &NewUser {
                    user: user.clone(),
                    password_hash,
                },
                &audit,
            )
            .await?;
        Ok(user)
    }
}
