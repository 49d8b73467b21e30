//! The use-cases, written against the ports: one module per group of use
//! cases, each adding an `impl AuthService` block.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

mod account;
mod admin;
mod api_keys;
mod audit_log;
mod introspection;
mod login;
mod principal;
mod registration;
mod sessions;
mod verification;

pub use account::{PasswordChangeRequest, ProfileUpdateRequest};
pub use admin::AdminUserUpdate;
pub use api_keys::ApiKeyRequest;
pub use audit_log::AuditListRequest;
pub use introspection::{ActiveToken, MAX_INTROSPECTED_TOKEN_CHARS, TokenKind};
pub use login::LoginRequest;
pub use principal::{Credential, Principal};
pub use registration::RegistrationRequest;
pub use sessions::{LogoutScope, RefreshRequest, TokenTypeHint};

use verification::TypedPasswordCheck;

use crate::audit::{AuditContext, AuditEvent, AuditRecord, LoginCredential};
use crate::error::{AuthError, FieldError, StoreError};
use crate::listing::{MAX_LISTING_PAGE_SIZE, PageRequest};
use crate::password::{Password, PasswordPolicy};
use crate::ports::{
    AccessTokenSigner, AttemptLimiter, Clock, OpaqueSecrets, PasswordHasher, RateLimited, Store,
    TokenVerifier,
};
use crate::scope::ScopeSet;
use crate::session::SessionId;

/// Lifetimes and rules the use-cases apply.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Absolute session (refresh) lifetime.
    pub session_ttl: Duration,
    /// A session unused this long expires.
    pub session_idle_timeout: Duration,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// Active sessions a user may have; a new one beyond it ends the least
    /// recently used.
    pub max_sessions_per_user: u32,
    /// Live (unrevoked, unexpired) API keys a user may have; creating one
    /// more is refused.
    pub max_api_keys_per_user: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(900),
            session_ttl: Duration::from_secs(2_592_000),
            session_idle_timeout: Duration::from_secs(604_800),
            password_policy: PasswordPolicy::default(),
            max_sessions_per_user: 100,
            max_api_keys_per_user: 100,
        }
    }
}

/// Where a request came from, recorded on the session it creates and on
/// the audit events it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Client IP address as determined by the HTTP layer (socket peer, or
    /// the forwarded address when the peer is a trusted proxy).
    pub ip: Option<IpAddr>,
    /// `User-Agent` header, truncated by the HTTP layer.
    pub user_agent: Option<String>,
    /// The request's id (`X-Request-Id`, as the HTTP layer answers it).
    pub request_id: Option<String>,
}

/// Who starts an administrative change, for its audit event: an
/// administrator through the API (with the request's client), or the
/// command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Initiator {
    /// The acting account; `None` for the command line.
    pub actor_id: Option<crate::account::UserId>,
    /// Where the request came from (empty for the command line).
    pub client: ClientInfo,
}

impl Initiator {
    /// The command line (or the service itself): no account, no client.
    pub fn command_line() -> Self {
        Self::default()
    }

    /// An authenticated caller of the API.
    pub fn caller(principal: &Principal, client: &ClientInfo) -> Self {
        Self {
            actor_id: Some(principal.user.id),
            client: client.clone(),
        }
    }
}

/// The tokens a successful grant returns.
#[derive(Debug)]
pub struct TokenGrant {
    /// Signed JWT access token.
    pub access_token: String,
    /// Lifetime of the access token.
    pub expires_in: Duration,
    /// Opaque refresh token, shown to the client once and stored only as a hash.
    pub refresh_token: String,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// The session the grant belongs to.
    pub session_id: SessionId,
}

/// Everything the use-cases need from the outside world.
#[derive(Clone)]
pub struct Ports {
    /// Accounts, sessions and API keys: one backend, so that a change to an
    /// account and the end of its credentials are one transaction.
    pub store: Arc<dyn Store>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Access-token signing.
    pub access_tokens: Arc<dyn AccessTokenSigner>,
    /// Access-token verification.
    pub verifier: Arc<dyn TokenVerifier>,
    /// Refresh tokens and API keys: generation and hashing.
    pub secrets: Arc<dyn OpaqueSecrets>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Credential-check limits.
    pub limiter: Arc<dyn AttemptLimiter>,
}

/// The authentication use-cases.
///
/// Cheap to clone: every port is behind an `Arc`.
#[derive(Clone)]
pub struct AuthService {
    ports: Ports,
    settings: AuthSettings,
}

/// `now` plus `duration`, or an internal error when that is beyond what a
/// timestamp can hold: a lifetime setting out of range must fail the
/// request cleanly, never panic.
fn later(now: OffsetDateTime, duration: Duration) -> Result<OffsetDateTime, AuthError> {
    time::Duration::try_from(duration)
        .ok()
        .and_then(|duration| now.checked_add(duration))
        .ok_or_else(|| {
            AuthError::Internal("a lifetime is beyond the representable time".to_owned())
        })
}

/// A limiter's refusal as the use-cases report it: whole seconds, at least 1.
fn rate_limited(limited: RateLimited) -> AuthError {
    AuthError::RateLimited {
        // Rounded up to whole seconds, so a client that waits that long is let in.
        retry_after_secs: (limited.retry_after.as_secs()
            + u64::from(limited.retry_after.subsec_nanos() > 0))
        .max(1),
    }
}

/// A page request within the bounds every store is promised.
fn clamp_page(mut page: PageRequest) -> PageRequest {
    page.limit = page.limit.clamp(1, MAX_LISTING_PAGE_SIZE);
    page
}

/// The account vanished between authentication and the change.
fn gone_is_invalid_token(error: StoreError) -> AuthError {
    match error {
        StoreError::NotFound => AuthError::InvalidToken,
        other => other.into(),
    }
}

impl AuthService {
    /// Assembles the service from its ports.
    pub fn new(ports: Ports, settings: AuthSettings) -> Self {
        Self { ports, settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Now, truncated to whole seconds: JWT times and stored times are in
    /// seconds, and comparing like with like avoids off-by-a-fraction expiry.
    /// The one reading of the clock every use-case makes.
    fn now(&self) -> OffsetDateTime {
        let now = self.ports.clock.now();
        now.replace_nanosecond(0).unwrap_or(now)
    }

    /// The audit context of a change made now by `actor_id` from `client`.
    fn audit_context(
        &self,
        now: OffsetDateTime,
        actor_id: Option<crate::account::UserId>,
        client: &ClientInfo,
    ) -> AuditContext {
        AuditContext {
            at: now,
            actor_id,
            client: client.clone(),
        }
    }

    /// The record of `event`, caused by `principal` from `client`, about
    /// the principal's own account.
    fn own_record(
        &self,
        now: OffsetDateTime,
        principal: &Principal,
        client: &ClientInfo,
        event: AuditEvent,
    ) -> AuditRecord {
        self.audit_context(now, Some(principal.user.id), client)
            .record(Some(principal.user.id), event)
    }

    /// Appends an event that goes with no stored change (a refused
    /// credential), before the refusal is answered.
    async fn append_event(&self, record: AuditRecord) -> Result<(), AuthError> {
        self.ports.store.append_audit_event(&record).await?;
        Ok(())
    }

    /// [`limit_attempt`](Self::limit_attempt) for a login or Basic
    /// credential: a refusal is audited.
    async fn limit_login_attempt(
        &self,
        client: &ClientInfo,
        username: &str,
        credential: LoginCredential,
    ) -> Result<(), AuthError> {
        match self.limit_attempt(client.ip, username).await {
            Err(refused @ AuthError::RateLimited { .. }) => {
                let record = self
                    .audit_context(self.now(), None, client)
                    .record(None, AuditEvent::LoginRateLimited { credential });
                self.append_event(record).await?;
                Err(refused)
            }
            other => other,
        }
    }

    /// Consults the attempt limiter before a credential check.
    async fn limit_attempt(
        &self,
        client_ip: Option<IpAddr>,
        username: &str,
    ) -> Result<(), AuthError> {
        // Normalised like a username (so case flips share one budget) and
        // bounded (so junk names cannot grow the limiter's memory per key).
        let key: String = username
            .trim()
            .chars()
            .take(64)
            .collect::<String>()
            .to_ascii_lowercase();
        self.ports
            .limiter
            .check_attempt(client_ip, &key)
            .await
            .map_err(rate_limited)
    }

    /// Verifies the caller's password again before a sensitive change; a
    /// wrong password is a validation error on `field`.
    async fn reverify_password(
        &self,
        principal: &Principal,
        password: &Password,
        field: &'static str,
    ) -> Result<(), AuthError> {
        let credentials = self
            .ports
            .store
            .find_credentials(&principal.user.username)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        // Verified like a login (NFKC first, then the form as typed), but
        // never rehashed here: a password change replaces the hash anyway,
        // and an account deletion removes it.
        match self
            .verify_typed_password(password, Some(&credentials.password_hash))
            .await?
        {
            TypedPasswordCheck::Match { .. } => Ok(()),
            TypedPasswordCheck::Mismatch => Err(AuthError::Validation(vec![FieldError::new(
                field,
                "is incorrect",
            )])),
        }
    }
}
