//! Password logins and credential checks.

use super::{AuthService, ClientInfo, TokenGrant, TypedPasswordCheck};
use crate::account::{Role, User, Username};
use crate::audit::{AuditEvent, LoginCredential, LoginFailure};
use crate::error::AuthError;
use crate::password::Password;
use crate::scope::ScopeSet;

/// A password login (OAuth2 password grant or its JSON twin).
#[derive(Debug)]
pub struct LoginRequest {
    /// Username as typed; normalised here.
    pub username: String,
    /// Password as typed; verified whole.
    pub password: Password,
    /// Optional space-separated scopes that narrow the grant.
    pub scope: Option<String>,
    /// Client details for the session record.
    pub client: ClientInfo,
}

/// The scopes a grant receives: everything the role allows, narrowed by the
/// request; asking for more than the role allows is `invalid_scope`.
fn grant_scopes(role: Role, requested: Option<ScopeSet>) -> Result<ScopeSet, AuthError> {
    let allowed = role.allowed_scopes();
    match requested {
        None => Ok(allowed),
        Some(requested) if requested.is_empty() => Ok(allowed),
        Some(requested) if requested.is_subset_of(allowed) => Ok(requested),
        Some(_) => Err(AuthError::InvalidScope),
    }
}

impl AuthService {
    /// The OAuth2 password grant: verifies the credentials, starts a session
    /// and issues its tokens.
    ///
    /// Unknown user, wrong password and disabled account all fail with
    /// [`AuthError::InvalidGrant`] after the same hashing work.
    pub async fn login(&self, request: LoginRequest) -> Result<TokenGrant, AuthError> {
        // Unknown scope names are refused before any hashing: they reveal
        // nothing about the account.
        let requested = match request.scope.as_deref() {
            Some(scope) => Some(ScopeSet::parse(scope).map_err(|_| AuthError::InvalidScope)?),
            None => None,
        };
        let user = self
            .check_credentials(
                &request.username,
                &request.password,
                &request.client,
                LoginCredential::Password,
            )
            .await?;
        let scopes = grant_scopes(user.role, requested)?;
        self.start_session(&user, scopes, request.client).await
    }

    /// Verifies a username and password, rehashing a stored hash made with
    /// outdated parameters or from a password that was not NFKC-normalised.
    /// Used by the password grant and HTTP Basic. The attempt limiter is
    /// consulted first: over the limit, no hash is computed. The NFKC form
    /// of the password is verified, then (only when the two differ) the
    /// form as typed; a password that is not NFKC-stable always costs two
    /// verifications, whether the account exists or not.
    /// A failure or a refusal by the limiter is appended to the audit log
    /// before it is answered (as a Basic credential).
    pub async fn verify_credentials(
        &self,
        username: &str,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        self.check_credentials(username, password, client, LoginCredential::Basic)
            .await
    }

    /// [`verify_credentials`](Self::verify_credentials) for `credential`.
    /// The store is first asked whether it can write (a login stores a
    /// session, and any failure is audited), so a locked database refuses
    /// before the hash.
    async fn check_credentials(
        &self,
        username: &str,
        password: &Password,
        client: &ClientInfo,
        credential: LoginCredential,
    ) -> Result<User, AuthError> {
        self.limit_login_attempt(client, username, credential)
            .await?;
        self.ports.store.ensure_writable().await?;
        let credentials = match Username::parse(username) {
            Ok(username) => self.ports.store.find_credentials(&username).await?,
            Err(_) => None,
        };
        let stored_hash = credentials.as_ref().map(|c| &c.password_hash);
        let verification = self.verify_typed_password(password, stored_hash).await?;
        let failure = match (&credentials, verification) {
            (None, _) => Some((None, LoginFailure::UnknownUser)),
            (Some(found), TypedPasswordCheck::Mismatch) => {
                Some((Some(found.user.id), LoginFailure::WrongPassword))
            }
            (Some(found), TypedPasswordCheck::Match { .. }) if found.user.disabled => {
                Some((Some(found.user.id), LoginFailure::Disabled))
            }
            (Some(_), TypedPasswordCheck::Match { .. }) => None,
        };
        if let Some((subject_id, reason)) = failure {
            // The attempted username of an unknown account is not kept: it
            // is often a password typed into the wrong field.
            let record = self
                .audit_context(self.now(), None, client)
                .record(subject_id, AuditEvent::LoginFailed { reason, credential });
            self.append_event(record).await?;
            return Err(AuthError::InvalidGrant);
        }
        let (Some(credentials), TypedPasswordCheck::Match { rehash }) = (credentials, verification)
        else {
            return Err(AuthError::InvalidGrant);
        };
        if rehash {
            // Outdated parameters, or a hash of a non-normalised password:
            // store a current hash of the NFKC form. A failed rehash must
            // not fail the login: the old hash still works.
            match self.ports.hasher.hash_password(&password.nfkc()).await {
                Ok(hash) => {
                    if let Err(error) = self
                        .ports
                        .store
                        .update_password_hash(credentials.user.id, &hash, self.now())
                        .await
                    {
                        tracing::warn!(user_id = %credentials.user.id, %error, "password rehash not stored");
                    }
                }
                Err(error) => {
                    tracing::warn!(user_id = %credentials.user.id, %error, "password rehash failed");
                }
            }
        }
        Ok(credentials.user)
    }
}
