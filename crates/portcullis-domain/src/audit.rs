//! The audit log: security events as a typed enum, their stored form, and
//! the MAC chain that makes editing, deleting or reordering a stored event
//! detectable by someone who can write the database but does not hold the
//! master key.
//!
//! What a store does with this module, inside the transaction of the change
//! an event records: read (and lock) the chain head, call [`chain_next`],
//! insert the entry it returns and store the new sealed head. The head is
//! the last thing a transaction locks, so a transaction holding it never
//! waits for another lock, and writers on several nodes form one chain.
//!
//! The event enum is the only way to say what happened: its fields are ids,
//! names, counts and fixed reasons, so no password, token, key or hash can
//! reach the log: there is no variant that could carry one.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::account::{Role, UserId, Username};
use crate::api_key::{ApiKeyId, ApiKeyName};
use crate::listing::{PageCursor, PageRequest};
use crate::scope::ScopeSet;
use crate::service::ClientInfo;
use crate::session::SessionId;
use crate::signing_key::KeyId;

/// A MAC of the chain: HMAC-SHA256 under a key derived from the master key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditMac(pub [u8; 32]);

impl AuditMac {
    /// What the first event of a chain is chained to.
    pub const GENESIS: Self = Self([0; 32]);

    /// Reads stored bytes; `None` unless they are exactly 32.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Lower-case hex, as `audit verify` prints a head.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Equality that takes the same time wherever the first difference is.
    fn same_as(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for AuditMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditMac({})", self.to_hex())
    }
}

/// The key the chain is MACed with (implemented in `portcullis-crypto`,
/// derived from the master key).
pub trait AuditKey: Send + Sync {
    /// HMAC of `message`.
    fn mac(&self, message: &[u8]) -> AuditMac;

    /// Whether events are recorded at all: always, but for the baseline of
    /// a benchmark, which measures what the log costs by comparing with a
    /// store given a key that answers `false` (stores then skip their
    /// appends). No setting makes such a key; only code can.
    fn records(&self) -> bool {
        true
    }
}

/// Why a session ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEndReason {
    /// `POST /auth/logout` (local, global or others).
    Logout,
    /// RFC 7009 revocation of one of its tokens.
    Revoked,
    /// The owner ended it from the session list.
    EndedByUser,
    /// A newer session took its place under the per-user cap.
    SessionCap,
}

impl SessionEndReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Revoked => "revoked",
            Self::EndedByUser => "ended_by_user",
            Self::SessionCap => "session_cap",
        }
    }
}

/// Why a login failed: recorded, never answered (every one is
/// `invalid_grant` to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// No account has that username.
    UnknownUser,
    /// The password is wrong.
    WrongPassword,
    /// The account is disabled.
    Disabled,
}

impl LoginFailure {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::Disabled => "disabled",
        }
    }
}

/// Which credential a login attempt presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCredential {
    /// The password grant or `POST /auth/login`.
    Password,
    /// HTTP Basic on a request.
    Basic,
}

impl LoginCredential {
    fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Basic => "basic",
        }
    }
}

/// What an administrator changed on an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminChangeSummary {
    /// The new role, when it changed.
    pub role: Option<Role>,
    /// The new disabled flag, when it was set.
    pub disabled: Option<bool>,
    /// Whether the email was set.
    pub email: bool,
    /// Whether the full name was set.
    pub full_name: bool,
}

/// A security event. Each variant's fields are what its `details` hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    /// An account was created (self-registration, admin API or CLI; the
    /// actor tells which).
    UserRegistered {
        /// Its username.
        username: Username,
        /// Its role.
        role: Role,
    },
    /// A password login started a session.
    LoginSucceeded {
        /// The new session.
        session_id: SessionId,
    },
    /// A password check failed.
    LoginFailed {
        /// The internal reason.
        reason: LoginFailure,
        /// What was presented.
        credential: LoginCredential,
    },
    /// A password check was refused by a limiter before any hashing.
    LoginRateLimited {
        /// What was presented.
        credential: LoginCredential,
    },
    /// An already-rotated refresh token was presented: its session ended.
    RefreshTokenReused {
        /// The session it ended.
        session_id: SessionId,
    },
    /// One session ended.
    SessionEnded {
        /// Which.
        session_id: SessionId,
        /// Why.
        reason: SessionEndReason,
    },
    /// Several sessions of one user ended at once (logout everywhere, or
    /// everywhere else).
    SessionsEnded {
        /// How many.
        count: u64,
        /// Whether the caller's own session was kept.
        kept_current: bool,
    },
    /// The owner changed the password (every other session ended with it).
    PasswordChanged,
    /// The owner changed the profile.
    ProfileUpdated {
        /// Whether the email was set (to a new value or the same).
        email: bool,
        /// Whether the full name was set or cleared.
        full_name: bool,
    },
    /// An account was deleted (by its owner or an administrator).
    AccountDeleted,
    /// An administrator (API or CLI) changed an account.
    AdminUserUpdated(AdminChangeSummary),
    /// An API key was created.
    ApiKeyCreated {
        /// Its id.
        key_id: ApiKeyId,
        /// Its label.
        name: ApiKeyName,
        /// What it may do.
        scopes: ScopeSet,
    },
    /// An API key was revoked.
    ApiKeyRevoked {
        /// Its id.
        key_id: ApiKeyId,
    },
    /// The first signing keys of a deployment were stored.
    SigningKeysInstalled {
        /// Their ids.
        kids: Vec<KeyId>,
    },
    /// The signing keys rotated.
    SigningKeyRotated {
        /// The key that stopped signing.
        retired: KeyId,
        /// The key that signs now.
        current: KeyId,
        /// The key published to sign next (none when no next key was
        /// published and the new key signs at once).
        next: Option<KeyId>,
    },
    /// Events older than the retention were deleted; the chain goes on from
    /// a sealed checkpoint.
    AuditPruned {
        /// The last deleted `seq`.
        through_seq: u64,
        /// How many events were deleted.
        count: u64,
    },
}

/// The event names a user sees of their own activity
/// (`GET /users/me/events`).
pub const USER_VISIBLE_EVENTS: &[&str] = &[
    "login.succeeded",
    "login.failed",
    "refresh_token.reused",
    "session.ended",
    "sessions.ended",
    "password.changed",
    "profile.updated",
    "api_key.created",
    "api_key.revoked",
    "user.updated_by_admin",
];

/// Every event name, for the admin filter's validation.
pub const EVENT_NAMES: &[&str] = &[
    "user.registered",
    "login.succeeded",
    "login.failed",
    "login.rate_limited",
    "refresh_token.reused",
    "session.ended",
    "sessions.ended",
    "password.changed",
    "profile.updated",
    "account.deleted",
    "user.updated_by_admin",
    "api_key.created",
    "api_key.revoked",
    "signing_keys.installed",
    "signing_key.rotated",
    "audit.pruned",
];

impl AuditEvent {
    /// The stored name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::UserRegistered { .. } => "user.registered",
            Self::LoginSucceeded { .. } => "login.succeeded",
            Self::LoginFailed { .. } => "login.failed",
            Self::LoginRateLimited { .. } => "login.rate_limited",
            Self::RefreshTokenReused { .. } => "refresh_token.reused",
            Self::SessionEnded { .. } => "session.ended",
            Self::SessionsEnded { .. } => "sessions.ended",
            Self::PasswordChanged => "password.changed",
            Self::ProfileUpdated { .. } => "profile.updated",
            Self::AccountDeleted => "account.deleted",
            Self::AdminUserUpdated(_) => "user.updated_by_admin",
            Self::ApiKeyCreated { .. } => "api_key.created",
            Self::ApiKeyRevoked { .. } => "api_key.revoked",
            Self::SigningKeysInstalled { .. } => "signing_keys.installed",
            Self::SigningKeyRotated { .. } => "signing_key.rotated",
            Self::AuditPruned { .. } => "audit.pruned",
        }
    }

    /// The details object, as stored (compact JSON, keys in a fixed order).
    pub fn details(&self) -> Value {
        match self {
            Self::UserRegistered { username, role } => {
                json!({"username": username.as_str(), "role": role.as_str()})
            }
            Self::LoginSucceeded { session_id } => json!({"session_id": session_id.to_string()}),
            Self::LoginFailed { reason, credential } => {
                json!({"reason": reason.as_str(), "credential": credential.as_str()})
            }
            Self::LoginRateLimited { credential } => json!({"credential": credential.as_str()}),
            Self::RefreshTokenReused { session_id } => {
                json!({"session_id": session_id.to_string()})
            }
            Self::SessionEnded { session_id, reason } => {
                json!({"session_id": session_id.to_string(), "reason": reason.as_str()})
            }
            Self::SessionsEnded {
                count,
                kept_current,
            } => json!({"count": count, "kept_current": kept_current}),
            Self::PasswordChanged | Self::AccountDeleted => json!({}),
            Self::ProfileUpdated { email, full_name } => {
                json!({"email": email, "full_name": full_name})
            }
            Self::AdminUserUpdated(changes) => {
                let mut details = serde_json::Map::new();
                if let Some(role) = changes.role {
                    details.insert("role".to_owned(), json!(role.as_str()));
                }
                if let Some(disabled) = changes.disabled {
                    details.insert("disabled".to_owned(), json!(disabled));
                }
                details.insert("email".to_owned(), json!(changes.email));
                details.insert("full_name".to_owned(), json!(changes.full_name));
                Value::Object(details)
            }
            Self::ApiKeyCreated {
                key_id,
                name,
                scopes,
            } => json!({
                "key_id": key_id.to_string(),
                "name": name.as_str(),
                "scopes": scopes.to_string(),
            }),
            Self::ApiKeyRevoked { key_id } => json!({"key_id": key_id.to_string()}),
            Self::SigningKeysInstalled { kids } => json!({
                "kids": kids.iter().map(KeyId::as_str).collect::<Vec<_>>(),
            }),
            Self::SigningKeyRotated {
                retired,
                current,
                next,
            } => json!({
                "retired_kid": retired.as_str(),
                "current_kid": current.as_str(),
                "next_kid": next.as_ref().map(KeyId::as_str),
            }),
            Self::AuditPruned { through_seq, count } => {
                json!({"through_seq": through_seq, "count": count})
            }
        }
    }
}

/// Who caused an event, from where, and when: what every event of one
/// request shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// When (the use-case's `now`).
    pub at: OffsetDateTime,
    /// The account that acted, when one did (the user logging in, the
    /// administrator, the owner of a key); `None` for the command line and
    /// the service itself.
    pub actor_id: Option<UserId>,
    /// Where the request came from.
    pub client: ClientInfo,
}

impl AuditContext {
    /// A context for work the service does by itself (rotation, pruning)
    /// or the command line does: no actor, no client.
    pub fn system(at: OffsetDateTime) -> Self {
        Self {
            at,
            actor_id: None,
            client: ClientInfo::default(),
        }
    }

    /// An event about `subject_id` in this context.
    pub fn record(&self, subject_id: Option<UserId>, event: AuditEvent) -> AuditRecord {
        AuditRecord {
            context: self.clone(),
            subject_id,
            event,
        }
    }
}

/// An event to append: what happened, to whom, in which context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Who, from where, when.
    pub context: AuditContext,
    /// The account the event is about, when there is one.
    pub subject_id: Option<UserId>,
    /// What happened.
    pub event: AuditEvent,
}

impl AuditRecord {
    /// The same record about `subject_id`: stores use it where only they
    /// know the account (a change by username).
    #[must_use]
    pub fn about(&self, subject_id: UserId) -> Self {
        Self {
            subject_id: Some(subject_id),
            ..self.clone()
        }
    }

    /// Another event in the same context about the same subject (a session
    /// the same change ended).
    #[must_use]
    pub fn with_event(&self, event: AuditEvent) -> Self {
        Self {
            event,
            ..self.clone()
        }
    }

    /// The stored form at `seq`.
    pub fn entry(&self, seq: u64) -> AuditEntry {
        AuditEntry {
            seq,
            at: self
                .context
                .at
                .replace_nanosecond(0)
                .unwrap_or(self.context.at),
            event: self.event.name().to_owned(),
            actor_id: self.context.actor_id,
            subject_id: self.subject_id,
            ip: self.context.client.ip.map(|ip| ip.to_string()),
            user_agent: self.context.client.user_agent.clone(),
            request_id: self.context.client.request_id.clone(),
            details: self.event.details().to_string(),
        }
    }
}

/// One stored event, as read back (`GET /admin/audit`, `audit export`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When (whole seconds).
    pub at: OffsetDateTime,
    /// The event name ([`AuditEvent::name`]).
    pub event: String,
    /// Who acted.
    pub actor_id: Option<UserId>,
    /// Whom it is about.
    pub subject_id: Option<UserId>,
    /// The client address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The request's id (`X-Request-Id`).
    pub request_id: Option<String>,
    /// The details object, as JSON text.
    pub details: String,
}

impl AuditEntry {
    /// The bytes its MAC covers: every field, each length-prefixed (so no
    /// two entries encode alike), after the previous entry's MAC.
    pub fn mac_input(&self, previous: &AuditMac) -> Vec<u8> {
        let mut message = Vec::with_capacity(128 + self.details.len());
        message.extend_from_slice(b"portcullis audit entry v1\0");
        message.extend_from_slice(&previous.0);
        message.extend_from_slice(&self.seq.to_be_bytes());
        message.extend_from_slice(&self.at.unix_timestamp().to_be_bytes());
        push_field(&mut message, Some(self.event.as_bytes()));
        push_field(
            &mut message,
            self.actor_id
                .map(|id| id.to_string())
                .as_deref()
                .map(str::as_bytes),
        );
        push_field(
            &mut message,
            self.subject_id
                .map(|id| id.to_string())
                .as_deref()
                .map(str::as_bytes),
        );
        push_field(&mut message, self.ip.as_deref().map(str::as_bytes));
        push_field(&mut message, self.user_agent.as_deref().map(str::as_bytes));
        push_field(&mut message, self.request_id.as_deref().map(str::as_bytes));
        push_field(&mut message, Some(self.details.as_bytes()));
        message
    }
}

fn push_field(message: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => message.push(0),
        Some(bytes) => {
            message.push(1);
            let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            message.extend_from_slice(&length.to_be_bytes());
            message.extend_from_slice(bytes);
        }
    }
}

/// A stored event with its chain MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAuditEntry {
    /// The event.
    pub entry: AuditEntry,
    /// MAC over the event and the previous event's MAC.
    pub mac: AuditMac,
}

/// The last event of the chain: `seq` 0 and [`AuditMac::GENESIS`] for an
/// empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPosition {
    /// Its `seq`.
    pub seq: u64,
    /// Its MAC.
    pub mac: AuditMac,
}

impl ChainPosition {
    /// Where an empty chain stands.
    pub const GENESIS: Self = Self {
        seq: 0,
        mac: AuditMac::GENESIS,
    };

    fn seal_input(&self, label: &[u8], at: Option<OffsetDateTime>) -> Vec<u8> {
        let mut message = Vec::with_capacity(80);
        message.extend_from_slice(label);
        message.extend_from_slice(&self.seq.to_be_bytes());
        message.extend_from_slice(&self.mac.0);
        if let Some(at) = at {
            message.extend_from_slice(&at.unix_timestamp().to_be_bytes());
        }
        message
    }
}

/// The chain's head as stored: its last event, sealed, so that removing
/// events from the end is detected (unless the head is rolled back to an
/// earlier sealed head, which only an outside copy of the head can show;
/// `audit verify` prints it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedHead {
    /// The last event.
    pub position: ChainPosition,
    /// MAC of the position.
    pub seal: AuditMac,
}

impl SealedHead {
    /// Seals `position` as the head.
    pub fn seal(key: &dyn AuditKey, position: ChainPosition) -> Self {
        Self {
            position,
            seal: key.mac(&position.seal_input(b"portcullis audit head v1\0", None)),
        }
    }

    /// Whether the seal verifies with `key`: `false` for a head altered
    /// by hand, or for another master key's chain.
    pub fn is_intact(&self, key: &dyn AuditKey) -> bool {
        Self::seal(key, self.position).seal.same_as(&self.seal)
    }
}

/// Where the chain starts after pruning: the last deleted event, sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedCheckpoint {
    /// The last deleted event.
    pub position: ChainPosition,
    /// When the pruning ran.
    pub pruned_at: OffsetDateTime,
    /// MAC of both.
    pub seal: AuditMac,
}

impl SealedCheckpoint {
    /// Seals `position` as the checkpoint of a pruning at `pruned_at`.
    pub fn seal(key: &dyn AuditKey, position: ChainPosition, pruned_at: OffsetDateTime) -> Self {
        let pruned_at = pruned_at.replace_nanosecond(0).unwrap_or(pruned_at);
        Self {
            position,
            pruned_at,
            seal: key
                .mac(&position.seal_input(b"portcullis audit checkpoint v1\0", Some(pruned_at))),
        }
    }

    fn is_intact(&self, key: &dyn AuditKey) -> bool {
        Self::seal(key, self.position, self.pruned_at)
            .seal
            .same_as(&self.seal)
    }
}

/// The chain's ends as stored: what verification starts from and must
/// reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditAnchor {
    /// The head; `None` before the first event.
    pub head: Option<SealedHead>,
    /// The checkpoint of the last pruning; `None` if never pruned.
    pub checkpoint: Option<SealedCheckpoint>,
}

/// The next entry of the chain and the head after it: what a store inserts
/// and stores, in the transaction of the change, after reading (and
/// locking) `head`.
///
/// A stored head whose seal does not verify (set back by hand to hide
/// deleted events) is refused: chaining onto it would seal the forgery.
/// Every audited change then fails, loudly, until the log is looked at;
/// failing closed is the point.
pub fn chain_next(
    key: &dyn AuditKey,
    head: Option<&SealedHead>,
    record: &AuditRecord,
) -> Result<(SealedAuditEntry, SealedHead), crate::StoreError> {
    if let Some(head) = head
        && !head.is_intact(key)
    {
        return Err(altered_error(head.position.seq, "head"));
    }
    let previous = head.map_or(ChainPosition::GENESIS, |head| head.position);
    let entry = record.entry(previous.seq + 1);
    let mac = key.mac(&entry.mac_input(&previous.mac));
    let position = ChainPosition {
        seq: entry.seq,
        mac,
    };
    Ok((
        SealedAuditEntry { entry, mac },
        SealedHead::seal(key, position),
    ))
}

/// The checkpoint a pruning stores after deleting `deleted` entries up to
/// and including `through`, after checking what it replaces: the old
/// checkpoint's seal, and that exactly the entries after it up to `through`
/// were there to delete. Otherwise events were removed by hand, and sealing
/// a checkpoint over the gap would hide it: refused, and the store rolls
/// the pruning back.
pub fn next_checkpoint(
    key: &dyn AuditKey,
    previous: Option<&SealedCheckpoint>,
    through: ChainPosition,
    deleted: u64,
    pruned_at: OffsetDateTime,
) -> Result<SealedCheckpoint, crate::StoreError> {
    if let Some(previous) = previous
        && !previous.is_intact(key)
    {
        return Err(altered_error(previous.position.seq, "checkpoint"));
    }
    let starts_after = previous.map_or(0, |previous| previous.position.seq);
    if through.seq.checked_sub(starts_after) != Some(deleted) {
        return Err(altered_error(starts_after + 1, "start"));
    }
    Ok(SealedCheckpoint::seal(key, through, pruned_at))
}

fn altered_error(seq: u64, part: &str) -> crate::StoreError {
    crate::StoreError::Failed(format!(
        "the audit log's {part} (at seq {seq}) was altered outside Portcullis: nothing was \
         written; run `portcullis audit verify`"
    ))
}

/// What is wrong at the first bad place of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainProblem {
    /// The event with this `seq` is missing (deleted, or the log truncated).
    Missing,
    /// The event's content or MAC is not what was written (edited, or moved
    /// from another position).
    Altered,
    /// The sealed checkpoint was altered or replaced.
    CheckpointAltered,
    /// The sealed head was altered, replaced or removed.
    HeadAltered,
    /// An event is stored where the chain has none (before the checkpoint,
    /// or after the head).
    Unexpected,
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "the event is missing",
            Self::Altered => "the event was altered or moved",
            Self::CheckpointAltered => "the pruning checkpoint was altered",
            Self::HeadAltered => "the chain head was altered or removed",
            Self::Unexpected => "an event is stored outside the chain",
        })
    }
}

/// The first bad place of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {problem}")]
pub struct ChainBreak {
    /// The first `seq` that does not verify.
    pub seq: u64,
    /// What is wrong there.
    pub problem: ChainProblem,
}

/// What a whole chain holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainReport {
    /// Events checked.
    pub events: u64,
    /// The `seq` verification started after (the checkpoint's, or 0).
    pub starts_after: u64,
    /// The head reached; `None` for an empty chain.
    pub head: Option<ChainPosition>,
}

/// Checks a chain, entry by entry in `seq` order, against its anchor.
/// Entries are fed as the store pages them; entries after the head (events
/// appended since the anchor was read) are ignored.
pub struct ChainVerifier<'k> {
    key: &'k dyn AuditKey,
    anchor: AuditAnchor,
    expected: ChainPosition,
    events: u64,
    starts_after: u64,
}

impl<'k> ChainVerifier<'k> {
    /// Starts from the anchor's checkpoint (or the genesis), checking the
    /// checkpoint's and the head's seals.
    pub fn start(key: &'k dyn AuditKey, anchor: AuditAnchor) -> Result<Self, ChainBreak> {
        let start = match anchor.checkpoint {
            Some(checkpoint) if !checkpoint.is_intact(key) => {
                return Err(ChainBreak {
                    seq: checkpoint.position.seq,
                    problem: ChainProblem::CheckpointAltered,
                });
            }
            Some(checkpoint) => checkpoint.position,
            None => ChainPosition::GENESIS,
        };
        if let Some(head) = anchor.head
            && (!head.is_intact(key) || head.position.seq < start.seq)
        {
            return Err(ChainBreak {
                seq: head.position.seq,
                problem: ChainProblem::HeadAltered,
            });
        }
        Ok(Self {
            key,
            anchor,
            expected: start,
            events: 0,
            starts_after: start.seq,
        })
    }

    /// The `seq` after which to read entries.
    pub fn position(&self) -> u64 {
        self.expected.seq
    }

    /// Whether every entry up to the head has been checked: the caller can
    /// stop reading.
    pub fn reached_head(&self) -> bool {
        self.anchor
            .head
            .is_some_and(|head| self.expected.seq >= head.position.seq)
    }

    /// Checks the next entry.
    pub fn check(&mut self, sealed: &SealedAuditEntry) -> Result<(), ChainBreak> {
        let seq = sealed.entry.seq;
        let Some(head) = self.anchor.head else {
            // No head, but an event: the head was removed.
            return Err(ChainBreak {
                seq,
                problem: ChainProblem::HeadAltered,
            });
        };
        if seq > head.position.seq {
            // Appended after the anchor was read: not this check's business.
            return Ok(());
        }
        let wanted = self.expected.seq + 1;
        if seq < wanted {
            return Err(ChainBreak {
                seq,
                problem: ChainProblem::Unexpected,
            });
        }
        if seq > wanted {
            return Err(ChainBreak {
                seq: wanted,
                problem: ChainProblem::Missing,
            });
        }
        let mac = self.key.mac(&sealed.entry.mac_input(&self.expected.mac));
        if !mac.same_as(&sealed.mac) {
            return Err(ChainBreak {
                seq,
                problem: ChainProblem::Altered,
            });
        }
        self.expected = ChainPosition { seq, mac };
        self.events += 1;
        Ok(())
    }

    /// Ends the check: every entry up to the head was seen, and the last
    /// one is the head.
    pub fn finish(self) -> Result<ChainReport, ChainBreak> {
        match self.anchor.head {
            None => Ok(ChainReport {
                events: 0,
                starts_after: self.starts_after,
                head: None,
            }),
            Some(head) if self.expected.seq < head.position.seq => Err(ChainBreak {
                seq: self.expected.seq + 1,
                problem: ChainProblem::Missing,
            }),
            Some(head) if !head.position.mac.same_as(&self.expected.mac) => Err(ChainBreak {
                seq: head.position.seq,
                problem: ChainProblem::HeadAltered,
            }),
            Some(head) => Ok(ChainReport {
                events: self.events,
                starts_after: self.starts_after,
                head: Some(head.position),
            }),
        }
    }
}

/// Which events to list (`GET /admin/audit`, `GET /users/me/events`),
/// newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events whose subject or actor is this account.
    pub user: Option<UserId>,
    /// Only events whose subject is this account (what was done to it, by
    /// itself or anyone else; not what it did to others).
    pub subject: Option<UserId>,
    /// Only events with one of these names; empty for every name.
    pub events: Vec<String>,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// Size and position of the page.
    pub page: PageRequest,
}

impl PageCursor {
    /// The position after the event `seq` in the newest-first audit
    /// listing.
    pub fn after_audit_event(seq: u64) -> Self {
        Self::encode(&format!("a:{seq}"))
    }

    /// Reads an [`after_audit_event`](Self::after_audit_event) cursor back.
    pub fn audit_position(&self) -> Result<u64, crate::StoreError> {
        match self.decode()?.split(':').collect::<Vec<_>>().as_slice() {
            ["a", seq] => seq.parse().map_err(|_| crate::StoreError::InvalidCursor),
            _ => Err(crate::StoreError::InvalidCursor),
        }
    }
}

/// The audit log of a whole store, for `db copy`: every stored entry in
/// `seq` order and both ends of the chain, copied verbatim so that the copy
/// verifies with the same master key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditSnapshot {
    /// Every entry.
    pub entries: Vec<SealedAuditEntry>,
    /// The ends.
    pub anchor: AuditAnchor,
}

/// How many entries [`verify_store`] reads per page.
pub const VERIFY_PAGE_SIZE: u32 = 1_000;

/// Verifies the whole stored chain of `store` with `key`: reads the anchor,
/// then every entry after the checkpoint up to the head, page by page.
/// The outer error is the store's; the inner one the first bad place.
pub async fn verify_store(
    store: &dyn crate::ports::AuditStore,
    key: &dyn AuditKey,
) -> Result<Result<ChainReport, ChainBreak>, crate::StoreError> {
    let anchor = store.audit_anchor().await?;
    let mut verifier = match ChainVerifier::start(key, anchor) {
        Ok(verifier) => verifier,
        Err(broken) => return Ok(Err(broken)),
    };
    let mut after = verifier.position();
    loop {
        let page = store.audit_chain_page(after, VERIFY_PAGE_SIZE).await?;
        let Some(last) = page.last() else { break };
        after = last.entry.seq;
        for sealed in &page {
            if let Err(broken) = verifier.check(sealed) {
                return Ok(Err(broken));
            }
        }
        if verifier.reached_head() {
            break;
        }
    }
    Ok(verifier.finish())
}

/// A store without its chain key: what a store answers when asked to
/// append before [`AuditKey`] was given to it.
pub fn missing_key_error() -> crate::StoreError {
    crate::StoreError::Failed(
        "the audit log has no key: the store was opened without the master key's audit key"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::hash::{DefaultHasher, Hash, Hasher};

    use time::macros::datetime;

    use super::*;

    /// A keyed hash standing in for HMAC: the chain logic is what is tested
    /// here (the real key is tested in `portcullis-adapters`).
    struct SipKey(u64);

    impl AuditKey for SipKey {
        fn mac(&self, message: &[u8]) -> AuditMac {
            let mut mac = [0_u8; 32];
            for (round, chunk) in mac.chunks_mut(8).enumerate() {
                let mut hasher = DefaultHasher::new();
                (self.0, round, message).hash(&mut hasher);
                chunk.copy_from_slice(&hasher.finish().to_be_bytes());
            }
            AuditMac(mac)
        }
    }

    fn chain(key: &dyn AuditKey, count: u64) -> (Vec<SealedAuditEntry>, AuditAnchor) {
        let mut entries = Vec::new();
        let mut head = None;
        for n in 0..count {
            let record = AuditContext::system(datetime!(2026-12-04 12:00 UTC)).record(
                None,
                AuditEvent::SessionsEnded {
                    count: n,
                    kept_current: false,
                },
            );
            let (sealed, next) = chain_next(key, head.as_ref(), &record).unwrap();
            entries.push(sealed);
            head = Some(next);
        }
        (
            entries,
            AuditAnchor {
                head,
                checkpoint: None,
            },
        )
    }

    fn verify(
        key: &dyn AuditKey,
        entries: &[SealedAuditEntry],
        anchor: AuditAnchor,
    ) -> Result<ChainReport, ChainBreak> {
        let mut verifier = ChainVerifier::start(key, anchor)?;
        for sealed in entries {
            verifier.check(sealed)?;
        }
        verifier.finish()
    }

    fn broken_at(seq: u64, problem: ChainProblem) -> Result<ChainReport, ChainBreak> {
        Err(ChainBreak { seq, problem })
    }

    #[test]
    fn a_whole_chain_verifies_and_reports_its_head() {
        let key = SipKey(1);
        let (entries, anchor) = chain(&key, 5);
        let report = verify(&key, &entries, anchor).unwrap();
        assert_eq!(report.events, 5);
        assert_eq!(report.head.map(|head| head.seq), Some(5));
        assert_eq!(verify(&key, &[], AuditAnchor::default()).unwrap().events, 0);
    }

    #[test]
    fn edited_deleted_reordered_and_truncated_entries_are_named() {
        let key = SipKey(1);
        let (entries, anchor) = chain(&key, 5);

        let mut edited = entries.clone();
        edited[2].entry.details = r#"{"count":99,"kept_current":false}"#.to_owned();
        assert_eq!(
            verify(&key, &edited, anchor),
            broken_at(3, ChainProblem::Altered)
        );

        let mut actor_set = entries.clone();
        actor_set[1].entry.ip = Some("192.0.2.1".to_owned());
        assert_eq!(
            verify(&key, &actor_set, anchor),
            broken_at(2, ChainProblem::Altered)
        );

        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(
            verify(&key, &deleted, anchor),
            broken_at(2, ChainProblem::Missing)
        );

        // Swapping two rows' content (their seq stays where it was).
        let mut reordered = entries.clone();
        let (first, second) = (reordered[1].clone(), reordered[2].clone());
        reordered[1] = SealedAuditEntry {
            entry: AuditEntry {
                seq: 2,
                ..second.entry
            },
            mac: second.mac,
        };
        reordered[2] = SealedAuditEntry {
            entry: AuditEntry {
                seq: 3,
                ..first.entry
            },
            mac: first.mac,
        };
        assert_eq!(
            verify(&key, &reordered, anchor),
            broken_at(2, ChainProblem::Altered)
        );

        assert_eq!(
            verify(&key, &entries[..3], anchor),
            broken_at(4, ChainProblem::Missing)
        );
        assert_eq!(
            verify(&key, &[], anchor),
            broken_at(1, ChainProblem::Missing)
        );
    }

    #[test]
    fn a_moved_head_a_removed_head_and_another_key_are_refused() {
        let key = SipKey(1);
        let (entries, anchor) = chain(&key, 4);
        // The tail cut and the head moved back to the new last entry: its
        // seal does not match.
        let forged_head = SealedHead {
            position: ChainPosition {
                seq: 3,
                mac: entries[2].mac,
            },
            seal: anchor.head.unwrap().seal,
        };
        let forged = AuditAnchor {
            head: Some(forged_head),
            checkpoint: None,
        };
        assert_eq!(
            verify(&key, &entries[..3], forged),
            broken_at(3, ChainProblem::HeadAltered)
        );
        // No head at all, but entries.
        assert_eq!(
            verify(&key, &entries, AuditAnchor::default()),
            broken_at(1, ChainProblem::HeadAltered)
        );
        assert_eq!(
            verify(&SipKey(2), &entries, anchor),
            broken_at(4, ChainProblem::HeadAltered)
        );
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_checkpoint_and_a_forged_one_is_refused() {
        let key = SipKey(1);
        let (entries, anchor) = chain(&key, 6);
        let checkpoint = SealedCheckpoint::seal(
            &key,
            ChainPosition {
                seq: 2,
                mac: entries[1].mac,
            },
            datetime!(2026-12-04 13:00 UTC),
        );
        let pruned = AuditAnchor {
            checkpoint: Some(checkpoint),
            ..anchor
        };
        let report = verify(&key, &entries[2..], pruned).unwrap();
        assert_eq!((report.events, report.starts_after), (4, 2));
        // Deleting one more from the start is detected.
        assert_eq!(
            verify(&key, &entries[3..], pruned),
            broken_at(3, ChainProblem::Missing)
        );
        // A checkpoint moved forward without the key.
        let moved = SealedCheckpoint {
            position: ChainPosition {
                seq: 3,
                mac: entries[2].mac,
            },
            ..checkpoint
        };
        let forged = AuditAnchor {
            checkpoint: Some(moved),
            ..anchor
        };
        assert_eq!(
            verify(&key, &entries[3..], forged),
            broken_at(3, ChainProblem::CheckpointAltered)
        );
    }

    #[test]
    fn entries_appended_after_the_anchor_was_read_are_not_checked() {
        let key = SipKey(1);
        let (entries, _) = chain(&key, 5);
        let (_, earlier) = chain(&key, 3);
        assert_eq!(verify(&key, &entries, earlier).unwrap().events, 3);
    }

    #[test]
    fn details_hold_ids_and_reasons_only() {
        let event = AuditEvent::LoginFailed {
            reason: LoginFailure::WrongPassword,
            credential: LoginCredential::Basic,
        };
        assert_eq!(event.name(), "login.failed");
        assert_eq!(
            event.details().to_string(),
            r#"{"credential":"basic","reason":"wrong_password"}"#
        );
        for name in USER_VISIBLE_EVENTS {
            assert!(EVENT_NAMES.contains(name), "{name}");
        }
    }

    #[test]
    fn audit_cursors_read_back() {
        assert_eq!(
            PageCursor::after_audit_event(42).audit_position().ok(),
            Some(42)
        );
        assert!(PageCursor::after_user(42).audit_position().is_err());
    }
}
