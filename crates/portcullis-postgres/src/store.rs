//! Connecting, the connection pool, and running every operation under one
//! deadline with errors mapped to the domain's.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use portcullis_domain::audit::{AuditKey, missing_key_error};
use portcullis_domain::{ConflictField, StoreError};
use tokio_postgres::error::SqlState;

use crate::error::PostgresError;
use crate::migrations;
use crate::tls;

/// How the pool is sized and how TLS is trusted.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The most connections this process keeps open to the server. Every
    /// node of a deployment has its own pool, so the server's
    /// `max_connections` must exceed the sum over the nodes. At least 1.
    pub max_connections: usize,
    /// A PEM file of the certificates that may sign the server's
    /// certificate, instead of the operating system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            ca_file: None,
        }
    }
}

/// The PostgreSQL implementation of the domain's store traits.
///
/// Cloning is cheap: clones share one `deadpool` connection pool and the
/// audit key. Every operation must be called from within a Tokio runtime,
/// and answers within about three seconds whatever the database does (an
/// outage is [`StoreError::Unavailable`], never a hang).
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: Pool,
    redacted_url: Arc<str>,
    reachability: Arc<Reachability>,
    /// The key of the audit chain, once given: shared by the clones, so a
    /// key set on one is the key of all.
    audit_key: Arc<RwLock<Option<Arc<dyn AuditKey>>>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        formatter
            .debug_struct("PostgresStore")
            .field("url", &self.redacted_url)
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .field("audit_key_set", &self.audit_key_set())
            .finish()
    }
}

/// How long connecting to the server may take (TCP, TLS and
/// authentication), for `tokio-postgres` and for the pool's create step.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a caller waits for a free pooled connection, and how long the
/// pool may take to check an idle connection before handing it out.
const POOL_TIMEOUT: Duration = Duration::from_secs(2);

/// The deadline of every store operation as a whole: a connection from the
/// pool (which may have to connect), every statement, and the retries of a
/// serialization failure. A request must not hang while the database is
/// unreachable; past this, it fails as unavailable.
const OPERATION_DEADLINE: Duration = Duration::from_secs(3);

/// The deadline of [`PostgresStore::probe_write`]: short, because the
/// caller asks before expensive work (a password hash) and must be refused
/// at once when the database cannot take the write.
const WRITE_PROBE_DEADLINE: Duration = Duration::from_secs(1);

/// How long the store answers unavailable at once after the database was
/// found unreachable (a connection could not be made, or an operation ran
/// into its deadline). One request makes several store calls (the shared
/// attempt budgets, then the credentials): without this, each would wait
/// out its own deadline and the request would answer after several of them
/// instead of one. After the window the next call tries the database again,
/// so service resumes at most this long after the database returns.
const FAIL_FAST_WINDOW: Duration = Duration::from_secs(2);

/// How often a transaction that lost a serialization or deadlock race is
/// tried again before the operation reports the store unavailable.
const CONFLICT_RETRIES: u32 = 2;

/// How long a connection may be silent before the kernel probes it, between
/// probes, and how many unanswered probes close it: a server that vanished
/// without closing the socket is noticed in well under a minute instead of
/// the kernel's default two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(20);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// How long sent data may stay unacknowledged before the kernel drops the
/// connection (Linux only; ignored elsewhere).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

impl PostgresStore {
    /// Connections of the pool in use now and the most it may open, for
    /// the pool-use metrics.
    pub fn pool_status(&self) -> (usize, usize) {
        let status = self.pool.status();
        (
            status.size.saturating_sub(status.available),
            status.max_size,
        )
    }

    /// Parses `url` (`postgres://` or `postgresql://`, with `tokio-postgres`'s
    /// parameters such as `sslmode`), builds the pool and checks that one
    /// connection can be made. Does not migrate: see [`migrate`](Self::migrate)
    /// and [`open`](Self::open).
    pub async fn connect(url: &str, options: &PostgresOptions) -> Result<Self, PostgresError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PostgresError::Url(
                "must start with postgres:// or postgresql://".to_owned(),
            ));
        }
        let url = libpq_ssl_modes_to_require(url)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(
            // The cause says which part is wrong; neither holds the password.
            |error: tokio_postgres::Error| PostgresError::Url(describe(&error)),
        )?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .tcp_user_timeout(TCP_USER_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("portcullis");
        }
        let connector = tls::connector(options.ca_file.as_deref())?;
        // `Verified` runs an empty query before handing out an idle
        // connection, so one the server closed while it sat in the pool is
        // replaced (created anew) instead of failing the caller's first
        // statement; this is how the pool recovers after an outage.
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|error| PostgresError::Connect(error.to_string()))?;
        let store = Self {
            pool,
            redacted_url: redact_url(&url).into(),
            reachability: Arc::new(Reachability::default()),
            audit_key: Arc::new(RwLock::new(None)),
        };
        let client =
            store.pool.get().await.map_err(|error| {
                PostgresError::Connect(with_tls_hint(describe_pool_error(&error)))
            })?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|error| PostgresError::Connect(describe(&error)))?;
        tracing::info!(url = %store.redacted_url, "database connected");
        Ok(store)
    }

    /// Applies the pending migrations in one transaction, holding a
    /// transaction-level advisory lock so that several nodes starting at
    /// once on an empty database apply the schema exactly once. Returns how
    /// many were applied (0 when the schema was already current).
    pub async fn migrate(&self) -> Result<usize, PostgresError> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|error| PostgresError::Connect(describe_pool_error(&error)))?;
        let applied = migrations::migrate(&mut client).await?;
        if applied > 0 {
            tracing::info!(applied, "database schema migrated");
        }
        Ok(applied)
    }

    /// [`connect`](Self::connect), then [`migrate`](Self::migrate).
    pub async fn open(url: &str, options: &PostgresOptions) -> Result<Self, PostgresError> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Whether the schema is at this build's latest version, without
    /// changing anything: for administration commands that must not create
    /// a deployment on a database that has none.
    pub async fn schema_is_current(&self) -> Result<bool, PostgresError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| PostgresError::Connect(describe_pool_error(&error)))?;
        migrations::schema_is_current(&client).await
    }

    /// The connection URL with any password removed, for logs.
    pub fn redacted_url(&self) -> String {
        self.redacted_url.to_string()
    }

    /// Gives the store the key its audit chain is MACed with (derived from
    /// the master key). Every clone of this store uses it from now on; a
    /// later call replaces it. Until it is called, every change that would
    /// append to the audit log fails with
    /// [`missing_key_error`](portcullis_domain::audit::missing_key_error)
    /// and changes nothing.
    pub fn set_audit_key(&self, key: Arc<dyn AuditKey>) {
        // A panic while the lock was held cannot leave the slot half
        // written (it is one pointer), so a poisoned lock is still usable.
        *self
            .audit_key
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    /// The audit key, or the error of a store opened without one.
    pub(crate) fn audit_key(&self) -> Result<Arc<dyn AuditKey>, StoreError> {
        self.audit_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(missing_key_error)
    }

    fn audit_key_set(&self) -> bool {
        self.audit_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether a write could start now: a connection is free (or can be
    /// made) and the server is not a read-only standby, within about a
    /// second.
    pub(crate) async fn probe_write(&self) -> Result<(), StoreError> {
        self.run_within(
            "ensure_writable",
            WRITE_PROBE_DEADLINE,
            |client| async move {
                let statement = client.prepare_cached("SELECT pg_is_in_recovery()").await?;
                let in_recovery: bool = client.query_one(&statement, &[]).await?.get(0);
                if in_recovery {
                    return Err(StoreError::Unavailable(
                        "the database is a read-only standby".to_owned(),
                    )
                    .into());
                }
                Ok(())
            },
        )
        .await
    }

    /// Runs `work` on a pooled connection under [`OPERATION_DEADLINE`].
    ///
    /// `work` is called again (with a connection again) when its
    /// transaction lost a serialization or deadlock race, at most
    /// [`CONFLICT_RETRIES`] times. `operation` names the store method in
    /// error texts, which end up in logs; they never carry bound values.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        work: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(Object) -> Fut,
        Fut: Future<Output = Result<T, OperationError>>,
    {
        self.run_within(operation, OPERATION_DEADLINE, work).await
    }

    /// [`run`](Self::run) with a deadline of its own.
    pub(crate) async fn run_within<T, F, Fut>(
        &self,
        operation: &'static str,
        deadline: Duration,
        mut work: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(Object) -> Fut,
        Fut: Future<Output = Result<T, OperationError>>,
    {
        if self.reachability.recently_unreachable() {
            return Err(StoreError::Unavailable(format!(
                "{operation}: the database was unreachable moments ago; retrying shortly"
            )));
        }
        let attempts = async {
            let mut retries = 0;
            loop {
                let client = self.pool.get().await.map_err(|error| {
                    // A wait that timed out with every connection in use is
                    // a busy pool; any other failure (including a wait
                    // that timed out while the pool had room, so that a
                    // new connection would have been made) means no
                    // connection could be made.
                    let status = self.pool.status();
                    let busy = matches!(error, PoolError::Timeout(TimeoutType::Wait))
                        && status.size >= status.max_size
                        && status.available == 0;
                    if !busy {
                        self.reachability.mark_unreachable();
                    }
                    pool_error(error)
                })?;
                match work(client).await {
                    Err(OperationError::Postgres(error))
                        if is_lost_race(&error) && retries < CONFLICT_RETRIES =>
                    {
                        retries += 1;
                        tracing::debug!(operation, retries, "transaction lost a race; retrying");
                    }
                    outcome => return outcome,
                }
            }
        };
        match tokio::time::timeout(deadline, attempts).await {
            Ok(Ok(value)) => {
                self.reachability.mark_reachable();
                Ok(value)
            }
            Ok(Err(error)) => {
                if let OperationError::Postgres(error) = &error
                    && (error.is_closed() || source_is_io(error))
                {
                    self.reachability.mark_unreachable();
                }
                Err(error.into_store_error(operation))
            }
            Err(_elapsed) => {
                self.reachability.mark_unreachable();
                Err(StoreError::Unavailable(format!(
                    "{operation}: no answer from the database within {} ms",
                    deadline.as_millis()
                )))
            }
        }
    }
}

/// When the database was last found unreachable, shared by the clones of
/// one store: see [`FAIL_FAST_WINDOW`]. Atomics rather than a lock: every
/// successful operation asks it.
#[derive(Debug)]
struct Reachability {
    /// Reference point for the millisecond counts.
    epoch: Instant,
    /// Until when (milliseconds after `epoch`) calls fail at once; 0: not.
    fail_fast_until_ms: AtomicU64,
    /// Whether the outage was logged and its end is still to be logged.
    outage_reported: AtomicBool,
}

impl Default for Reachability {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            fail_fast_until_ms: AtomicU64::new(0),
            outage_reported: AtomicBool::new(false),
        }
    }
}

impl Reachability {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn mark_unreachable(&self) {
        let window = u64::try_from(FAIL_FAST_WINDOW.as_millis()).unwrap_or(u64::MAX);
        self.fail_fast_until_ms
            .store(self.now_ms().saturating_add(window), Ordering::Relaxed);
        if !self.outage_reported.swap(true, Ordering::Relaxed) {
            tracing::warn!("the database is unreachable; answering 503 until it returns");
        }
    }

    fn mark_reachable(&self) {
        if self.outage_reported.load(Ordering::Relaxed)
            && self.outage_reported.swap(false, Ordering::Relaxed)
        {
            tracing::info!("the database is reachable again");
        }
    }

    /// Whether it was found unreachable within the window.
    fn recently_unreachable(&self) -> bool {
        self.now_ms() < self.fail_fast_until_ms.load(Ordering::Relaxed)
    }
}

/// libpq's verifying modes (`sslmode=verify-ca`, `verify-full`), which
/// `tokio-postgres` does not know, mean `require` here: this store always
/// verifies the certificate and its name. libpq's `sslrootcert` is refused
/// with a pointer to the CA file option instead of tokio-postgres' bare
/// "invalid connection string".
fn libpq_ssl_modes_to_require(url: &str) -> Result<String, PostgresError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_owned());
    };
    let mut parameters = Vec::new();
    for parameter in query.split('&') {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        match (name, value) {
            ("sslmode", "verify-ca" | "verify-full") => {
                parameters.push("sslmode=require".to_owned())
            }
            ("sslrootcert" | "sslcert" | "sslkey" | "sslcrl", _) => {
                return Err(PostgresError::Url(format!(
                    "`{name}` is not read from the URL: give the CA certificates as \
                     PORTCULLIS_DATABASE_CA_FILE (client certificates are not supported)"
                )));
            }
            _ => parameters.push(parameter.to_owned()),
        }
    }
    Ok(format!("{base}?{}", parameters.join("&")))
}

/// What the work of one operation can fail with, before it is turned into
/// a [`StoreError`] at the boundary of [`PostgresStore::run`].
#[derive(Debug)]
pub(crate) enum OperationError {
    /// A failure from PostgreSQL or the connection, classified by
    /// [`OperationError::into_store_error`].
    Postgres(tokio_postgres::Error),
    /// An already classified failure, such as a missing row or a corrupt one.
    Store(StoreError),
}

impl From<tokio_postgres::Error> for OperationError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

impl From<StoreError> for OperationError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl OperationError {
    /// Maps a unique violation on the username or email key to
    /// [`StoreError::Conflict`]; a lost connection, an unreachable or
    /// shutting-down server, a standby refusing a write, or a race lost
    /// beyond the retries to [`StoreError::Unavailable`]; and everything
    /// else to [`StoreError::Failed`], each text prefixed with the
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
            Self::Postgres(error) => {
                if let Some(field) = conflict_field(&error) {
                    StoreError::Conflict(field)
                } else if is_transient(&error) {
                    StoreError::Unavailable(format!("{operation}: {}", describe(&error)))
                } else {
                    StoreError::Failed(format!("{operation}: {}", describe(&error)))
                }
            }
        }
    }
}

/// The constraint names of migration 1 that mean an account collision.
pub(crate) const USERNAME_CONSTRAINT: &str = "users_username_key_unique";
pub(crate) const EMAIL_CONSTRAINT: &str = "users_email_key_unique";

/// Which account attribute a unique violation is about, by the name of the
/// constraint (never by parsing the message, which carries the value).
fn conflict_field(error: &tokio_postgres::Error) -> Option<ConflictField> {
    let database = error.as_db_error()?;
    if *database.code() != SqlState::UNIQUE_VIOLATION {
        return None;
    }
    match database.constraint()? {
        USERNAME_CONSTRAINT => Some(ConflictField::Username),
        EMAIL_CONSTRAINT => Some(ConflictField::Email),
        _ => None,
    }
}

/// Whether a transaction failed only because a concurrent one won: worth
/// running again at once.
fn is_lost_race(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// Whether a failure says the database cannot serve now but may shortly.
fn is_transient(error: &tokio_postgres::Error) -> bool {
    if is_lost_race(error) || error.is_closed() {
        return true;
    }
    let Some(database) = error.as_db_error() else {
        // Not an answer of the server: the connection broke (I/O) or could
        // not be made. Anything else without a server answer is a bug on
        // this side (a type mismatch) and is no outage.
        return source_is_io(error);
    };
    let code = database.code().code();
    // Class 08: connection exception; 53: insufficient resources (too many
    // connections, disk full); 57P01-57P03: the server is shutting down or
    // starting; 25006: a read-only (standby) server refused a write, as
    // after a failover; 55P03: a lock could not be taken in time.
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "25006"
        || code == "55P03"
}

fn source_is_io(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Whether a failure is a foreign key violation (the referenced row is gone).
pub(crate) fn is_foreign_key_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

/// A row (a session, an API key) whose user no longer exists fails the
/// foreign key; that is the user not being found, not the store failing.
pub(crate) fn user_gone_is_not_found(error: tokio_postgres::Error) -> OperationError {
    if is_foreign_key_violation(&error) {
        OperationError::Store(StoreError::NotFound)
    } else {
        OperationError::Postgres(error)
    }
}

/// A text for logs that never holds a bound or stored value.
///
/// For an error the server reported: its SQLSTATE, and the table, column
/// and constraint it names. The server's message is added except for data
/// exceptions (class 22) and integrity violations (class 23), whose
/// messages and details quote the offending value (`Key (email_key)=(…)
/// already exists`); the detail and hint are never added. For any other
/// failure (I/O, a closed connection), `tokio-postgres`' own text, which
/// holds no data.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    let Some(database) = error.as_db_error() else {
        // `tokio-postgres` names only the kind ("error performing TLS
        // handshake"); the causes say why (an unknown issuer, a refused
        // connection). None of them carries data.
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        return text;
    };
    let code = database.code().code();
    let mut text = format!("database error {code}");
    if !(code.starts_with("22") || code.starts_with("23")) {
        text.push_str(": ");
        text.push_str(database.message());
    }
    if let Some(table) = database.table() {
        text.push_str(&format!(" (table {table}"));
        if let Some(column) = database.column() {
            text.push_str(&format!(", column {column}"));
        }
        text.push(')');
    }
    if let Some(constraint) = database.constraint() {
        text.push_str(&format!(" (constraint {constraint})"));
    }
    text
}

/// A failure to get a pooled connection: the server's own answer (a
/// refused connection, a shutdown, a missing database or role) is
/// classified like any other; waiting past the timeouts, or a closed pool,
/// is the store being unavailable.
fn pool_error(error: PoolError) -> OperationError {
    match error {
        PoolError::Backend(error) => OperationError::Postgres(error),
        PoolError::Timeout(_) | PoolError::Closed => {
            OperationError::Store(StoreError::Unavailable(format!(
                "no database connection: {}",
                describe_pool_error(&error)
            )))
        }
        other => OperationError::Store(StoreError::Failed(format!(
            "no database connection: {}",
            describe_pool_error(&other)
        ))),
    }
}

/// A refused certificate says what to do about it: the store verifies
/// every certificate, also under `sslmode=prefer` (the default), where
/// libpq would not.
fn with_tls_hint(text: String) -> String {
    if text.contains("invalid peer certificate") {
        format!(
            "{text} (the server's TLS certificate is not trusted: give its CA certificates as \
             PORTCULLIS_DATABASE_CA_FILE, or on a network you trust, such as loopback, \
             add sslmode=disable to the URL)"
        )
    } else {
        text
    }
}

/// [`describe`] for the pool's errors.
pub(crate) fn describe_pool_error(error: &PoolError) -> String {
    match error {
        PoolError::Backend(error) => describe(error),
        PoolError::Timeout(kind) => format!("timed out waiting for a connection ({kind:?})"),
        other => other.to_string(),
    }
}

/// `url` without its password: the `:password` of the user info and any
/// `password=` query parameter are dropped.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, hosts)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{user}@{hosts}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|parameter| {
                    !parameter
                        .split('=')
                        .next()
                        .is_some_and(|name| name.eq_ignore_ascii_case("password"))
                })
                .collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_verifying_modes_mean_require_and_its_file_parameters_are_refused() {
        assert_eq!(
            libpq_ssl_modes_to_require("postgres://h/db?sslmode=verify-full&application_name=x")
                .ok(),
            Some("postgres://h/db?sslmode=require&application_name=x".to_owned())
        );
        assert_eq!(
            libpq_ssl_modes_to_require("postgres://h/db?sslmode=verify-ca").ok(),
            Some("postgres://h/db?sslmode=require".to_owned())
        );
        assert_eq!(
            libpq_ssl_modes_to_require("postgres://h/db").ok(),
            Some("postgres://h/db".to_owned())
        );
        let refused = libpq_ssl_modes_to_require("postgres://h/db?sslrootcert=/ca.pem");
        assert!(
            matches!(&refused, Err(PostgresError::Url(text)) if text.contains("PORTCULLIS_DATABASE_CA_FILE")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_redacted_url_keeps_everything_but_the_password() {
        assert_eq!(
            redact_url("postgres://alice:s3cret@db.example:5432/portcullis?sslmode=require"),
            "postgres://alice@db.example:5432/portcullis?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://alice:p%40ss@h1,h2/db?password=x&sslmode=require"),
            "postgresql://alice@h1,h2/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/postgres?password=x"),
            "postgres://postgres@127.0.0.1/postgres"
        );
        assert_eq!(redact_url("postgres://h"), "postgres://h");
    }
}
