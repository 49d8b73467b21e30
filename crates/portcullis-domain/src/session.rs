//! Sessions, refresh tokens and access-token claims.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::account::{User, UserId};
use crate::scope::ScopeSet;

crate::id::uuid_id!(
    /// Identifies one login session; carried in access tokens as `sid`.
    SessionId
);

/// A new random access-token id (`jti`): each token gets its own.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place token ids are drawn"
)]
pub fn new_token_id() -> Uuid {
    Uuid::new_v4()
}

/// The hash of an opaque refresh token: the only form in which it is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshTokenHash(Vec<u8>);

impl RefreshTokenHash {
    /// Wraps a digest computed by a token issuer.
    pub fn from_digest(digest: Vec<u8>) -> Self {
        Self(digest)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for RefreshTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshTokenHash(..)")
    }
}

/// A session to be stored at login, with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session id, also the `sid` of its access tokens.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// The scopes granted to this session.
    pub scopes: ScopeSet,
    /// Hash of the first refresh token.
    pub refresh_token_hash: RefreshTokenHash,
    /// When the session started.
    pub created_at: OffsetDateTime,
    /// Absolute end of the session, whatever its use.
    pub expires_at: OffsetDateTime,
    /// The client address seen at login.
    pub ip: Option<String>,
    /// The client's `User-Agent` at login.
    pub user_agent: Option<String>,
}

/// The claims of an access token that matter to Portcullis (RFC 9068).
///
/// `iss` and `aud` are the issuer's configuration and are checked by the
/// verifier; they are not carried here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenClaims {
    /// `sub`: the user.
    pub user_id: UserId,
    /// `sid`: the session the token belongs to.
    pub session_id: SessionId,
    /// `scope`: what the token may do.
    pub scopes: ScopeSet,
    /// `jti`: unique token id.
    pub token_id: Uuid,
    /// `iat` (and `nbf`).
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

/// A live session as shown to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id.
    pub id: SessionId,
    /// When the session started (the login).
    pub created_at: OffsetDateTime,
    /// When its refresh token was last used (or the login, if never).
    pub last_used_at: OffsetDateTime,
    /// When it ends unless used: the earlier of the absolute expiry and
    /// `last_used_at` plus the idle timeout.
    pub expires_at: OffsetDateTime,
    /// Client address at login.
    pub ip: Option<String>,
    /// Client `User-Agent` at login.
    pub user_agent: Option<String>,
}

/// The session a presented refresh token belongs to, whatever its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenOwner {
    /// The session.
    pub session_id: SessionId,
    /// Its user.
    pub user_id: UserId,
    /// The scopes the session was granted.
    pub scopes: ScopeSet,
    /// Whether this token was already rotated (presenting it again is a replay).
    pub already_used: bool,
}

/// What presenting a refresh token did, decided in one atomic store step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was the session's current one: it is now marked used, the
    /// replacement is current, and `last_used_at` is now.
    Rotated {
        /// The session's user, freshly loaded.
        user: User,
        /// The session.
        session_id: SessionId,
        /// The scopes the session was granted.
        scopes: ScopeSet,
    },
    /// The token had already been rotated: someone replayed it, so the whole
    /// session has been ended (RFC 9700 §4.14.2).
    Reused {
        /// The session that was ended.
        session_id: SessionId,
    },
    /// Unknown token, or its session is revoked, expired or idle, or its user
    /// is disabled. Nothing changed.
    Rejected,
}
