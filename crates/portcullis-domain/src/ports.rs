//! The ports: what the domain needs from the outside world, as traits.
//!
//! Implementations live elsewhere (`portcullis-sqlite` for the SQLite
//! store, `portcullis-adapters` for hashing, tokens and the limiter). Async
//! traits use `async_trait` so they can be used as trait objects.
//!
//! The store traits state what a backend promises, not how one backend keeps
//! the promise: "atomic" means that no concurrent call observes or leaves a
//! state between the steps; "in the same transaction" means that either all
//! of the named changes happen or none does. Every write takes the time it
//! stamps as `now`: a store never reads its own clock, so that every node of
//! a deployment and every test agrees on what "now" was. The conformance
//! suite (`portcullis-store-conformance`) checks these promises against
//! every implementation.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::{
    NewUser, PasswordHashString, ProfileChanges, Role, User, UserCredentials, UserId, Username,
};
use crate::admin::{AdminUserChanges, UserListQuery, UserPage};
use crate::api_key::{ApiKeyHash, ApiKeyId, ApiKeyInfo, NewApiKey};
use crate::audit::{
    AuditAnchor, AuditContext, AuditEntry, AuditQuery, AuditRecord, SealedAuditEntry,
};
use crate::error::{HashingError, StoreError, TokenError};
use crate::key_lifecycle::KeyError;
use crate::listing::{Page, PageRequest};
use crate::password::Password;
use crate::scope::ScopeSet;
use crate::session::{
    AccessTokenClaims, NewSession, RefreshOutcome, RefreshTokenHash, RefreshTokenOwner, SessionId,
    SessionInfo,
};
use crate::signing_key::{KeyRotation, PublishedKey, RotationOutcome, StoredSigningKey};
use crate::snapshot::StoreSnapshot;

/// Persistent accounts.
///
/// Every method that changes something takes the [`AuditRecord`] of the
/// change and appends it to the audit log ([`AuditStore`]) in the same
/// transaction, only when the change happens: an error, or a change that
/// finds nothing to do, appends nothing.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a new account (stamped with its `created_at`);
    /// [`StoreError::Conflict`] when the username or the canonical email key
    /// is taken. Of concurrent inserts of one username exactly one succeeds.
    async fn insert_user(&self, new_user: &NewUser, audit: &AuditRecord) -> Result<(), StoreError>;

    /// Loads an account and its password hash by username.
    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError>;

    /// Loads an account by id.
    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// Replaces an account's password hash (used for rehash-on-login),
    /// stamping the change at `now`; [`StoreError::NotFound`] for an unknown id.
    async fn update_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Applies profile changes at `now` and returns the updated account;
    /// [`StoreError::Conflict`] when the new email's canonical key belongs to
    /// another account (nothing changes), [`StoreError::NotFound`] for an
    /// unknown id.
    async fn update_profile(
        &self,
        id: UserId,
        changes: &ProfileChanges,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError>;

    /// Disables or enables an account by username at `now`; disabling also
    /// ends every session and API key of the user in the same transaction
    /// (enabling revives none). No last-admin guard: this is the operator's
    /// recovery path. The record is appended about the account changed
    /// ([`AuditRecord::about`]): only the store knows its id.
    async fn set_disabled(
        &self,
        username: &Username,
        disabled: bool,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError>;

    /// Changes an account's role by username. In the same transaction,
    /// every stored grant of the user (each session's and API key's scopes)
    /// is narrowed to what the new role allows
    /// ([`Role::allowed_scopes`]); a session or key left with no scope is
    /// ended. So a demotion is permanent for existing grants: promoting the
    /// user again later revives none of them. No last-admin guard, like
    /// [`set_disabled`](Self::set_disabled), and audited like it.
    async fn set_role(
        &self,
        username: &Username,
        role: Role,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError>;

    /// Replaces the password hash and, in the same transaction, ends every
    /// session of the user except `keep_session`.
    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        keep_session: Option<SessionId>,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    /// Deletes the account with its sessions and every credential of it, in
    /// one transaction. [`StoreError::NotFound`] when there is no such user,
    /// [`StoreError::LastAdmin`] when it is the last enabled admin.
    ///
    /// Erasure: once it returns, the deleted email and password hash can no
    /// longer be read through the store. How soon they leave its files is
    /// the backend's to state: the SQLite store overwrites them at once (as
    /// far as concurrent readers allow; whatever they held back is erased by
    /// a later [`SessionStore::purge_dead_sessions`]); PostgreSQL reclaims
    /// dead rows at its next vacuum of the table.
    /// The audit log keeps the account's events (they name it by id only,
    /// and the log's retention decides when they go).
    async fn delete_user(&self, id: UserId, audit: &AuditRecord) -> Result<(), StoreError>;

    /// One page of users in creation order, optionally filtered by
    /// [`UserSearch`](crate::UserSearch). Keyset paging: following the cursors
    /// returns every user that exists throughout exactly once, whatever is
    /// inserted or deleted in between; users created later appear on later
    /// pages. [`StoreError::InvalidCursor`] for a cursor this store did not
    /// make.
    async fn list_users(&self, query: &UserListQuery) -> Result<UserPage, StoreError>;

    /// Applies an admin's changes in one transaction and returns the account.
    /// Disabling also ends every session and API key of the user. A role
    /// change narrows every stored grant of the user exactly as
    /// [`set_role`](Self::set_role) does, in the same transaction.
    /// [`StoreError::LastAdmin`] when the change would leave no enabled
    /// admin; [`StoreError::Conflict`] when the email is taken.
    async fn admin_update_user(
        &self,
        id: UserId,
        changes: &AdminUserChanges,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError>;

    /// Succeeds when the store can be read.
    async fn check_health(&self) -> Result<(), StoreError>;

    /// Succeeds when a write could start now; [`StoreError::Unavailable`]
    /// when the store cannot take a write within a short wait (about a
    /// second). Changes nothing. Use-cases ask before expensive work (a
    /// password hash) whose result must be written, so that a store that
    /// cannot write refuses at once instead of after the work.
    async fn ensure_writable(&self) -> Result<(), StoreError>;
}

/// Persistent login sessions and their refresh tokens. Changes are audited
/// as in [`UserStore`].
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session with its first refresh token, keeping the user
    /// at no more than `max_active` active sessions (not revoked, not
    /// expired, used within `idle_timeout`, all at `session.created_at`):
    /// when the new one would exceed it, the least recently used ones (the
    /// oldest `last_used_at`; among equal ones, the earliest created) are
    /// ended, atomically with the creation, so that exactly `max_active`
    /// remain, the new one included. Concurrent creations never leave more.
    /// Appends `audit` (the login) and, for each session the cap ended,
    /// `audit` with [`AuditEvent::SessionEnded`](crate::audit::AuditEvent::SessionEnded)
    /// and [`SessionEndReason::SessionCap`](crate::audit::SessionEndReason::SessionCap).
    async fn create_session(
        &self,
        session: &NewSession,
        max_active: u32,
        idle_timeout: Duration,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    /// The session's user and granted scopes when the session belongs to
    /// `user_id`, is not revoked, has not reached its absolute expiry and has
    /// been used within `idle_timeout`, and the user is not disabled.
    async fn find_active_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<Option<ActiveSession>, StoreError>;

    /// Presents a refresh token, atomically (no concurrent call sees the
    /// token between its check and its replacement):
    /// - current token of an active session of an enabled user: mark it used,
    ///   store `replacement` as the current token, set `last_used_at = now`
    ///   → [`RefreshOutcome::Rotated`];
    /// - already-used token: end its session (whatever its state) and
    ///   append [`AuditEvent::RefreshTokenReused`](crate::audit::AuditEvent::RefreshTokenReused)
    ///   about its user in `context` → [`RefreshOutcome::Reused`];
    /// - anything else → [`RefreshOutcome::Rejected`], nothing changes.
    ///
    /// Of N concurrent calls with one token exactly one can rotate.
    async fn rotate_refresh_token(
        &self,
        presented: &RefreshTokenHash,
        replacement: &RefreshTokenHash,
        now: OffsetDateTime,
        idle_timeout: Duration,
        context: &AuditContext,
    ) -> Result<RefreshOutcome, StoreError>;

    /// The session a refresh token belongs to, used or not, active or not.
    async fn find_refresh_token_owner(
        &self,
        token: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenOwner>, StoreError>;

    /// Ends one session of `user_id`. Returns whether an active session was
    /// ended (false when it does not exist, is someone else's, or had
    /// already ended); `audit` is appended only when one was.
    async fn revoke_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;

    /// Ends every active session of `user_id` except `except`; returns how
    /// many. When there were any, appends
    /// [`AuditEvent::SessionsEnded`](crate::audit::AuditEvent::SessionsEnded)
    /// about `user_id` in `context`.
    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        now: OffsetDateTime,
        context: &AuditContext,
    ) -> Result<u64, StoreError>;

    /// One page of the user's active sessions (not revoked, not expired,
    /// not idle), most recently used first, in a total order (the session id
    /// breaks ties), so that following the cursors returns every session
    /// that stays active exactly once. [`StoreError::InvalidCursor`] for a
    /// cursor this store did not make.
    async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        idle_timeout: Duration,
        page: &PageRequest,
    ) -> Result<Page<SessionInfo>, StoreError>;

    /// Deletes sessions that can never be used again (revoked, expired or
    /// idle) together with their refresh tokens; returns how many sessions.
    /// Used refresh tokens of live sessions are kept: they are what reuse
    /// detection recognises. Also completes the erasure of deleted accounts
    /// that concurrent readers held back (see [`UserStore::delete_user`]).
    async fn purge_dead_sessions(
        &self,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<u64, StoreError>;
}

/// Persistent user-owned API keys. Changes are audited as in
/// [`UserStore`].
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new key (its hash only) unless its owner already has
    /// `max_live` live keys (not revoked, not expired at `key.created_at`):
    /// then [`StoreError::ApiKeyLimitReached`] and nothing is stored. The
    /// count and the insert are atomic: of N concurrent creations for one
    /// user, none takes the user past `max_live`.
    async fn create_api_key(
        &self,
        key: &NewApiKey,
        max_live: u32,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    /// One page of the user's keys that are not revoked (expired ones
    /// included, so their owner can see them), newest first, in a total
    /// order (the key id breaks ties), so that following the cursors returns
    /// every key that stays unrevoked exactly once.
    /// [`StoreError::InvalidCursor`] for a cursor this store did not make.
    async fn list_api_keys(
        &self,
        user_id: UserId,
        page: &PageRequest,
    ) -> Result<Page<ApiKeyInfo>, StoreError>;

    /// Revokes one key of `user_id`; whether a not-yet-revoked key was revoked.
    async fn revoke_api_key(
        &self,
        id: ApiKeyId,
        user_id: UserId,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;

    /// The owner and scopes of a usable key: not revoked, not expired at
    /// `now`, owner enabled. Records the use as `last_used_at = now` when the
    /// key was never used or last used a minute or more before, so that
    /// authenticating rarely writes.
    async fn authenticate_api_key(
        &self,
        hash: &ApiKeyHash,
        now: OffsetDateTime,
    ) -> Result<Option<AuthenticatedKey>, StoreError>;
}

/// The access-token signing keys every node of a deployment shares.
///
/// Invariant, kept by every method: once keys are installed, exactly one is
/// [`KeyState::Current`](crate::KeyState::Current) and at most one is
/// [`KeyState::Next`](crate::KeyState::Next).
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Every key not yet deleted, oldest first (creation time, then kid).
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError>;

    /// Stores `keys` (exactly one of them current) if the store holds no
    /// current key yet: the first start of a deployment, or the upgrade of a
    /// v1 one. Atomic: of concurrent installs exactly one stores its keys
    /// and answers `true`; the others, and any call once keys exist, store
    /// nothing and answer `false`. `audit` is appended by the one that
    /// stores.
    async fn install_signing_keys(
        &self,
        keys: &[StoredSigningKey],
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;

    /// Rotates, if `rotation.current` is still the current key: it becomes
    /// retired with `rotation.retires_at`; the next key becomes current,
    /// signing from `rotation.now`; `rotation.new_next` is stored as the next
    /// key. (With no next key, `new_next` becomes current at once, so that
    /// one key always signs.) All in the same transaction. Atomic: of N
    /// concurrent rotations from one current key exactly one rotates; the
    /// others answer [`RotationOutcome::Superseded`] and change nothing.
    /// `audit` is appended by the one that rotates.
    async fn rotate_signing_keys(
        &self,
        rotation: &KeyRotation,
        audit: &AuditRecord,
    ) -> Result<RotationOutcome, StoreError>;

    /// Deletes the retired keys whose `retires_at` is at or before `now`;
    /// how many. Never touches a next or current key.
    async fn delete_retired_signing_keys(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The audit log: one chain of security events per deployment (see
/// [`crate::audit`]), whichever node writes.
///
/// A store is given the chain's [`AuditKey`](crate::audit::AuditKey) when
/// it is opened; appending without one is an error, never an unkeyed row.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event that records no stored change (a failed or
    /// rate-limited login) in a transaction of its own; its `seq`.
    /// Durable when it returns, as every change is.
    async fn append_audit_event(&self, record: &AuditRecord) -> Result<u64, StoreError>;

    /// One page of events, newest first (highest `seq` first), filtered by
    /// `query`. [`StoreError::InvalidCursor`] for a cursor this store did
    /// not make.
    async fn list_audit_events(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError>;

    /// The chain's sealed head and checkpoint, as stored.
    async fn audit_anchor(&self) -> Result<AuditAnchor, StoreError>;

    /// Up to `limit` stored entries with `seq` above `after_seq`, in `seq`
    /// order, with their MACs, exactly as stored (for verification and
    /// export: nothing is checked here).
    async fn audit_chain_page(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<SealedAuditEntry>, StoreError>;

    /// Deletes the oldest events, the longest run from the start of the
    /// chain all of whose events are before `before`; stores the sealed
    /// checkpoint of the last deleted one and appends
    /// [`AuditEvent::AuditPruned`](crate::audit::AuditEvent::AuditPruned)
    /// in `context`, all in one transaction. How many were deleted (0:
    /// nothing written).
    async fn prune_audit_events(
        &self,
        before: OffsetDateTime,
        context: &AuditContext,
    ) -> Result<u64, StoreError>;
}

/// Moving a whole deployment between stores (`portcullis db copy`).
///
/// Not part of [`Store`]: only the copy command needs it, and the promises
/// of the running service do not depend on it.
#[async_trait]
pub trait StoreCopy: Send + Sync {
    /// Everything stored, read in one consistent snapshot (one read
    /// transaction), users in creation order.
    async fn export_snapshot(&self) -> Result<StoreSnapshot, StoreError>;

    /// Writes `snapshot` into this store in one transaction, keeping every
    /// id, hash, time and the users' order; [`StoreError::NotEmpty`] (and
    /// nothing written) when the store already holds an account, a session,
    /// an API key, a signing key or an audit event. The audit log is copied
    /// verbatim, MACs and both ends included, so the copy verifies with the
    /// same master key.
    async fn import_snapshot(&self, snapshot: &StoreSnapshot) -> Result<(), StoreError>;
}

/// A budget of attempts for one key: `burst` at once, then one more every
/// `refill_every` (the generic cell rate algorithm, as governor counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptBudget {
    /// How many attempts a full budget allows at once; at least 1.
    pub burst: u32,
    /// How long one spent attempt takes to come back.
    pub refill_every: Duration,
}

impl AttemptBudget {
    /// `per_minute` attempts a minute, all of them available at once.
    pub fn per_minute(per_minute: std::num::NonZeroU32) -> Self {
        Self {
            burst: per_minute.get(),
            refill_every: Duration::from_secs(60) / per_minute.get(),
        }
    }
}

/// Attempt counts kept in the store, so that every node of a deployment
/// spends one budget: three nodes must not give a client three times the
/// attempts.
#[async_trait]
pub trait SharedAttemptCounter: Send + Sync {
    /// Spends one attempt of `budget` for `key` at `now`, or refuses with
    /// how long until one is back. Atomic across every node: of N concurrent
    /// calls on a budget with k attempts left, exactly k succeed. `key` is
    /// an opaque digest the caller derived (never a raw username or
    /// address).
    async fn spend_attempt(
        &self,
        key: &[u8],
        budget: AttemptBudget,
        now: OffsetDateTime,
    ) -> Result<Result<(), RateLimited>, StoreError>;

    /// Forgets the keys whose budget is full again at `now` (they would
    /// allow a whole burst anyway); how many.
    async fn forget_refilled_attempts(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The keys this node signs and verifies with, as last read from the key
/// store.
#[async_trait]
pub trait KeyRing: Send + Sync {
    /// The public keys resource servers may verify with: every asymmetric
    /// key not yet deleted (next, current and retired), never an HS256 key.
    fn published_keys(&self) -> Vec<PublishedKey>;

    /// Reads the keys again: after this node rotated, and periodically, so
    /// that another node's rotation is seen here too.
    async fn reload(&self) -> Result<(), KeyError>;
}

/// A session found active by [`SessionStore::find_active_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    /// Its user, enabled.
    pub user: User,
    /// What the session was granted (already narrowed by any demotion).
    pub scopes: ScopeSet,
}

/// An API key that authenticated, by [`ApiKeyStore::authenticate_api_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedKey {
    /// Its owner, enabled.
    pub user: User,
    /// What the key was granted.
    pub scopes: ScopeSet,
    /// Which key it was.
    pub key_id: ApiKeyId,
}

/// Everything a deployment keeps: accounts, sessions, API keys, the
/// signing keys and the audit log.
///
/// One backend implements all four, because several promises span them:
/// disabling, demoting or deleting a user changes its sessions and keys in
/// the same transaction, and every node must sign with the keys the others
/// verify, and every change appends its audit event in its own
/// transaction. Implemented for every type that implements the five parts.
pub trait Store: UserStore + SessionStore + ApiKeyStore + SigningKeyStore + AuditStore {}

impl<T: UserStore + SessionStore + ApiKeyStore + SigningKeyStore + AuditStore + ?Sized> Store
    for T
{
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordVerification {
    /// The password is right. `needs_rehash` says the hash was made with
    /// parameters other than the configured ones.
    Match {
        /// Whether the stored hash should be replaced.
        needs_rehash: bool,
    },
    /// The password is wrong (or there was no hash to check against).
    Mismatch,
}

/// Password hashing, expected to run off the async runtime with bounded
/// concurrency.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password with the configured parameters.
    async fn hash_password(&self, password: &Password) -> Result<PasswordHashString, HashingError>;

    /// Verifies a password. With `hash: None` (unknown user) the same work is
    /// done against a dummy hash and the answer is always a mismatch, so an
    /// unknown username costs what a wrong password costs. The service also
    /// calls it with `None` to pad a verification that finished early (see
    /// the Unicode normalisation in `verify_credentials`): implementations
    /// must make a `None` call cost what a real verification costs, and must
    /// not keep or log the password.
    async fn verify_password(
        &self,
        password: &Password,
        hash: Option<&PasswordHashString>,
    ) -> Result<PasswordVerification, HashingError>;
}

/// Signs access tokens.
pub trait AccessTokenSigner: Send + Sync {
    /// Signs an access token for these claims with the current signing key.
    fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError>;
}

/// Opaque secrets: refresh tokens and API keys, and the hashes under which
/// they are stored. Never a signing key: a process that holds no key (the
/// administration commands) still has these.
pub trait OpaqueSecrets: Send + Sync {
    /// A new opaque refresh token (at least 256 random bits) and its hash.
    fn new_refresh_token(&self) -> (String, RefreshTokenHash);

    /// The hash under which a presented refresh token would be stored.
    fn hash_refresh_token(&self, token: &str) -> RefreshTokenHash;

    /// A new API key (`pcl_` and at least 256 random bits) and its hash.
    fn new_api_key(&self) -> (String, ApiKeyHash);

    /// The hash under which a presented API key would be stored.
    fn hash_api_key(&self, key: &str) -> ApiKeyHash;
}

/// Verifies access tokens: signature, algorithm, type, issuer, audience and
/// time claims (with bounded leeway), relative to `now`.
pub trait TokenVerifier: Send + Sync {
    /// Returns the claims of a valid token.
    fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, TokenError>;
}

/// A credential check was refused because too many were attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// How long until an attempt would be allowed.
    pub retry_after: Duration,
}

/// Limits credential checks (logins, Basic, registration, password change,
/// account deletion, email change) per client address and per username,
/// consulted before any password hash is computed; and the creation of API
/// keys per user.
///
/// Async so that a limiter shared by several nodes can await its store.
#[async_trait]
pub trait AttemptLimiter: Send + Sync {
    /// Records one attempt by `client_ip` (when known) against `username`
    /// (already normalised), or refuses it.
    async fn check_attempt(
        &self,
        client_ip: Option<IpAddr>,
        username: &str,
    ) -> Result<(), RateLimited>;

    /// Records the creation of one API key by `user_id`, or refuses it.
    /// A budget of its own: creating keys spends no credential checks.
    async fn check_api_key_creation(&self, user_id: UserId) -> Result<(), RateLimited>;
}

/// A limiter that allows everything: for the CLI, whose caller already has
/// the data directory, and for tests of other rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAttemptLimit;

#[async_trait]
impl AttemptLimiter for NoAttemptLimit {
    async fn check_attempt(
        &self,
        _client_ip: Option<IpAddr>,
        _username: &str,
    ) -> Result<(), RateLimited> {
        Ok(())
    }

    async fn check_api_key_creation(&self, _user_id: UserId) -> Result<(), RateLimited> {
        Ok(())
    }
}

/// The source of the current time. Tests substitute a clock they can move.
pub trait Clock: Send + Sync {
    /// The current time, UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place the domain reads the clock"
    )]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
