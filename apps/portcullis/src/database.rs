//! Opening the configured store: the SQLite file (the embedded default) or
//! a PostgreSQL server, chosen by `PORTCULLIS_DATABASE_URL`.
//!
//! Everything above this module sees the store through the domain's ports
//! (`Store`, `StoreCopy`, `SharedAttemptCounter`); only here are the two
//! concrete stores named.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use portcullis_adapters::MasterAuditKey;
use portcullis_domain::audit::AuditKey;
use portcullis_domain::ports::{SharedAttemptCounter, Store, StoreCopy};
use portcullis_postgres::{PostgresError, PostgresOptions, PostgresStore};
use portcullis_sqlite::SqliteStore;
use secrecy::ExposeSecret;

use crate::config::{DatabaseLocation, Settings};
use crate::{ConfigError, signing};

/// An opened store.
#[derive(Clone)]
pub(crate) enum Database {
    /// One SQLite file: one node.
    Sqlite(Arc<SqliteStore>),
    /// A PostgreSQL database: any number of nodes.
    Postgres(Arc<PostgresStore>),
}

/// Whether opening may start a new deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// Create what is missing (the SQLite file, the schema) and migrate:
    /// `serve` and `migrate`.
    CreateOrMigrate,
    /// The store must already hold a deployment: the administration
    /// commands, which must not quietly start a new one when run with the
    /// wrong data directory or URL.
    Existing,
}

impl Database {
    /// Opens the store the settings name, with the audit log's key.
    pub(crate) async fn open(settings: &Settings, opening: Opening) -> anyhow::Result<Self> {
        Ok(Self::open_keyed(settings, opening).await?.0)
    }

    /// [`open`](Self::open), also returning the audit log's key (for
    /// `portcullis audit verify`).
    pub(crate) async fn open_keyed(
        settings: &Settings,
        opening: Opening,
    ) -> anyhow::Result<(Self, Arc<dyn AuditKey>)> {
        if opening == Opening::CreateOrMigrate {
            // Also with PostgreSQL: the master key (and an HS256 key file)
            // live in the data directory.
            create_data_dir(&settings.data_dir)?;
        }
        let database = Self::open_location(
            &settings.database,
            settings.database_max_connections,
            opening,
        )
        .await?;
        let key = database.install_audit_key(settings, opening).await?;
        Ok((database, key))
    }

    /// Gives the store the audit log's chain key, derived from the master
    /// key (created with the data directory on first use, like the
    /// signing keys' sealing key). A store that already holds sealed keys
    /// or audit events refuses to start without its master key: a new one
    /// would break the chain and open none of the keys.
    ///
    /// Serving (`CreateOrMigrate`) also refuses a master key that is not
    /// the one the audit log was chained with (a node given another
    /// deployment's key file): every change would fail at its first append.
    /// The commands skip that check, so that `audit verify` can say where
    /// the chain breaks.
    async fn install_audit_key(
        &self,
        settings: &Settings,
        opening: Opening,
    ) -> anyhow::Result<Arc<dyn AuditKey>> {
        let store = self.store();
        let head = store
            .audit_anchor()
            .await
            .context("cannot read the audit log")?
            .head;
        let holds_sealed_state = head.is_some()
            || !store
                .signing_keys()
                .await
                .context("cannot read the signing keys")?
                .is_empty();
        let master_key =
            signing::load_or_create_master_key(&settings.master_key_file, holds_sealed_state)?;
        let key: Arc<dyn AuditKey> = Arc::new(
            MasterAuditKey::derive(&master_key).context("cannot derive the audit log's key")?,
        );
        if opening == Opening::CreateOrMigrate
            && let Some(head) = head
            && !head.is_intact(key.as_ref())
        {
            return Err(ConfigError::new(
                "master_key_file",
                format!(
                    "the master key in {} is not the one this database's audit log is chained \
                     with: every node of a deployment needs the same master key file (or the \
                     log's head was altered: run `portcullis audit verify`); nothing was changed",
                    settings.master_key_file.display()
                ),
            )
            .into());
        }
        match self {
            Self::Sqlite(store) => store.set_audit_key(key.clone()),
            Self::Postgres(store) => store.set_audit_key(key.clone()),
        }
        Ok(key)
    }

    /// Opens the store at `location`.
    pub(crate) async fn open_location(
        location: &DatabaseLocation,
        max_connections: u32,
        opening: Opening,
    ) -> anyhow::Result<Self> {
        match location {
            DatabaseLocation::Sqlite(path) => {
                if opening == Opening::Existing && !path.is_file() {
                    anyhow::bail!(
                        "no Portcullis database at {}: pass --data-dir (or PORTCULLIS_DATA_DIR) \
                         naming the server's data directory, or PORTCULLIS_DATABASE_URL naming its \
                         store, or create a new one with `portcullis migrate`",
                        path.display()
                    );
                }
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || open_sqlite(&path))
                    .await
                    .context("opening the SQLite store failed")??;
                Ok(Self::Sqlite(Arc::new(store)))
            }
            DatabaseLocation::Postgres { url, ca_file } => {
                let options = PostgresOptions {
                    max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
                    ca_file: ca_file.clone(),
                };
                let store = PostgresStore::connect(url.expose_secret(), &options)
                    .await
                    .map_err(postgres_error)?;
                match opening {
                    Opening::CreateOrMigrate => {
                        let applied = store.migrate().await.map_err(postgres_error)?;
                        if applied > 0 {
                            tracing::info!(applied, "PostgreSQL schema migrated");
                        }
                    }
                    Opening::Existing => {
                        if !store.schema_is_current().await.map_err(postgres_error)? {
                            anyhow::bail!(
                                "the PostgreSQL database {} holds no current Portcullis schema: \
                                 check PORTCULLIS_DATABASE_URL, or run `portcullis migrate` first",
                                store.redacted_url()
                            );
                        }
                    }
                }
                tracing::info!(database = %store.redacted_url(), "database opened");
                Ok(Self::Postgres(Arc::new(store)))
            }
        }
    }

    /// Connections of the pool in use and the most it may open.
    pub(crate) fn pool_status(&self) -> (usize, usize) {
        match self {
            Self::Sqlite(store) => store.pool_status(),
            Self::Postgres(store) => store.pool_status(),
        }
    }

    /// The store, as the use-cases take it.
    pub(crate) fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// The store, as `db copy` reads and writes it.
    pub(crate) fn copier(&self) -> Arc<dyn StoreCopy> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// The attempt budgets every node shares; `None` for SQLite, whose one
    /// node's own limiter is the whole deployment's.
    pub(crate) fn shared_attempts(&self) -> Option<Arc<dyn SharedAttemptCounter>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(store) => Some(store.clone()),
        }
    }

    /// What it is, for messages; never a password.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Sqlite(store) => store.path().display().to_string(),
            Self::Postgres(store) => store.redacted_url(),
        }
    }
}

/// A URL PostgreSQL's client cannot use is a setting's fault (exit 2);
/// everything else about opening is I/O.
fn postgres_error(error: PostgresError) -> anyhow::Error {
    match error {
        PostgresError::Url(_) | PostgresError::Tls(_) => anyhow::Error::new(ConfigError::new(
            "database_url",
            format!("database_url: {error}"),
        )),
        other => anyhow::Error::new(other).context("cannot open the PostgreSQL store"),
    }
}

/// Opens (creating) the SQLite file; blocking.
fn open_sqlite(database: &Path) -> anyhow::Result<SqliteStore> {
    // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm
    // files the database file's mode, so all three are owner-only from the
    // first moment. An existing file is tightened if it is not.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(database)
        .with_context(|| format!("cannot create {}", database.display()))?;
    restrict_to_owner(database)?;
    SqliteStore::open(database).with_context(|| format!("cannot open {}", database.display()))
}

fn create_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    if let Ok(metadata) = std::fs::metadata(data_dir) {
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %data_dir.display(),
                "the data directory is accessible to other users; consider chmod 700"
            );
        }
    } else {
        // The directory holds the signing key: only its owner may enter.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
    }
    Ok(())
}

/// The database holds password hashes: only its owner may read it.
fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}

/// What `portcullis db copy` moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The target: its SQLite file, or its URL without the password.
    pub target: String,
    /// Accounts.
    pub users: usize,
    /// Sessions (ended ones included).
    pub sessions: usize,
    /// Refresh token hashes.
    pub refresh_tokens: usize,
    /// API keys (revoked ones included).
    pub api_keys: usize,
    /// Signing keys.
    pub signing_keys: usize,
    /// Audit events (with the chain's head and checkpoint).
    pub audit_events: usize,
}
