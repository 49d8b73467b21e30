//! Stored rows and their conversion into domain types.
//!
//! A row is read as plain PostgreSQL values first and only then parsed
//! through the domain's own parsers, so a row that no longer satisfies the
//! domain's rules (edited by hand, copied from an older store) surfaces as
//! [`StoreError::Failed`] instead of a panic or an invalid value.

use std::time::Duration;

use portcullis_domain::{
    ApiKeyId, ApiKeyInfo, EmailAddress, FullName, Role, ScopeSet, SessionId, SessionInfo,
    StoreError, User, UserId, Username,
};
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

/// The columns of `users` that make up a [`User`], in [`UserRow::read`]'s
/// order.
pub(crate) const USER_COLUMNS: &str = "id, username, email, full_name, role, disabled, created_at";

/// [`USER_COLUMNS`] qualified with the alias `u`, for joins.
pub(crate) const JOINED_USER_COLUMNS: &str =
    "u.id, u.username, u.email, u.full_name, u.role, u.disabled, u.created_at";

/// Number of columns in [`USER_COLUMNS`].
pub(crate) const USER_COLUMN_COUNT: usize = 7;

/// A `users` row as stored.
pub(crate) struct UserRow {
    id: Uuid,
    username: String,
    email: String,
    full_name: Option<String>,
    role: String,
    disabled: bool,
    created_at: i64,
}

impl UserRow {
    /// Reads the [`USER_COLUMNS`] starting at column `first`.
    pub(crate) fn read(row: &Row, first: usize) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: row.try_get(first)?,
            username: row.try_get(first + 1)?,
            email: row.try_get(first + 2)?,
            full_name: row.try_get(first + 3)?,
            role: row.try_get(first + 4)?,
            disabled: row.try_get(first + 5)?,
            created_at: row.try_get(first + 6)?,
        })
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        // The messages name the column, never its content: a corrupt row may
        // hold anything, and these texts are logged.
        let username = Username::parse(&row.username).map_err(|_| corrupt("users", "username"))?;
        // An address accepted by an older version (or copied from a SQLite
        // store that kept one) may fail today's rules: the account must stay
        // readable, so it is kept as stored, as the SQLite store does.
        let email = EmailAddress::parse(&row.email)
            .unwrap_or_else(|_| EmailAddress::from_storage_unchecked(&row.email));
        let full_name = row
            .full_name
            .as_deref()
            .map(FullName::parse)
            .transpose()
            .map_err(|_| corrupt("users", "full_name"))?;
        let role = Role::parse(&row.role).ok_or_else(|| corrupt("users", "role"))?;
        let created_at = from_unix(row.created_at).ok_or_else(|| corrupt("users", "created_at"))?;
        Ok(User {
            id: UserId::from_uuid(row.id),
            username,
            email,
            full_name,
            role,
            disabled: row.disabled,
            created_at,
        })
    }
}

/// The columns of `sessions` that make up a [`SessionInfo`], in
/// [`SessionInfoRow::read`]'s order.
pub(crate) const SESSION_INFO_COLUMNS: &str =
    "id, created_at, last_used_at, expires_at, ip, user_agent";

/// A `sessions` row as listed to its owner.
pub(crate) struct SessionInfoRow {
    pub(crate) id: Uuid,
    pub(crate) created_at: i64,
    pub(crate) last_used_at: i64,
    expires_at: i64,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl SessionInfoRow {
    /// Reads the [`SESSION_INFO_COLUMNS`], starting at column 0.
    pub(crate) fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            created_at: row.try_get(1)?,
            last_used_at: row.try_get(2)?,
            expires_at: row.try_get(3)?,
            ip: row.try_get(4)?,
            user_agent: row.try_get(5)?,
        })
    }

    /// The session as its owner sees it, ending at the earlier of its
    /// absolute expiry and its last use plus `idle_timeout`.
    pub(crate) fn into_session_info(
        self,
        idle_timeout: Duration,
    ) -> Result<SessionInfo, StoreError> {
        let idle_end = self.last_used_at.saturating_add(seconds(idle_timeout));
        // The minimum is never later than the stored expiry, which came from
        // a valid `OffsetDateTime`, so an enormous idle timeout cannot push
        // it out of range.
        let ends_at = self.expires_at.min(idle_end);
        Ok(SessionInfo {
            id: SessionId::from_uuid(self.id),
            created_at: from_unix(self.created_at)
                .ok_or_else(|| corrupt("sessions", "created_at"))?,
            last_used_at: from_unix(self.last_used_at)
                .ok_or_else(|| corrupt("sessions", "last_used_at"))?,
            expires_at: from_unix(ends_at).ok_or_else(|| corrupt("sessions", "expires_at"))?,
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}

/// The columns of `api_keys` that make up an [`ApiKeyInfo`], in
/// [`ApiKeyInfoRow::read`]'s order.
pub(crate) const API_KEY_INFO_COLUMNS: &str =
    "id, name, prefix, scope, created_at, last_used_at, expires_at";

/// An `api_keys` row as listed to its owner.
pub(crate) struct ApiKeyInfoRow {
    id: Uuid,
    name: String,
    prefix: String,
    scope: String,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: Option<i64>,
}

impl ApiKeyInfoRow {
    /// Reads the [`API_KEY_INFO_COLUMNS`], starting at column 0.
    pub(crate) fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            prefix: row.try_get(2)?,
            scope: row.try_get(3)?,
            created_at: row.try_get(4)?,
            last_used_at: row.try_get(5)?,
            expires_at: row.try_get(6)?,
        })
    }
}

impl TryFrom<ApiKeyInfoRow> for ApiKeyInfo {
    type Error = StoreError;

    fn try_from(row: ApiKeyInfoRow) -> Result<Self, Self::Error> {
        Ok(ApiKeyInfo {
            id: ApiKeyId::from_uuid(row.id),
            name: row.name,
            prefix: row.prefix,
            scopes: api_key_scope_set(&row.scope)?,
            created_at: from_unix(row.created_at)
                .ok_or_else(|| corrupt("api_keys", "created_at"))?,
            last_used_at: optional_time(row.last_used_at, "api_keys", "last_used_at")?,
            expires_at: optional_time(row.expires_at, "api_keys", "expires_at")?,
        })
    }
}

/// Parses a stored `api_keys.scope`.
pub(crate) fn api_key_scope_set(stored: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse(stored).map_err(|_| corrupt("api_keys", "scope"))
}

/// Parses a stored `sessions.scope`.
pub(crate) fn scope_set(stored: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse(stored).map_err(|_| corrupt("sessions", "scope"))
}

/// The key `users.username_key` holds for `username`: ASCII case folded,
/// exactly what SQLite's `COLLATE NOCASE` compares, computed here so that
/// the server's locale and collation play no part.
pub(crate) fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// A time as stored: whole unix seconds, UTC. Sub-second precision is
/// dropped, as in the SQLite store, so that both keep the same values.
pub(crate) fn to_unix(time: OffsetDateTime) -> i64 {
    time.unix_timestamp()
}

/// The latest `last_used_at` at which a session counts as idle at `now`:
/// a session is active while `last_used_at + idle_timeout > now`, written as
/// `last_used_at > now - idle_timeout` and computed here with saturation so
/// that no timeout can overflow.
pub(crate) fn idle_cutoff(now: i64, idle_timeout: Duration) -> i64 {
    now.saturating_sub(seconds(idle_timeout))
}

/// A duration in whole seconds, saturating at `i64::MAX`.
fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// A stored time back as a UTC [`OffsetDateTime`]; `None` when out of range.
pub(crate) fn from_unix(seconds: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// An optional stored time of `table.column`, parsed.
pub(crate) fn optional_time(
    stored: Option<i64>,
    table: &str,
    column: &str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    stored
        .map(|seconds| from_unix(seconds).ok_or_else(|| corrupt(table, column)))
        .transpose()
}

/// A required stored time of `table.column`, parsed.
pub(crate) fn time(seconds: i64, table: &str, column: &str) -> Result<OffsetDateTime, StoreError> {
    from_unix(seconds).ok_or_else(|| corrupt(table, column))
}

/// The error for a row whose `column` no longer parses.
pub(crate) fn corrupt(table: &str, column: &str) -> StoreError {
    StoreError::Failed(format!("corrupt row in {table}: invalid {column}"))
}
