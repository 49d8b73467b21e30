//! [`StoreCopy`] for [`PostgresStore`]: the whole database as a
//! [`StoreSnapshot`], and a snapshot written into an empty database.
//!
//! Users are exported in creation order (`users.pk`) and sessions in theirs
//! (`sessions.seq`, the session cap's tie-break), and both are imported in
//! the order given, so a copy of a copy keeps that order too. Each table is
//! written with one statement over arrays (`unnest`), so a large deployment
//! costs a few round trips, not one per row. The audit log is copied
//! verbatim, in `seq` order with its MACs and both ends of the chain, so
//! the copy verifies with the same master key.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use portcullis_domain::audit::{AuditAnchor, AuditSnapshot};
use portcullis_domain::ports::StoreCopy;
use portcullis_domain::{
    ApiKeyHash, ApiKeyId, ApiKeyName, ApiKeyRecord, EmailAddress, PasswordHashString,
    RefreshTokenHash, RefreshTokenRecord, SessionId, SessionRecord, StoreError, StoreSnapshot,
    StoredSigningKey, User, UserId, UserRecord,
};
use tokio_postgres::IsolationLevel;
use uuid::Uuid;

use crate::audit::{
    ENTRY_COLUMNS, EntryColumns, INSERT_ENTRIES, read_entry, seq_to_db, stored_anchor,
};
use crate::rows::{
    USER_COLUMN_COUNT, USER_COLUMNS, UserRow, api_key_scope_set, corrupt, optional_time, scope_set,
    time, to_unix, username_key,
};
use crate::signing_keys::all_keys;
use crate::sql;
use crate::store::{OperationError, PostgresStore};

/// The deadline of one export or import: a copy moves the whole deployment
/// at once, which takes longer than the three seconds of a request, but it
/// must still end when the database stops answering.
const COPY_DEADLINE: Duration = Duration::from_secs(120);

#[async_trait]
impl StoreCopy for PostgresStore {
    async fn export_snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        self.run_within("export_snapshot", COPY_DEADLINE, |mut client| async move {
            // One REPEATABLE READ transaction: every statement sees the
            // database as of the first, whatever commits meanwhile, so a
            // session never appears without its user, nor a token without
            // its session. READ ONLY: it cannot change anything, and such a
            // transaction never fails on a serialization conflict.
            let transaction = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let snapshot = StoreSnapshot {
                users: export_users(&transaction).await?,
                sessions: export_sessions(&transaction).await?,
                refresh_tokens: export_refresh_tokens(&transaction).await?,
                api_keys: export_api_keys(&transaction).await?,
                signing_keys: all_keys(&transaction).await?,
                audit: export_audit(&transaction).await?,
            };
            // Nothing was written; ending the read transaction explicitly
            // says so.
            transaction.rollback().await?;
            Ok(snapshot)
        })
        .await
    }

    async fn import_snapshot(&self, snapshot: &StoreSnapshot) -> Result<(), StoreError> {
        self.run_within("import_snapshot", COPY_DEADLINE, |mut client| async move {
            // The emptiness check and every insert under locks that keep
            // every other writer of these tables out until the commit: a
            // node starting on this database meanwhile cannot install its
            // own signing keys or register an account between the two.
            // Returning early drops the transaction, which rolls it back.
            let transaction = client.transaction().await?;
            transaction
                .batch_execute(
                    "LOCK TABLE users, sessions, refresh_tokens, api_keys, signing_keys, \
                     audit_log, audit_chain IN SHARE ROW EXCLUSIVE MODE",
                )
                .await?;
            if holds_anything(&transaction).await? {
                return Err(StoreError::NotEmpty.into());
            }
            import_users(&transaction, &snapshot.users).await?;
            import_sessions(&transaction, &snapshot.sessions).await?;
            import_refresh_tokens(&transaction, &snapshot.refresh_tokens).await?;
            import_api_keys(&transaction, &snapshot.api_keys).await?;
            import_signing_keys(&transaction, &snapshot.signing_keys).await?;
            import_audit(&transaction, &snapshot.audit).await?;
            transaction.commit().await?;
            Ok(())
        })
        .await
    }
}

/// Whether the database holds an account, a session, an API key, a
/// signing key, an audit event or an audit chain head. Refresh tokens need
/// not be asked about: each belongs to a session.
async fn holds_anything(client: &impl GenericClient) -> Result<bool, OperationError> {
    Ok(sql::query_one(
        client,
        "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM sessions) \
         OR EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 FROM signing_keys) \
         OR EXISTS (SELECT 1 FROM audit_log) \
         OR EXISTS (SELECT 1 FROM audit_chain WHERE head_seq IS NOT NULL \
                    OR checkpoint_seq IS NOT NULL)",
        &[],
    )
    .await?
    .try_get(0)?)
}

async fn export_users(client: &impl GenericClient) -> Result<Vec<UserRecord>, OperationError> {
    let rows = sql::query(
        client,
        &format!("SELECT {USER_COLUMNS}, password_hash, updated_at FROM users ORDER BY pk"),
        &[],
    )
    .await?;
    let mut users = Vec::with_capacity(rows.len());
    for row in &rows {
        users.push(UserRecord {
            user: User::try_from(UserRow::read(row, 0)?)?,
            password_hash: PasswordHashString::new(row.try_get(USER_COLUMN_COUNT)?),
            updated_at: time(row.try_get(USER_COLUMN_COUNT + 1)?, "users", "updated_at")?,
        });
    }
    Ok(users)
}

async fn import_users(
    client: &impl GenericClient,
    users: &[UserRecord],
) -> Result<(), OperationError> {
    let mut email_keys = EmailKeys::default();
    let ids: Vec<Uuid> = users
        .iter()
        .map(|record| record.user.id.as_uuid())
        .collect();
    let usernames: Vec<&str> = users
        .iter()
        .map(|record| record.user.username.as_str())
        .collect();
    let username_keys: Vec<String> = usernames.iter().map(|name| username_key(name)).collect();
    let emails: Vec<&str> = users
        .iter()
        .map(|record| record.user.email.as_str())
        .collect();
    let keys: Vec<String> = users
        .iter()
        .map(|record| email_keys.key_for(&record.user))
        .collect();
    let full_names: Vec<Option<&str>> = users
        .iter()
        .map(|record| record.user.full_name.as_ref().map(|name| name.as_str()))
        .collect();
    let hashes: Vec<&str> = users
        .iter()
        .map(|record| record.password_hash.as_str())
        .collect();
    let roles: Vec<&str> = users
        .iter()
        .map(|record| record.user.role.as_str())
        .collect();
    let disabled: Vec<bool> = users.iter().map(|record| record.user.disabled).collect();
    let created: Vec<i64> = users
        .iter()
        .map(|record| to_unix(record.user.created_at))
        .collect();
    let updated: Vec<i64> = users
        .iter()
        .map(|record| to_unix(record.updated_at))
        .collect();
    // `pk` is left to the identity column: rows are inserted sorted by
    // their position in the snapshot, so they get increasing keys in that
    // order, which is creation order for the listing.
    sql::execute(
        client,
        "INSERT INTO users \
         (id, username, username_key, email, email_key, full_name, password_hash, role, \
          disabled, created_at, updated_at) \
         SELECT r.id, r.username, r.username_key, r.email, r.email_key, r.full_name, \
                r.password_hash, r.role, r.disabled, r.created_at, r.updated_at \
         FROM unnest($1::UUID[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], \
                     $7::TEXT[], $8::TEXT[], $9::BOOLEAN[], $10::BIGINT[], $11::BIGINT[]) \
              WITH ORDINALITY AS r(id, username, username_key, email, email_key, full_name, \
                                   password_hash, role, disabled, created_at, updated_at, \
                                   position) \
         ORDER BY r.position",
        &[
            &ids,
            &usernames,
            &username_keys,
            &emails,
            &keys,
            &full_names,
            &hashes,
            &roles,
            &disabled,
            &created,
            &updated,
        ],
    )
    .await?;
    Ok(())
}

/// The `email_key` of each imported account, in creation order, exactly as
/// the SQLite store's copy computes it: [`EmailAddress::canonical`], as
/// `insert_user` writes it, except for the two kinds of row that the SQLite
/// store's migration 3 kept with a non-colliding key (a later Unicode twin
/// of an older account's address, and an address that no longer parses).
/// The same rules, applied in the same order, give such rows the same keys
/// here, so copying a SQLite file upgraded from before that migration does
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

async fn export_sessions(
    client: &impl GenericClient,
) -> Result<Vec<SessionRecord>, OperationError> {
    let rows = sql::query(
        client,
        "SELECT id, user_id, scope, created_at, last_used_at, expires_at, revoked_at, \
         ip, user_agent FROM sessions ORDER BY seq",
        &[],
    )
    .await?;
    let mut sessions = Vec::with_capacity(rows.len());
    for row in &rows {
        let scope: String = row.try_get(2)?;
        sessions.push(SessionRecord {
            id: SessionId::from_uuid(row.try_get(0)?),
            user_id: UserId::from_uuid(row.try_get(1)?),
            scopes: scope_set(&scope)?,
            created_at: time(row.try_get(3)?, "sessions", "created_at")?,
            last_used_at: time(row.try_get(4)?, "sessions", "last_used_at")?,
            expires_at: time(row.try_get(5)?, "sessions", "expires_at")?,
            revoked_at: optional_time(row.try_get(6)?, "sessions", "revoked_at")?,
            ip: row.try_get(7)?,
            user_agent: row.try_get(8)?,
        });
    }
    Ok(sessions)
}

async fn import_sessions(
    client: &impl GenericClient,
    sessions: &[SessionRecord],
) -> Result<(), OperationError> {
    let ids: Vec<Uuid> = sessions
        .iter()
        .map(|session| session.id.as_uuid())
        .collect();
    let users: Vec<Uuid> = sessions
        .iter()
        .map(|session| session.user_id.as_uuid())
        .collect();
    let scopes: Vec<String> = sessions
        .iter()
        .map(|session| session.scopes.to_string())
        .collect();
    let created: Vec<i64> = sessions
        .iter()
        .map(|session| to_unix(session.created_at))
        .collect();
    let used: Vec<i64> = sessions
        .iter()
        .map(|session| to_unix(session.last_used_at))
        .collect();
    let expires: Vec<i64> = sessions
        .iter()
        .map(|session| to_unix(session.expires_at))
        .collect();
    let revoked: Vec<Option<i64>> = sessions
        .iter()
        .map(|session| session.revoked_at.map(to_unix))
        .collect();
    let ips: Vec<Option<&str>> = sessions
        .iter()
        .map(|session| session.ip.as_deref())
        .collect();
    let agents: Vec<Option<&str>> = sessions
        .iter()
        .map(|session| session.user_agent.as_deref())
        .collect();
    // Sorted by position, so `seq` follows the snapshot's order.
    sql::execute(
        client,
        "INSERT INTO sessions \
         (id, user_id, scope, created_at, last_used_at, expires_at, revoked_at, ip, user_agent) \
         SELECT r.id, r.user_id, r.scope, r.created_at, r.last_used_at, r.expires_at, \
                r.revoked_at, r.ip, r.user_agent \
         FROM unnest($1::UUID[], $2::UUID[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], \
                     $6::BIGINT[], $7::BIGINT[], $8::TEXT[], $9::TEXT[]) \
              WITH ORDINALITY AS r(id, user_id, scope, created_at, last_used_at, expires_at, \
                                   revoked_at, ip, user_agent, position) \
         ORDER BY r.position",
        &[
            &ids, &users, &scopes, &created, &used, &expires, &revoked, &ips, &agents,
        ],
    )
    .await?;
    Ok(())
}

async fn export_refresh_tokens(
    client: &impl GenericClient,
) -> Result<Vec<RefreshTokenRecord>, OperationError> {
    let rows = sql::query(
        client,
        "SELECT t.token_hash, t.session_id, t.created_at, t.used_at \
         FROM refresh_tokens AS t JOIN sessions AS s ON s.id = t.session_id \
         ORDER BY s.seq, t.created_at, t.used_at NULLS LAST, t.token_hash",
        &[],
    )
    .await?;
    let mut tokens = Vec::with_capacity(rows.len());
    for row in &rows {
        tokens.push(RefreshTokenRecord {
            token_hash: RefreshTokenHash::from_digest(row.try_get(0)?),
            session_id: SessionId::from_uuid(row.try_get(1)?),
            created_at: time(row.try_get(2)?, "refresh_tokens", "created_at")?,
            used_at: optional_time(row.try_get(3)?, "refresh_tokens", "used_at")?,
        });
    }
    Ok(tokens)
}

async fn import_refresh_tokens(
    client: &impl GenericClient,
    tokens: &[RefreshTokenRecord],
) -> Result<(), OperationError> {
    let hashes: Vec<&[u8]> = tokens
        .iter()
        .map(|token| token.token_hash.as_bytes())
        .collect();
    let sessions: Vec<Uuid> = tokens
        .iter()
        .map(|token| token.session_id.as_uuid())
        .collect();
    let created: Vec<i64> = tokens
        .iter()
        .map(|token| to_unix(token.created_at))
        .collect();
    let used: Vec<Option<i64>> = tokens
        .iter()
        .map(|token| token.used_at.map(to_unix))
        .collect();
    sql::execute(
        client,
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, used_at) \
         SELECT * FROM unnest($1::BYTEA[], $2::UUID[], $3::BIGINT[], $4::BIGINT[])",
        &[&hashes, &sessions, &created, &used],
    )
    .await?;
    Ok(())
}

async fn export_api_keys(client: &impl GenericClient) -> Result<Vec<ApiKeyRecord>, OperationError> {
    let rows = sql::query(
        client,
        "SELECT id, user_id, name, prefix, key_hash, scope, created_at, last_used_at, \
         expires_at, revoked_at FROM api_keys ORDER BY created_at, id",
        &[],
    )
    .await?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.try_get(2)?;
        let scope: String = row.try_get(5)?;
        keys.push(ApiKeyRecord {
            id: ApiKeyId::from_uuid(row.try_get(0)?),
            user_id: UserId::from_uuid(row.try_get(1)?),
            name: ApiKeyName::parse(&name).map_err(|_| corrupt("api_keys", "name"))?,
            prefix: row.try_get(3)?,
            key_hash: ApiKeyHash::from_digest(row.try_get(4)?),
            scopes: api_key_scope_set(&scope)?,
            created_at: time(row.try_get(6)?, "api_keys", "created_at")?,
            last_used_at: optional_time(row.try_get(7)?, "api_keys", "last_used_at")?,
            expires_at: optional_time(row.try_get(8)?, "api_keys", "expires_at")?,
            revoked_at: optional_time(row.try_get(9)?, "api_keys", "revoked_at")?,
        });
    }
    Ok(keys)
}

async fn import_api_keys(
    client: &impl GenericClient,
    keys: &[ApiKeyRecord],
) -> Result<(), OperationError> {
    let ids: Vec<Uuid> = keys.iter().map(|key| key.id.as_uuid()).collect();
    let users: Vec<Uuid> = keys.iter().map(|key| key.user_id.as_uuid()).collect();
    let names: Vec<&str> = keys.iter().map(|key| key.name.as_str()).collect();
    let prefixes: Vec<&str> = keys.iter().map(|key| key.prefix.as_str()).collect();
    let hashes: Vec<&[u8]> = keys.iter().map(|key| key.key_hash.as_bytes()).collect();
    let scopes: Vec<String> = keys.iter().map(|key| key.scopes.to_string()).collect();
    let created: Vec<i64> = keys.iter().map(|key| to_unix(key.created_at)).collect();
    let used: Vec<Option<i64>> = keys
        .iter()
        .map(|key| key.last_used_at.map(to_unix))
        .collect();
    let expires: Vec<Option<i64>> = keys.iter().map(|key| key.expires_at.map(to_unix)).collect();
    let revoked: Vec<Option<i64>> = keys.iter().map(|key| key.revoked_at.map(to_unix)).collect();
    sql::execute(
        client,
        "INSERT INTO api_keys \
         (id, user_id, name, prefix, key_hash, scope, created_at, last_used_at, expires_at, \
          revoked_at) \
         SELECT * FROM unnest($1::UUID[], $2::UUID[], $3::TEXT[], $4::TEXT[], $5::BYTEA[], \
                              $6::TEXT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], \
                              $10::BIGINT[])",
        &[
            &ids, &users, &names, &prefixes, &hashes, &scopes, &created, &used, &expires, &revoked,
        ],
    )
    .await?;
    Ok(())
}

/// Stores each key exactly as it was, `retires_at` included: the table's
/// CHECK refuses a record whose `retires_at` does not match its state, and
/// the partial unique indexes one with a second current or next key.
async fn import_signing_keys(
    client: &impl GenericClient,
    keys: &[StoredSigningKey],
) -> Result<(), OperationError> {
    let kids: Vec<&str> = keys.iter().map(|key| key.kid.as_str()).collect();
    let algorithms: Vec<&str> = keys.iter().map(|key| key.algorithm.as_str()).collect();
    let states: Vec<&str> = keys.iter().map(|key| key.state.as_str()).collect();
    let created: Vec<i64> = keys.iter().map(|key| to_unix(key.created_at)).collect();
    let signs_from: Vec<i64> = keys.iter().map(|key| to_unix(key.signs_from)).collect();
    let retires: Vec<Option<i64>> = keys.iter().map(|key| key.retires_at.map(to_unix)).collect();
    let public: Vec<&[u8]> = keys.iter().map(|key| key.public_key.as_slice()).collect();
    let sealed: Vec<&[u8]> = keys
        .iter()
        .map(|key| key.sealed_private_key.as_bytes())
        .collect();
    sql::execute(
        client,
        "INSERT INTO signing_keys \
         (kid, algorithm, state, created_at, signs_from, retires_at, public_key, \
          sealed_private_key) \
         SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], \
                              $6::BIGINT[], $7::BYTEA[], $8::BYTEA[])",
        &[
            &kids,
            &algorithms,
            &states,
            &created,
            &signs_from,
            &retires,
            &public,
            &sealed,
        ],
    )
    .await?;
    Ok(())
}

/// Every stored audit entry in `seq` order, and the chain's ends, as
/// stored: nothing is checked (a copy of a broken chain is as broken).
async fn export_audit(client: &impl GenericClient) -> Result<AuditSnapshot, OperationError> {
    let rows = sql::query(
        client,
        &format!("SELECT {ENTRY_COLUMNS} FROM audit_log ORDER BY seq"),
        &[],
    )
    .await?;
    let entries = rows.iter().map(read_entry).collect::<Result<_, _>>()?;
    let anchor = stored_anchor(client).await?;
    Ok(AuditSnapshot { entries, anchor })
}

/// How many audit entries one statement of an import writes: the log is
/// by far the largest table, and one array parameter of all of it could
/// be hundreds of megabytes.
const AUDIT_IMPORT_BATCH: usize = 5_000;

/// Writes the audit log verbatim: every entry with its `seq` and MAC, and
/// the chain row when the snapshot has a head or a checkpoint.
async fn import_audit(
    client: &impl GenericClient,
    audit: &AuditSnapshot,
) -> Result<(), OperationError> {
    for batch in audit.entries.chunks(AUDIT_IMPORT_BATCH) {
        let columns = EntryColumns::new(batch)?;
        sql::execute(client, INSERT_ENTRIES, &columns.parameters()).await?;
    }
    let AuditAnchor { head, checkpoint } = audit.anchor;
    if head.is_none() && checkpoint.is_none() {
        // An empty chain has no row.
        return Ok(());
    }
    let head_seq = head.map(|head| seq_to_db(head.position.seq)).transpose()?;
    let head_mac = head.map(|head| head.position.mac.0.to_vec());
    let head_seal = head.map(|head| head.seal.0.to_vec());
    let checkpoint_seq = checkpoint
        .map(|checkpoint| seq_to_db(checkpoint.position.seq))
        .transpose()?;
    let checkpoint_mac = checkpoint.map(|checkpoint| checkpoint.position.mac.0.to_vec());
    let checkpoint_at = checkpoint.map(|checkpoint| to_unix(checkpoint.pruned_at));
    let checkpoint_seal = checkpoint.map(|checkpoint| checkpoint.seal.0.to_vec());
    sql::execute(
        client,
        "INSERT INTO audit_chain \
         (id, head_seq, head_mac, head_seal, \
          checkpoint_seq, checkpoint_mac, checkpoint_at, checkpoint_seal) \
         VALUES (1, $1, $2, $3, $4, $5, $6, $7)",
        &[
            &head_seq,
            &head_mac,
            &head_seal,
            &checkpoint_seq,
            &checkpoint_mac,
            &checkpoint_at,
            &checkpoint_seal,
        ],
    )
    .await?;
    Ok(())
}
