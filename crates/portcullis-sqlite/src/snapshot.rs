//! [`StoreCopy`] for [`SqliteStore`]: the whole file as a
//! [`StoreSnapshot`], and a snapshot written into an empty file.
//!
//! Rows are exported in the order they were written (`users.pk`, every other
//! table's `rowid`) and imported in the order given, so a copy of a copy
//! keeps that order too. It matters beyond listing: users are listed by
//! `pk`, and the session cap breaks ties between sessions used in the same
//! second by `rowid` (see `create_session`).

use std::collections::HashSet;

use async_trait::async_trait;
use portcullis_domain::audit::AuditSnapshot;
use portcullis_domain::ports::StoreCopy;
use portcullis_domain::{
    ApiKeyHash, ApiKeyName, ApiKeyRecord, EmailAddress, PasswordHashString, RefreshTokenHash,
    RefreshTokenRecord, SessionId, SessionRecord, StoreError, StoreSnapshot, StoredSigningKey,
    User, UserId, UserRecord,
};
use rusqlite::{Connection, TransactionBehavior, params};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{every_entry, holds_audit_log, insert_entry, read_anchor, write_anchor};
use crate::rows::{
    USER_COLUMN_COUNT, USER_COLUMNS, UserRow, api_key_id, api_key_scope_set, corrupt, from_unix,
    scope_set, session_id, session_user_id, to_unix,
};
use crate::signing_keys::{COLUMNS, KeyRow};
use crate::store::{OperationError, SqliteStore};

#[async_trait]
impl StoreCopy for SqliteStore {
    async fn export_snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        self.run("export_snapshot", |connection| {
            // A deferred transaction only reads; under WAL every statement in
            // it sees the database as of its first read, whatever other
            // connections commit meanwhile. So a session never appears
            // without its user, nor a refresh token without its session.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let snapshot = StoreSnapshot {
                users: export_users(&transaction)?,
                sessions: export_sessions(&transaction)?,
                refresh_tokens: export_refresh_tokens(&transaction)?,
                api_keys: export_api_keys(&transaction)?,
                signing_keys: export_signing_keys(&transaction)?,
                audit: AuditSnapshot {
                    entries: every_entry(&transaction)?,
                    anchor: read_anchor(&transaction)?,
                },
            };
            // Nothing was written; ending the read transaction explicitly
            // says so.
            transaction.rollback()?;
            Ok(snapshot)
        })
        .await
    }

    async fn import_snapshot(&self, snapshot: &StoreSnapshot) -> Result<(), StoreError> {
        let snapshot = snapshot.clone();
        self.run("import_snapshot", move |connection| {
            // The emptiness check and every insert under one write lock: a
            // node starting on this file meanwhile cannot install its own
            // signing keys or register an account between the two. Returning
            // early drops the transaction, which rolls it back.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if holds_anything(&transaction)? {
                return Err(StoreError::NotEmpty.into());
            }
            import_users(&transaction, &snapshot.users)?;
            import_sessions(&transaction, &snapshot.sessions)?;
            import_refresh_tokens(&transaction, &snapshot.refresh_tokens)?;
            import_api_keys(&transaction, &snapshot.api_keys)?;
            import_signing_keys(&transaction, &snapshot.signing_keys)?;
            // Verbatim, MACs and both ends included: the copy verifies with
            // the same master key, and nothing is appended for the copy.
            for sealed in &snapshot.audit.entries {
                insert_entry(&transaction, sealed)?;
            }
            write_anchor(&transaction, &snapshot.audit.anchor)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }
}

/// Whether the file holds an account, a session, an API key, a signing
/// key or any of the audit log. Refresh tokens need not be asked about:
/// each belongs to a session.
fn holds_anything(connection: &Connection) -> Result<bool, OperationError> {
    let holds_state: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM sessions) \
         OR EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 FROM signing_keys)",
        [],
        |row| row.get(0),
    )?;
    Ok(holds_state || holds_audit_log(connection)?)
}

fn export_users(connection: &Connection) -> Result<Vec<UserRecord>, OperationError> {
    let rows = connection
        .prepare(&format!(
            "SELECT {USER_COLUMNS}, password_hash, updated_at FROM users ORDER BY pk"
        ))?
        .query_map([], |row| {
            Ok((
                UserRow::read(row, 0)?,
                row.get::<_, String>(USER_COLUMN_COUNT)?,
                row.get::<_, i64>(USER_COLUMN_COUNT + 1)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut users = Vec::with_capacity(rows.len());
    for (row, password_hash, updated_at) in rows {
        users.push(UserRecord {
            user: User::try_from(row)?,
            password_hash: PasswordHashString::new(password_hash),
            updated_at: time(updated_at, "users", "updated_at")?,
        });
    }
    Ok(users)
}

fn import_users(connection: &Connection, users: &[UserRecord]) -> Result<(), OperationError> {
    let mut insert = connection.prepare(
        "INSERT INTO users \
         (id, username, email, full_name, password_hash, role, disabled, created_at, \
          updated_at, email_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut email_keys = EmailKeys::default();
    // `pk` is left to AUTOINCREMENT: inserted in the given order, the rows
    // get increasing keys, which is creation order for the listing.
    for record in users {
        let user = &record.user;
        insert.execute(params![
            user.id.to_string(),
            user.username.as_str(),
            user.email.as_str(),
            user.full_name.as_ref().map(|name| name.as_str()),
            record.password_hash.as_str(),
            user.role.as_str(),
            user.disabled,
            to_unix(user.created_at),
            to_unix(record.updated_at),
            email_keys.key_for(user),
        ])?;
    }
    Ok(())
}

/// The `email_key` of each imported account, in creation order.
///
/// An account gets [`EmailAddress::canonical`], exactly as `insert_user`
/// writes it, except for the two kinds of row that migration 3 kept with a
/// non-colliding key (see `fill_email_keys` there): a later Unicode twin of
/// an older account's address, and an address that no longer parses. The
/// same rules, applied in the same order, give such rows the same keys
/// here, so copying a file that was upgraded from before migration 3 does
/// not fail on rows the source keeps.
#[derive(Default)]
struct EmailKeys {
    taken: HashSet<String>,
}

impl EmailKeys {
    fn key_for(&mut self, user: &User) -> String {
        let canonical = user.email.canonical();
        if EmailAddress::parse(user.email.as_str()).is_err() {
            return format!("unparsable:{}:{canonical}", user.id);
        }
        if self.taken.insert(canonical.to_owned()) {
            canonical.to_owned()
        } else {
            format!("conflict:{}:{canonical}", user.id)
        }
    }
}

fn export_sessions(connection: &Connection) -> Result<Vec<SessionRecord>, OperationError> {
    let rows = connection
        .prepare(
            "SELECT id, user_id, scope, created_at, last_used_at, expires_at, revoked_at, \
             ip, user_agent FROM sessions ORDER BY rowid",
        )?
        .query_map([], |row| {
            Ok(SessionRow {
                id: row.get(0)?,
                user_id: row.get(1)?,
                scope: row.get(2)?,
                created_at: row.get(3)?,
                last_used_at: row.get(4)?,
                expires_at: row.get(5)?,
                revoked_at: row.get(6)?,
                ip: row.get(7)?,
                user_agent: row.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(SessionRow::into_record)
        .collect::<Result<_, _>>()?)
}

fn import_sessions(
    connection: &Connection,
    sessions: &[SessionRecord],
) -> Result<(), OperationError> {
    let mut insert = connection.prepare(
        "INSERT INTO sessions \
         (id, user_id, scope, created_at, last_used_at, expires_at, revoked_at, ip, user_agent) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for session in sessions {
        insert.execute(params![
            session.id.to_string(),
            session.user_id.to_string(),
            session.scopes.to_string(),
            to_unix(session.created_at),
            to_unix(session.last_used_at),
            to_unix(session.expires_at),
            session.revoked_at.map(to_unix),
            session.ip,
            session.user_agent,
        ])?;
    }
    Ok(())
}

/// A `sessions` row as stored, parsed by [`SessionRow::into_record`].
struct SessionRow {
    id: String,
    user_id: String,
    scope: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl SessionRow {
    fn into_record(self) -> Result<SessionRecord, StoreError> {
        Ok(SessionRecord {
            id: session_id(&self.id)?,
            user_id: session_user_id(&self.user_id)?,
            scopes: scope_set(&self.scope)?,
            created_at: time(self.created_at, "sessions", "created_at")?,
            last_used_at: time(self.last_used_at, "sessions", "last_used_at")?,
            expires_at: time(self.expires_at, "sessions", "expires_at")?,
            revoked_at: self
                .revoked_at
                .map(|seconds| time(seconds, "sessions", "revoked_at"))
                .transpose()?,
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}

fn export_refresh_tokens(
    connection: &Connection,
) -> Result<Vec<RefreshTokenRecord>, OperationError> {
    let rows = connection
        .prepare(
            "SELECT token_hash, session_id, created_at, used_at FROM refresh_tokens \
             ORDER BY rowid",
        )?
        .query_map([], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<i64>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut tokens = Vec::with_capacity(rows.len());
    for (token_hash, session, created_at, used_at) in rows {
        tokens.push(RefreshTokenRecord {
            token_hash: RefreshTokenHash::from_digest(token_hash),
            session_id: Uuid::parse_str(&session)
                .map(SessionId::from_uuid)
                .map_err(|_| corrupt("refresh_tokens", "session_id"))?,
            created_at: time(created_at, "refresh_tokens", "created_at")?,
            used_at: used_at
                .map(|seconds| time(seconds, "refresh_tokens", "used_at"))
                .transpose()?,
        });
    }
    Ok(tokens)
}

fn import_refresh_tokens(
    connection: &Connection,
    tokens: &[RefreshTokenRecord],
) -> Result<(), OperationError> {
    let mut insert = connection.prepare(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, used_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for token in tokens {
        insert.execute(params![
            token.token_hash.as_bytes(),
            token.session_id.to_string(),
            to_unix(token.created_at),
            token.used_at.map(to_unix),
        ])?;
    }
    Ok(())
}

fn export_api_keys(connection: &Connection) -> Result<Vec<ApiKeyRecord>, OperationError> {
    let rows = connection
        .prepare(
            "SELECT id, user_id, name, prefix, key_hash, scope, created_at, last_used_at, \
             expires_at, revoked_at FROM api_keys ORDER BY rowid",
        )?
        .query_map([], |row| {
            Ok(ApiKeyRow {
                id: row.get(0)?,
                user_id: row.get(1)?,
                name: row.get(2)?,
                prefix: row.get(3)?,
                key_hash: row.get(4)?,
                scope: row.get(5)?,
                created_at: row.get(6)?,
                last_used_at: row.get(7)?,
                expires_at: row.get(8)?,
                revoked_at: row.get(9)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(ApiKeyRow::into_record)
        .collect::<Result<_, _>>()?)
}

fn import_api_keys(connection: &Connection, keys: &[ApiKeyRecord]) -> Result<(), OperationError> {
    let mut insert = connection.prepare(
        "INSERT INTO api_keys \
         (id, user_id, name, prefix, key_hash, scope, created_at, last_used_at, expires_at, \
          revoked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for key in keys {
        insert.execute(params![
            key.id.to_string(),
            key.user_id.to_string(),
            key.name.as_str(),
            key.prefix,
            key.key_hash.as_bytes(),
            key.scopes.to_string(),
            to_unix(key.created_at),
            key.last_used_at.map(to_unix),
            key.expires_at.map(to_unix),
            key.revoked_at.map(to_unix),
        ])?;
    }
    Ok(())
}

/// An `api_keys` row as stored, parsed by [`ApiKeyRow::into_record`].
struct ApiKeyRow {
    id: String,
    user_id: String,
    name: String,
    prefix: String,
    key_hash: Vec<u8>,
    scope: String,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl ApiKeyRow {
    fn into_record(self) -> Result<ApiKeyRecord, StoreError> {
        let optional_time = |stored: Option<i64>, column: &str| {
            stored
                .map(|seconds| time(seconds, "api_keys", column))
                .transpose()
        };
        Ok(ApiKeyRecord {
            id: api_key_id(&self.id)?,
            user_id: Uuid::parse_str(&self.user_id)
                .map(UserId::from_uuid)
                .map_err(|_| corrupt("api_keys", "user_id"))?,
            name: ApiKeyName::parse(&self.name).map_err(|_| corrupt("api_keys", "name"))?,
            prefix: self.prefix,
            key_hash: ApiKeyHash::from_digest(self.key_hash),
            scopes: api_key_scope_set(&self.scope)?,
            created_at: time(self.created_at, "api_keys", "created_at")?,
            last_used_at: optional_time(self.last_used_at, "last_used_at")?,
            expires_at: optional_time(self.expires_at, "expires_at")?,
            revoked_at: optional_time(self.revoked_at, "revoked_at")?,
        })
    }
}

// Signing keys are read with `signing_keys.rs`'s row reader, but written
// here: its writer decides `retires_at` from the state it is asked to
// store, while a copy stores each key exactly as it was (the table's CHECK
// refuses a record whose `retires_at` does not match its state).

fn export_signing_keys(connection: &Connection) -> Result<Vec<StoredSigningKey>, OperationError> {
    // Oldest first, as `SigningKeyStore::signing_keys` lists them.
    let rows = connection
        .prepare(&format!(
            "SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, kid"
        ))?
        .query_map([], KeyRow::read)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(KeyRow::into_key)
        .collect::<Result<_, _>>()?)
}

fn import_signing_keys(
    connection: &Connection,
    keys: &[StoredSigningKey],
) -> Result<(), OperationError> {
    let mut insert = connection.prepare(&format!(
        "INSERT INTO signing_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?;
    for key in keys {
        insert.execute(params![
            key.kid.as_str(),
            key.algorithm.as_str(),
            key.state.as_str(),
            to_unix(key.created_at),
            to_unix(key.signs_from),
            key.retires_at.map(to_unix),
            key.public_key,
            key.sealed_private_key.as_bytes(),
        ])?;
    }
    Ok(())
}

/// A stored time of `table.column`, or the error for a corrupt row.
fn time(seconds: i64, table: &str, column: &str) -> Result<OffsetDateTime, StoreError> {
    from_unix(seconds).ok_or_else(|| corrupt(table, column))
}
