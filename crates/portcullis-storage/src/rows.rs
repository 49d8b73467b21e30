//! Storage rows and their conversion into domain types.
//!
//! A row is read as plain SQLite values first and only then parsed through
//! the domain's own parsers, so a row that no longer satisfies the domain's
//! rules (edited by hand, written by an older version) surfaces as
//! [`StoreError::Unavailable`] instead of a panic or an invalid value.

use portcullis_domain::{
    EmailAddress, FullName, Role, ScopeSet, StoreError, User, UserId, Username,
};
use time::OffsetDateTime;
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
    id: String,
    username: String,
    email: String,
    full_name: Option<String>,
    role: String,
    disabled: bool,
    created_at: i64,
}

impl UserRow {
    /// Reads the [`USER_COLUMNS`] starting at column `first`.
    pub(crate) fn read(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(first)?,
            username: row.get(first + 1)?,
            email: row.get(first + 2)?,
            full_name: row.get(first + 3)?,
            role: row.get(first + 4)?,
            disabled: row.get(first + 5)?,
            created_at: row.get(first + 6)?,
        })
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        // The messages name the column, never its content: a corrupt row may
        // hold anything, and these texts are logged.
        let id = Uuid::parse_str(&row.id).map_err(|_| corrupt("users", "id"))?;
        let username = Username::parse(&row.username).map_err(|_| corrupt("users", "username"))?;
        let email = EmailAddress::parse(&row.email).map_err(|_| corrupt("users", "email"))?;
        let full_name = row
            .full_name
            .as_deref()
            .map(FullName::parse)
            .transpose()
            .map_err(|_| corrupt("users", "full_name"))?;
        let role = Role::parse(&row.role).ok_or_else(|| corrupt("users", "role"))?;
        let created_at = from_unix(row.created_at).ok_or_else(|| corrupt("users", "created_at"))?;
        Ok(User {
            id: UserId::from_uuid(id),
            username,
            email,
            full_name,
            role,
            disabled: row.disabled,
            created_at,
        })
    }
}

/// Parses a stored `sessions.scope`.
pub(crate) fn scope_set(stored: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse(stored).map_err(|_| corrupt("sessions", "scope"))
}

/// A time as stored: whole unix seconds, UTC. Sub-second precision is dropped.
pub(crate) fn to_unix(time: OffsetDateTime) -> i64 {
    time.unix_timestamp()
}

/// A stored time back as a UTC [`OffsetDateTime`]; `None` when out of range.
pub(crate) fn from_unix(seconds: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// The error for a row whose `column` no longer parses.
fn corrupt(table: &str, column: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt row in {table}: invalid {column}"))
}
