//! Who is calling: bearer access tokens, API keys and HTTP Basic.

use super::{AuthService, ClientInfo};
use crate::account::User;
use crate::api_key::{ApiKeyId, is_well_formed_api_key};
use crate::error::AuthError;
use crate::password::Password;
use crate::ports::{ActiveSession, AuthenticatedKey};
use crate::scope::{Scope, ScopeSet};
use crate::session::SessionId;

/// How a caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A bearer access token of this session.
    Session(SessionId),
    /// This API key.
    ApiKey(ApiKeyId),
    /// HTTP Basic: username and password on this request.
    Basic,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller's account, freshly loaded for this request.
    pub user: User,
    /// What this credential may do: its granted scopes, narrowed to what the
    /// account's current role allows.
    pub scopes: ScopeSet,
    /// The credential used.
    pub credential: Credential,
}

impl Principal {
    /// The session of a bearer credential.
    pub fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiKey(_) | Credential::Basic => None,
        }
    }

    /// Fails with [`AuthError::InsufficientScope`] unless the credential
    /// carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope(scope))
        }
    }
}

impl AuthService {
    /// Authenticates a bearer access token: verifies it, then checks that its
    /// user exists and is enabled and that its session is still active, so a
    /// revocation takes effect on the very next request.
    pub async fn authenticate_access_token(&self, token: &str) -> Result<Principal, AuthError> {
        let now = self.now();
        let claims = self
            .ports
            .verifier
            .verify_access_token(token, now)
            .map_err(|_| AuthError::InvalidToken)?;
        let ActiveSession {
            user,
            scopes: granted,
        } = self
            .ports
            .store
            .find_active_session(
                claims.session_id,
                claims.user_id,
                now,
                self.settings.session_idle_timeout,
            )
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if user.disabled {
            return Err(AuthError::InvalidToken);
        }
        // The token's scopes can never exceed what the session was granted or
        // what the account's role allows today.
        let scopes = claims
            .scopes
            .intersection(granted)
            .intersection(user.role.allowed_scopes());
        Ok(Principal {
            user,
            scopes,
            credential: Credential::Session(claims.session_id),
        })
    }

    /// Authenticates an `X-API-Key`. A key without the Portcullis shape is
    /// refused without touching the store.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal, AuthError> {
        if !is_well_formed_api_key(key) {
            return Err(AuthError::InvalidToken);
        }
        let hash = self.ports.secrets.hash_api_key(key);
        let AuthenticatedKey {
            user,
            scopes: granted,
            key_id,
        } = self
            .ports
            .store
            .authenticate_api_key(&hash, self.now())
            .await?
            .ok_or(AuthError::InvalidToken)?;
        Ok(Principal {
            scopes: granted.intersection(user.role.allowed_scopes()),
            user,
            credential: Credential::ApiKey(key_id),
        })
    }

    /// Authenticates HTTP Basic credentials with the same timing-safe
    /// verification as a login. The principal gets every scope its role allows.
    pub async fn authenticate_basic(
        &self,
        username: &str,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<Principal, AuthError> {
        let user = self
            .verify_credentials(username, password, client)
            .await
            .map_err(|error| match error {
                AuthError::InvalidGrant => AuthError::InvalidToken,
                other => other,
            })?;
        Ok(Principal {
            scopes: user.role.allowed_scopes(),
            user,
            credential: Credential::Basic,
        })
    }
}
