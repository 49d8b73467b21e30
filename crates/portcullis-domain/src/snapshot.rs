//! A whole deployment's stored state as plain records, for moving it from
//! one store to another (`portcullis db copy`).
//!
//! Every record holds what its store row holds, secrets only as the hashes
//! and sealed keys the store keeps: copying moves exactly what is at rest,
//! never anything a running node holds in memory. Users come in creation
//! order, so that the target lists them in the same order.

use time::OffsetDateTime;

use crate::account::{PasswordHashString, User, UserId};
use crate::api_key::{ApiKeyHash, ApiKeyId, ApiKeyName};
use crate::audit::AuditSnapshot;
use crate::scope::ScopeSet;
use crate::session::{RefreshTokenHash, SessionId};
use crate::signing_key::StoredSigningKey;

/// Everything a store holds, read in one consistent snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSnapshot {
    /// Accounts, oldest first.
    pub users: Vec<UserRecord>,
    /// Every session, ended ones included (their used refresh tokens are
    /// what reuse detection recognises).
    pub sessions: Vec<SessionRecord>,
    /// Every refresh token hash, used or current.
    pub refresh_tokens: Vec<RefreshTokenRecord>,
    /// Every API key, revoked ones included.
    pub api_keys: Vec<ApiKeyRecord>,
    /// Every signing key not yet deleted, oldest first.
    pub signing_keys: Vec<StoredSigningKey>,
    /// The audit log, verbatim.
    pub audit: AuditSnapshot,
}

impl StoreSnapshot {
    /// Whether the snapshot holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.sessions.is_empty()
            && self.refresh_tokens.is_empty()
            && self.api_keys.is_empty()
            && self.signing_keys.is_empty()
            && self.audit.entries.is_empty()
            && self.audit.anchor.head.is_none()
    }
}

/// One account with its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The account.
    pub user: User,
    /// Its PHC password hash.
    pub password_hash: PasswordHashString,
    /// When the account last changed.
    pub updated_at: OffsetDateTime,
}

/// One login session, in whatever state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session id (`sid` of its access tokens).
    pub id: SessionId,
    /// Its user.
    pub user_id: UserId,
    /// What it was granted (narrowed by any demotion).
    pub scopes: ScopeSet,
    /// When it started.
    pub created_at: OffsetDateTime,
    /// Its last refresh (or its start).
    pub last_used_at: OffsetDateTime,
    /// Its absolute end.
    pub expires_at: OffsetDateTime,
    /// When it was ended, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// The client address seen at login.
    pub ip: Option<String>,
    /// The client's `User-Agent` at login.
    pub user_agent: Option<String>,
}

/// One refresh token, by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// The token's hash.
    pub token_hash: RefreshTokenHash,
    /// Its session.
    pub session_id: SessionId,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it was rotated; `None` for a session's current token.
    pub used_at: Option<OffsetDateTime>,
}

/// One API key, by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key id.
    pub id: ApiKeyId,
    /// Its owner.
    pub user_id: UserId,
    /// Its label.
    pub name: ApiKeyName,
    /// The first characters of the key, shown in listings.
    pub prefix: String,
    /// The key's hash.
    pub key_hash: ApiKeyHash,
    /// What it may do.
    pub scopes: ScopeSet,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// Its last recorded use.
    pub last_used_at: Option<OffsetDateTime>,
    /// Its expiry, if any.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}
