//! Opening the database and running work on pooled connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use portcullis_domain::StoreError;
use portcullis_domain::audit::AuditKey;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::StorageError;
use crate::migrations::MIGRATIONS;

/// The most connections the pool keeps open. SQLite serialises writers
/// anyway; eight lets reads proceed in parallel under WAL without holding many
/// file descriptors.
const POOL_MAX_SIZE: u32 = 8;

/// How long a caller waits for a free pooled connection before the
/// operation fails as unavailable: long enough to ride out a burst, short
/// enough that a request does not hang.
const POOL_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a writer waits for the write lock (`busy_timeout`, set in
/// [`CONNECTION_PRAGMAS`]).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`SqliteStore::probe_write`] waits for a connection and for the
/// write lock: long enough to ride out an ordinary commit, short enough to
/// refuse before the caller spends a password hash.
const WRITE_PROBE_WAIT: Duration = Duration::from_secs(1);

/// Run on every connection the pool opens (and on the migration connection).
///
/// - `foreign_keys=ON`: SQLite enforces foreign keys (and so `ON DELETE
///   CASCADE`) only when asked, per connection.
/// - `busy_timeout=5000`: a writer waits up to 5 s for the write lock instead
///   of failing at once with `SQLITE_BUSY`.
/// - `synchronous=NORMAL`: in WAL mode a commit is still durable against a
///   process crash (`kill -9`); only an OS crash or power loss may lose the
///   last commits, in exchange for not syncing on every commit.
/// - `secure_delete=ON`: deleted content (a deleted account's email and
///   password hash) is overwritten with zeros instead of lingering in free
///   space of its page or on the free list. It costs writing the zeros; the
///   write-ahead log still holds the old frames until it is truncated, which
///   [`truncate_wal`] does after a deletion.
const CONNECTION_PRAGMAS: &str = "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; \
     PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;";

/// The SQLite implementation of the domain's
/// [`UserStore`](portcullis_domain::ports::UserStore),
/// [`SessionStore`](portcullis_domain::ports::SessionStore),
/// [`ApiKeyStore`](portcullis_domain::ports::ApiKeyStore),
/// [`SigningKeyStore`](portcullis_domain::ports::SigningKeyStore) and
/// [`AuditStore`](portcullis_domain::ports::AuditStore).
///
/// Cloning is cheap: clones share one connection pool and one audit key
/// ([`set_audit_key`](Self::set_audit_key)). Every operation runs on a
/// pooled connection inside [`tokio::task::spawn_blocking`], so the async
/// runtime never waits on disk; operations must therefore be called from
/// within a Tokio runtime.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
    audit_key: AuditKeySlot,
}

/// The audit log's key, shared by every clone of a store: set once the
/// master key is known, which is after the store is opened.
#[derive(Clone, Default)]
struct AuditKeySlot(Arc<RwLock<Option<Arc<dyn AuditKey>>>>);

impl std::fmt::Debug for AuditKeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Whether there is a key, never anything of it.
        let set = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        f.debug_struct("AuditKeySlot").field("set", &set).finish()
    }
}

impl SqliteStore {
    /// Gives the store the key its audit chain is MACed with (derived from
    /// the master key), for this store and every clone of it; a later call
    /// replaces it. Until a key is given, every change that would append an
    /// audit event fails with
    /// [`missing_key_error`](portcullis_domain::audit::missing_key_error)
    /// and is rolled back.
    pub fn set_audit_key(&self, key: Arc<dyn AuditKey>) {
        // A panic while the lock was held cannot leave a half-written
        // `Option`, so a poisoned lock is still sound to use.
        *self
            .audit_key
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    /// The audit key as of now, taken before an operation starts so that
    /// its work, on the blocking pool, owns it.
    pub(crate) fn audit_key(&self) -> Option<Arc<dyn AuditKey>> {
        self.audit_key
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Connections of the pool in use now and the most it may open, for
    /// the pool-use metrics.
    pub fn pool_status(&self) -> (usize, usize) {
        let state = self.pool.state();
        let in_use = state.connections.saturating_sub(state.idle_connections);
        (in_use as usize, self.pool.max_size() as usize)
    }

    /// Opens (creating if needed) the database file at `path` and brings its
    /// schema up to date.
    ///
    /// In order: switches the file to WAL journal mode on a plain connection
    /// (outside any transaction, where SQLite allows it), applies pending
    /// migrations in one transaction, then builds a pool of at most eight
    /// connections, each set up with `foreign_keys=ON`, `busy_timeout=5000`
    /// and `synchronous=NORMAL`. The parent directory must exist.
    ///
    /// This blocks on disk I/O; call it at start-up, before serving.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let mut connection =
            Connection::open(path).map_err(|error| StorageError::Open(error.to_string()))?;
        enable_wal(&connection)?;
        connection
            .execute_batch(CONNECTION_PRAGMAS)
            .map_err(|error| StorageError::Open(error.to_string()))?;
        // The migration transaction takes the write lock when it begins, so a
        // concurrent writer makes it wait (busy_timeout) instead of failing it
        // half-way. rusqlite_migration reads the version before that
        // transaction, so of two processes migrating one new file at the same
        // moment the later fails cleanly, with nothing applied.
        connection.set_transaction_behavior(TransactionBehavior::Immediate);
        MIGRATIONS
            .to_latest(&mut connection)
            .map_err(|error| StorageError::Migration(error.to_string()))?;
        drop(connection);

        let manager = SqliteConnectionManager::file(path)
            .with_init(|connection| connection.execute_batch(CONNECTION_PRAGMAS));
        let pool = Pool::builder()
            .max_size(POOL_MAX_SIZE)
            .connection_timeout(POOL_CONNECTION_TIMEOUT)
            .build(manager)
            .map_err(|error| StorageError::Pool(error.to_string()))?;
        tracing::info!(path = %path.display(), "database opened");
        Ok(Self {
            pool,
            path: path.to_path_buf(),
            audit_key: AuditKeySlot::default(),
        })
    }

    /// The database file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the per-connection settings of a pooled connection. For tests
    /// that check [`open`](Self::open) set up its connections; not part of
    /// the supported API.
    #[doc(hidden)]
    pub async fn pooled_connection_settings(&self) -> Result<ConnectionSettings, StoreError> {
        self.run("pooled_connection_settings", |connection| {
            let settings = ConnectionSettings {
                journal_mode: connection
                    .pragma_query_value(None, "journal_mode", |row| row.get(0))?,
                foreign_keys: connection
                    .pragma_query_value(None, "foreign_keys", |row| row.get(0))?,
                busy_timeout_ms: connection
                    .pragma_query_value(None, "busy_timeout", |row| row.get(0))?,
                synchronous: connection
                    .pragma_query_value(None, "synchronous", |row| row.get(0))?,
                secure_delete: connection
                    .pragma_query_value(None, "secure_delete", |row| row.get(0))?,
            };
            Ok(settings)
        })
        .await
    }

    /// Takes the write lock from a connection of its own and holds it until
    /// the returned guard is dropped, so that tests can watch the store (and
    /// the application over it) meet a busy database. Not part of the
    /// supported API.
    #[doc(hidden)]
    pub fn hold_write_lock_for_tests(path: &Path) -> Result<WriteLockForTests, StorageError> {
        let connection =
            Connection::open(path).map_err(|error| StorageError::Open(error.to_string()))?;
        connection
            .execute_batch("PRAGMA busy_timeout=5000; BEGIN IMMEDIATE;")
            .map_err(|error| StorageError::Open(error.to_string()))?;
        Ok(WriteLockForTests { connection })
    }

    /// Whether a write could start now: takes the write lock and gives it
    /// back at once (`BEGIN IMMEDIATE`, then a rollback), waiting at most
    /// [`WRITE_PROBE_WAIT`] for a connection and for the lock.
    pub(crate) async fn probe_write(&self) -> Result<(), StoreError> {
        self.run_waiting("ensure_writable", WRITE_PROBE_WAIT, |connection| {
            connection.busy_timeout(WRITE_PROBE_WAIT)?;
            let probed = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .and_then(rusqlite::Transaction::rollback);
            // The pooled connection goes back with its usual wait either way.
            let restored = connection.busy_timeout(BUSY_TIMEOUT);
            probed?;
            restored?;
            Ok(())
        })
        .await
    }

    /// Runs `work` on a pooled connection on Tokio's blocking thread pool.
    ///
    /// `operation` names the store method in error texts, which end up in
    /// logs; they carry SQLite's message, never bound values.
    pub(crate) async fn run<T, F>(&self, operation: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, OperationError> + Send + 'static,
    {
        self.run_waiting(operation, POOL_CONNECTION_TIMEOUT, work)
            .await
    }

    /// [`run`](Self::run), waiting at most `connection_wait` for a pooled
    /// connection.
    async fn run_waiting<T, F>(
        &self,
        operation: &'static str,
        connection_wait: Duration,
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, OperationError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut connection = pool.get_timeout(connection_wait).map_err(|error| {
                OperationError::Store(StoreError::Unavailable(format!(
                    "no database connection: {error}"
                )))
            })?;
            work(&mut connection)
        })
        .await;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(error.into_store_error(operation)),
            Err(join_error) => Err(StoreError::Failed(format!(
                "{operation}: storage task failed: {join_error}"
            ))),
        }
    }
}

/// The write lock of [`SqliteStore::hold_write_lock_for_tests`]; dropping it
/// releases the lock.
#[doc(hidden)]
#[derive(Debug)]
pub struct WriteLockForTests {
    connection: Connection,
}

impl Drop for WriteLockForTests {
    fn drop(&mut self) {
        // Closing the connection would roll back too; this says so.
        let _ = self.connection.execute_batch("ROLLBACK");
    }
}

/// The settings of one pooled connection, as SQLite reports them.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `PRAGMA journal_mode`, e.g. `wal`.
    pub journal_mode: String,
    /// `PRAGMA foreign_keys`: whether foreign keys are enforced.
    pub foreign_keys: bool,
    /// `PRAGMA busy_timeout`, in milliseconds.
    pub busy_timeout_ms: i64,
    /// `PRAGMA synchronous`: 0 off, 1 normal, 2 full, 3 extra.
    pub synchronous: i64,
    /// `PRAGMA secure_delete`: whether deleted content is overwritten.
    pub secure_delete: bool,
}

/// What the work of one operation can fail with, before it is turned into
/// a [`StoreError`] at the boundary of [`SqliteStore::run`].
#[derive(Debug)]
pub(crate) enum OperationError {
    /// A failure from SQLite, classified by [`OperationError::into_store_error`].
    Sqlite(rusqlite::Error),
    /// An already classified failure, such as a missing row or a corrupt one.
    Store(StoreError),
}

impl From<rusqlite::Error> for OperationError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

impl From<StoreError> for OperationError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl OperationError {
    /// Maps a unique violation on `users.username`, `users.email` or
    /// `users.email_key` to [`StoreError::Conflict`], a database busy or
    /// locked beyond the wait to [`StoreError::Unavailable`], and every other
    /// SQLite failure to [`StoreError::Failed`], each text prefixed with the
    /// operation's name.
    pub(crate) fn into_store_error(self, operation: &'static str) -> StoreError {
        match self {
            Self::Store(StoreError::Unavailable(text)) => {
                StoreError::Unavailable(format!("{operation}: {text}"))
            }
            Self::Store(StoreError::Failed(text)) => {
                StoreError::Failed(format!("{operation}: {text}"))
            }
            Self::Store(error) => error,
            // SQLite's messages name tables, columns and constraints but
            // never the bound values, so they are safe to log.
            Self::Sqlite(error) => match conflict_field(&error) {
                Some(field) => StoreError::Conflict(field),
                None if is_busy(&error) => StoreError::Unavailable(format!("{operation}: {error}")),
                None => StoreError::Failed(format!("{operation}: {error}")),
            },
        }
    }
}

/// Which account attribute a unique-constraint failure is about, if any.
fn conflict_field(error: &rusqlite::Error) -> Option<portcullis_domain::ConflictField> {
    use portcullis_domain::ConflictField;

    let rusqlite::Error::SqliteFailure(failure, Some(message)) = error else {
        return None;
    };
    if failure.extended_code != rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE {
        return None;
    }
    // The message is "UNIQUE constraint failed: users.username" (columns of a
    // multi-column index would be listed comma-separated).
    let columns = message.strip_prefix("UNIQUE constraint failed: ")?;
    columns.split(", ").find_map(|column| match column {
        "users.username" => Some(ConflictField::Username),
        // `email_key` is the canonical form (migration 3); the older NOCASE
        // index on `email` can still fire first for an ASCII-case twin.
        "users.email" | "users.email_key" => Some(ConflictField::Email),
        _ => None,
    })
}

/// Whether a failure is another connection holding a lock past the wait:
/// transient, unlike everything else SQLite can report.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Whether a failure is a foreign key violation (the referenced row is gone).
fn is_foreign_key_violation(error: &rusqlite::Error) -> bool {
    error
        .sqlite_error()
        .is_some_and(|failure| failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// A row (a session, an API key) whose user no longer exists fails the
/// foreign key; that is the user not being found, not the store failing.
pub(crate) fn user_gone_is_not_found(error: rusqlite::Error) -> OperationError {
    if is_foreign_key_violation(&error) {
        OperationError::Store(StoreError::NotFound)
    } else {
        OperationError::Sqlite(error)
    }
}

/// Copies the write-ahead log into the database file and truncates it to
/// zero bytes, so that frames holding deleted content (with `secure_delete`
/// the file itself no longer does) leave the disk.
///
/// Best effort: a reader in the middle of a transaction keeps the log from
/// being reset; then this logs at debug and the next call (the periodic
/// purge makes one) tries again. Never fails the caller, whose change is
/// already committed.
pub(crate) fn truncate_wal(connection: &Connection, after: &'static str) {
    let outcome = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    });
    match outcome {
        Ok(0) => {}
        Ok(_) => tracing::debug!(
            after,
            "WAL not truncated: readers are active; retried later"
        ),
        Err(error) => tracing::debug!(after, %error, "WAL not truncated; retried later"),
    }
}

/// Switches the file to WAL mode. The mode is persistent, so this is a no-op
/// on later opens; it must run outside a transaction, hence here and not in a
/// migration.
fn enable_wal(connection: &Connection) -> Result<(), StorageError> {
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|error| StorageError::Open(error.to_string()))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StorageError::Open(format!(
            "journal mode is {mode}, WAL could not be enabled"
        )))
    }
}
