//! The Portcullis server and administration CLI.
//!
//! This is the only crate that knows every other crate: it resolves the
//! settings, opens the SQLite store, loads the signing key, and wires the
//! concrete adapters into the domain's `AuthService` and the HTTP app.
//!
//! [`Application`] is the server: what `portcullis serve` runs, what the
//! black-box tests start on port 0, and what a service embedding Portcullis
//! runs with its own poem-openapi operations next to Portcullis's
//! ([`Application::build_with`]; `apps/notes-example` does). Each gets the
//! same server: TLS when configured, CORS, the connection limits, the purge
//! of dead sessions, the upkeep of the rate limiters, and the Prometheus
//! metrics on a listener of their own when `PORTCULLIS_METRICS_BIND` is set.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use portcullis::{Application, Settings, SettingsArgs};
//!
//! let settings = Settings::resolve(&SettingsArgs::default())?;
//! portcullis::build_runtime()?.block_on(async {
//!     // Your API instead of `NoExtraApi`: `Authenticated<S>` parameters
//!     // protect its operations with Portcullis credentials.
//!     let service = portcullis_http::api_service_with(
//!         portcullis_http::NoExtraApi,
//!         "My service",
//!         "1.0.0",
//!     );
//!     let application = Application::build_with(&settings, service).await?;
//!     application.run().await
//! })
//! # }
//! ```

pub mod config;
mod database;
pub mod keys;
pub mod metrics;
mod observed_store;
pub mod server;
mod signing;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem_openapi::{OpenApi, OpenApiService};
use portcullis_adapters::{
    BlockingArgon2Hasher, DeploymentAttemptLimiter, GovernorAttemptLimiter, HashingLimits,
    JwtTokens, MasterAuditKey, SealingKeyGenerator,
};
use portcullis_crypto::Argon2Hasher;
use portcullis_domain::audit::{
    AuditKey, ChainBreak, ChainReport, SealedAuditEntry, VERIFY_PAGE_SIZE, verify_store,
};
use portcullis_domain::ports::{
    AttemptLimiter, Clock as _, KeyRing, NoAttemptLimit, SharedAttemptCounter, SystemClock,
};
use portcullis_domain::{AuthService, KeyLifecycle, Ports, SigningAlgorithm, StoreError};
use portcullis_http::{AppState, PortcullisApis, Publication};
use time::OffsetDateTime;

use crate::database::{Database, Opening};

pub use config::{ConfigError, DatabaseLocation, LogFormat, Settings, SettingsArgs, TlsFiles};
pub use database::CopyReport;
pub use observed_store::REFRESH_TOKEN_REUSE_TOTAL;

/// How long in-flight requests may take to finish after SIGINT/SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often sessions that can never be used again are deleted.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// How often the login limiters forget clients whose budget is full again.
pub const LIMITER_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// The connection cap when none is configured and the open-file limit
/// allows it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// File descriptors kept back from the connection cap for everything else
/// the process opens: the database pool (each connection holds the file,
/// its WAL and shared memory), the key files, logs and the listener.
pub const RESERVED_FILE_DESCRIPTORS: u64 = 128;

/// The most threads tokio's blocking pool may start. Database calls run
/// there; the SQLite pool has 8 connections, so more than a few dozen
/// blocking threads would only wait for one (tokio's default allows 512).
/// Password hashing has its own fixed threads.
pub const MAX_BLOCKING_THREADS: usize = 32;

/// The runtime the server is meant to run on: tokio's multi-threaded
/// runtime with [`MAX_BLOCKING_THREADS`]. The binary runs everything on it;
/// an embedding service should too, or give its own runtime the same bound.
pub fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}

/// Opens the data directory and store and assembles the use-cases, as the
/// server does (creating the data directory, database, master key and
/// signing keys on first use), for a server at the configured bind
/// address.
pub async fn build_auth_service(settings: &Settings) -> anyhow::Result<AuthService> {
    let database = Database::open(settings, Opening::CreateOrMigrate).await?;
    let keys = signing::signing_keys(settings, database.store(), settings.bind).await?;
    Ok(build_components(settings, &database, keys.tokens, Limits::Configured)?.service)
}

/// The use-cases for the administration commands (`portcullis user ...`):
/// the same store and rules as the server, but the store must already hold
/// a deployment (a command run with the wrong data directory or database
/// URL must not quietly start a new deployment there), and no signing key
/// is ever read or created: these commands issue no tokens.
pub async fn build_admin_service(settings: &Settings) -> anyhow::Result<AuthService> {
    let database = Database::open(settings, Opening::Existing).await?;
    Ok(build_components(
        settings,
        &database,
        JwtTokens::without_access_tokens(),
        Limits::None,
    )?
    .service)
}

/// The key use-cases for `portcullis keys ...`, on an existing database:
/// listing needs no master key, rotating makes a key and so reads it.
pub async fn build_key_lifecycle(settings: &Settings) -> anyhow::Result<KeyLifecycle> {
    if settings.jwt_algorithm == SigningAlgorithm::Hs256 {
        anyhow::bail!(ConfigError::new(
            "jwt_alg",
            "the keys are HS256 from PORTCULLIS_JWT_SECRET or the generated key file: \
             rotate them by changing the secret; stored, rotating keys need \
             PORTCULLIS_JWT_ALG=EdDSA or ES256"
        ));
    }
    let database = Database::open(settings, Opening::Existing).await?;
    let master_key = Arc::new(signing::load_or_create_master_key(
        &settings.master_key_file,
        true,
    )?);
    Ok(KeyLifecycle::new(
        database.store(),
        Arc::new(SealingKeyGenerator::new(master_key)),
        Arc::new(SystemClock),
        signing::key_policy(settings),
    ))
}

/// The use-cases and the limiters that need periodic upkeep. Every setting
/// was checked by [`Settings::resolve`]: what can fail here is starting the
/// hashing pool.
fn build_components(
    settings: &Settings,
    database: &Database,
    tokens: JwtTokens,
    limits: Limits,
) -> anyhow::Result<Components> {
    // Computes the dummy hash unknown usernames are verified against.
    let hasher =
        Argon2Hasher::new(settings.argon2_policy).context("cannot prepare password hashing")?;
    let hasher = Arc::new(BlockingArgon2Hasher::new(
        hasher,
        HashingLimits::for_available_cores(),
    ));
    let tokens = Arc::new(tokens);
    let local_limiter = Arc::new(GovernorAttemptLimiter::new(
        settings.login_per_ip_per_min,
        settings.login_per_user_per_min,
        settings.api_key_creations_per_user_per_min,
    ));
    let shared_attempts = database.shared_attempts();
    let limiter: Arc<dyn AttemptLimiter> = match (&shared_attempts, limits) {
        (_, Limits::None) => Arc::new(NoAttemptLimit),
        // Several nodes may share this store: every attempt also spends the
        // deployment's budget, after this node's own limiter allowed it.
        (Some(shared), Limits::Configured) => Arc::new(DeploymentAttemptLimiter::new(
            local_limiter.clone(),
            shared.clone(),
            Arc::new(SystemClock),
            settings.login_per_ip_per_min,
            settings.login_per_user_per_min,
            settings.api_key_creations_per_user_per_min,
        )),
        (None, Limits::Configured) => local_limiter.clone(),
    };
    // Only a server that serves metrics counts refresh-token reuse: the
    // recorder is the process's, and another server in it may serve them.
    let store = if settings.metrics_bind.is_some() {
        observed_store::ObservedStore::wrap(database.store())
    } else {
        database.store()
    };
    let service = AuthService::new(
        Ports {
            store,
            hasher,
            access_tokens: tokens.clone(),
            secrets: tokens.clone(),
            verifier: tokens,
            clock: Arc::new(SystemClock),
            limiter,
        },
        settings.auth_settings(),
    );
    Ok(Components {
        service,
        limiters: Limiters {
            local: local_limiter,
            shared: shared_attempts,
        },
    })
}

/// Whether credential checks are rate limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limits {
    /// The configured limits: the server.
    Configured,
    /// None: the administration commands, whose caller already holds the
    /// store (and whose checks must not spend a user's login budget).
    None,
}

/// What [`build_components`] assembles.
struct Components {
    service: AuthService,
    limiters: Limiters,
}

/// The limiters whose memory (or table) the server trims periodically.
#[derive(Clone)]
struct Limiters {
    local: Arc<GovernorAttemptLimiter>,
    shared: Option<Arc<dyn SharedAttemptCounter>>,
}

/// Creates the data directory and the store when missing and brings the
/// schema up to date: what `portcullis migrate` does, and the first step of
/// every server start. Returns what was migrated, for the message.
pub async fn migrate(settings: &Settings) -> anyhow::Result<String> {
    let database = Database::open(settings, Opening::CreateOrMigrate).await?;
    Ok(database.describe())
}

/// `portcullis db copy --to URL`: copies the whole deployment of the
/// configured store (accounts with their hashes, sessions and refresh
/// tokens, API keys, signing keys) into the store at `target`, which must be
/// empty (its schema is created when missing). One consistent read, one
/// write transaction: the target gets all of it or nothing.
pub async fn copy_database(
    settings: &Settings,
    target: &DatabaseLocation,
) -> anyhow::Result<CopyReport> {
    let source = Database::open(settings, Opening::Existing).await?;
    let target = Database::open_location(
        target,
        settings.database_max_connections,
        Opening::CreateOrMigrate,
    )
    .await
    .context("cannot open the target store")?;
    if source.describe() == target.describe() {
        anyhow::bail!("the target is the configured store itself");
    }
    let snapshot = source
        .copier()
        .export_snapshot()
        .await
        .context("cannot read the configured store")?;
    let report = CopyReport {
        target: target.describe(),
        users: snapshot.users.len(),
        sessions: snapshot.sessions.len(),
        refresh_tokens: snapshot.refresh_tokens.len(),
        api_keys: snapshot.api_keys.len(),
        signing_keys: snapshot.signing_keys.len(),
        audit_events: snapshot.audit.entries.len(),
    };
    match target.copier().import_snapshot(&snapshot).await {
        Ok(()) => Ok(report),
        Err(StoreError::NotEmpty) => anyhow::bail!(
            "the target store {} is not empty: nothing was copied; copy into a new, empty database",
            target.describe()
        ),
        Err(error) => Err(anyhow::Error::new(error).context("cannot write the target store")),
    }
}

/// The audit chain's key of the deployment `settings` name: derived from
/// its master key file, which must exist. For tools that write to the store
/// directly (a migration of another system's accounts, a test) and must
/// append to the same chain.
pub fn audit_key(settings: &Settings) -> anyhow::Result<Arc<dyn AuditKey>> {
    let master_key = signing::load_or_create_master_key(&settings.master_key_file, true)?;
    Ok(Arc::new(
        MasterAuditKey::derive(&master_key).context("cannot derive the audit log's key")?,
    ))
}

/// `portcullis audit verify`: checks the whole stored audit chain with the
/// master key's audit key. The outer error is opening or reading the store;
/// the inner one the first bad `seq`.
pub async fn verify_audit_log(
    settings: &Settings,
) -> anyhow::Result<Result<ChainReport, ChainBreak>> {
    let (database, key) = Database::open_keyed(settings, Opening::Existing).await?;
    verify_store(database.store().as_ref(), key.as_ref())
        .await
        .context("cannot read the audit log")
}

/// `portcullis audit export`: every stored event at or after `since` (all
/// when `None`), in `seq` order with its chain MAC, handed to `write` page
/// by page (so a long log is never held whole).
pub async fn export_audit_log(
    settings: &Settings,
    since: Option<OffsetDateTime>,
    mut write: impl FnMut(&SealedAuditEntry) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let database = Database::open(settings, Opening::Existing).await?;
    let store = database.store();
    let mut after = 0;
    let mut written = 0;
    loop {
        let page = store
            .audit_chain_page(after, VERIFY_PAGE_SIZE)
            .await
            .context("cannot read the audit log")?;
        let Some(last) = page.last() else {
            return Ok(written);
        };
        after = last.entry.seq;
        for sealed in page
            .iter()
            .filter(|sealed| since.is_none_or(|since| sealed.entry.at >= since))
        {
            write(sealed)?;
            written += 1;
        }
    }
}

/// A server bound to its address, ready to run: Portcullis's operations (and
/// an embedder's), TLS when configured, the connection limits, and the
/// background tasks that purge dead sessions and let the rate limiters
/// forget old clients.
pub struct Application {
    auth: AuthService,
    limiters: Limiters,
    key_ring: Arc<dyn KeyRing>,
    key_lifecycle: Option<KeyLifecycle>,
    key_upkeep_interval: Duration,
    audit_retention: Duration,
    local_addr: SocketAddr,
    listener: server::Listener,
    limits: server::ConnectionLimits,
    app: poem::endpoint::BoxEndpoint<'static>,
    metrics: Option<metrics::MetricsServer>,
    database: Database,
}

impl Application {
    /// Wires everything and binds the listen address (port 0 picks a free
    /// port): the server `portcullis serve` runs.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, portcullis_http::api_service()).await
    }

    /// Like [`build`](Self::build), serving `service`: Portcullis's
    /// operations together with your own poem-openapi API, made with
    /// [`portcullis_http::api_service_with`]. Your operations share the
    /// OpenAPI document, Swagger UI, error formats, headers, logs and every
    /// setting with Portcullis's own, and can take an
    /// [`Authenticated`](portcullis_http::security::Authenticated) parameter.
    pub async fn build_with<T: OpenApi + 'static>(
        settings: &Settings,
        service: OpenApiService<(PortcullisApis, T), ()>,
    ) -> anyhow::Result<Self> {
        let limits = connection_limits(settings)?;
        let tls = match &settings.tls {
            Some(files) => Some(Arc::new(read_tls_files(files)?)),
            None => None,
        };
        let listener = server::Listener::bind(settings.bind, tls)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let local_addr = listener
            .local_addr()
            .context("the listener has no socket address")?;
        // Bound (and the recorder installed) before the adapters are built,
        // so that what they record at start is kept.
        let metrics = match settings.metrics_bind {
            Some(address) => Some(metrics::MetricsServer::bind(address).await?),
            None => None,
        };
        let database = Database::open(settings, Opening::CreateOrMigrate).await?;
        let keys = signing::signing_keys(settings, database.store(), local_addr).await?;
        let Components {
            service: auth,
            limiters,
        } = build_components(settings, &database, keys.tokens, Limits::Configured)?;
        let app = portcullis_http::build_app_with(
            AppState {
                auth: auth.clone(),
                trusted_proxies: settings.trusted_proxies.clone(),
                publication: Publication {
                    key_ring: keys.key_ring.clone(),
                    key_lifecycle: keys.lifecycle.clone(),
                    public_url: settings.public_url_for(local_addr),
                    issuer: settings.issuer_for(local_addr),
                    jwks_max_age: signing::jwks_max_age(settings),
                },
            },
            &settings.http_options(),
            service,
        );
        Ok(Self {
            auth,
            limiters,
            key_ring: keys.key_ring,
            key_lifecycle: keys.lifecycle,
            key_upkeep_interval: signing::key_upkeep_interval(settings),
            audit_retention: settings.audit_retention,
            local_addr,
            listener,
            limits,
            app,
            metrics,
            database,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's URL, `http://` or `https://` and the bound address, as
    /// tests and a start-up message want it. Behind a wildcard bind
    /// (`0.0.0.0`), replace the host with one clients can reach.
    pub fn base_url(&self) -> String {
        let scheme = if self.listener.is_tls() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The bound address of the metrics listener, when
    /// `PORTCULLIS_METRICS_BIND` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .map(metrics::MetricsServer::local_addr)
    }

    /// The connection limits the server runs with.
    pub fn connection_limits(&self) -> server::ConnectionLimits {
        self.limits
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish
    /// for up to [`SHUTDOWN_GRACE`].
    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish
    /// for up to [`SHUTDOWN_GRACE`]. The metrics listener, if any, serves
    /// as long as the API does.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = self.metrics.take().map(|metrics| {
            let address = metrics.local_addr();
            tracing::info!(
                metrics_address = %address,
                "serving metrics on http://{address}/metrics"
            );
            tokio::spawn(metrics.serve(self.database.clone(), async {
                let _ = metrics_stopped.await;
            }))
        });
        tracing::info!(
            address = %self.local_addr,
            max_connections = self.limits.max_connections,
            "listening on {}",
            self.base_url()
        );
        let purge = tokio::spawn(purge_periodically(self.auth.clone(), self.audit_retention));
        let cleanup = tokio::spawn(clean_up_limiters_periodically(self.limiters.clone()));
        let key_upkeep = tokio::spawn(keep_keys_up_to_date(
            self.key_lifecycle.clone(),
            self.key_ring.clone(),
            self.key_upkeep_interval,
        ));
        let result = server::serve(
            self.listener,
            self.app,
            self.limits,
            shutdown,
            SHUTDOWN_GRACE,
        )
        .await
        .context("server failed");
        purge.abort();
        cleanup.abort();
        key_upkeep.abort();
        let _ = stop_metrics.send(());
        if let Some(metrics) = metrics {
            match metrics.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "the metrics listener failed"),
                Err(error) => tracing::warn!(%error, "the metrics listener panicked"),
            }
        }
        result
    }
}

/// The TLS configuration from the PEM files.
fn read_tls_files(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    server::tls_config(&read(&files.certificate_chain)?, &read(&files.private_key)?)
}

/// The connection limits from the settings and the open-file limit, which
/// is first raised to its hard maximum. A configured cap the limit cannot
/// hold is a configuration error: past it, `accept()` would fail instead.
fn connection_limits(settings: &Settings) -> anyhow::Result<server::ConnectionLimits> {
    let open_files = server::raise_open_file_limit().context("reading the open-file limit")?;
    let available =
        usize::try_from(open_files.saturating_sub(RESERVED_FILE_DESCRIPTORS)).unwrap_or(usize::MAX);
    let max_connections = match settings.max_connections.map(usize::from) {
        Some(wanted) if wanted > available => {
            return Err(ConfigError::new(
                "max_connections",
                format!(
                    "max_connections {wanted} needs about {} open files, but the limit is {open_files}; \
                     raise `ulimit -n` or lower max_connections",
                    wanted as u64 + RESERVED_FILE_DESCRIPTORS
                ),
            )
            .into());
        }
        Some(wanted) => wanted,
        None if available == 0 => {
            return Err(ConfigError::new(
                "max_connections",
                format!(
                    "the open-file limit of {open_files} leaves no room for connections; raise `ulimit -n`"
                ),
            )
            .into());
        }
        None => available.min(DEFAULT_MAX_CONNECTIONS),
    };
    Ok(server::ConnectionLimits {
        header_read_timeout: settings.header_read_timeout,
        idle_timeout: settings.idle_timeout,
        max_connections,
        http2_max_concurrent_streams: settings.http2_max_streams,
    })
}

/// Rotates and deletes keys when due (one node of several does, the store
/// decides which) and reads the keys again, so that this node signs with
/// the current key and verifies every published one, also after another
/// node rotated. Failures are logged and retried at the next tick: the
/// keys in use stay valid meanwhile.
async fn keep_keys_up_to_date(
    lifecycle: Option<KeyLifecycle>,
    key_ring: Arc<dyn KeyRing>,
    interval: Duration,
) {
    let Some(lifecycle) = lifecycle else {
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match lifecycle.maintain().await {
            Ok(done) if done.rotated || done.deleted > 0 => tracing::info!(
                rotated = done.rotated,
                deleted = done.deleted,
                "signing keys maintained"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "signing-key upkeep failed; retrying"),
        }
        if let Err(error) = key_ring.reload().await {
            tracing::warn!(error = %error, "reading the signing keys failed; keeping the current ones");
        }
    }
}

/// governor keeps every key it has seen until told otherwise: forget the
/// ones whose budget is full again so memory stays bounded by recent clients.
/// The shared budgets are forgotten the same way, by whichever node asks
/// first (each deletion is one statement; nodes asking at once just find
/// less to delete).
async fn clean_up_limiters_periodically(limiters: Limiters) {
    let mut interval = tokio::time::interval(LIMITER_CLEANUP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        limiters.local.retain_recent();
        if let Some(shared) = &limiters.shared
            && let Err(error) = shared.forget_refilled_attempts(SystemClock.now()).await
        {
            tracing::warn!(%error, "forgetting refilled attempt budgets failed; retrying");
        }
    }
}

/// Deletes dead sessions (and their refresh tokens) and the audit events
/// older than `audit_retention` every [`PURGE_INTERVAL`] so the tables do
/// not grow without bound. A failure is logged and retried at the next
/// tick. With several nodes each prunes; the store serializes them, and a
/// node that finds nothing old writes nothing.
async fn purge_periodically(auth: AuthService, audit_retention: Duration) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match auth.purge_dead_sessions().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged dead sessions"),
            Err(error) => tracing::warn!(%error, "purging dead sessions failed"),
        }
        match auth.prune_audit_log(audit_retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned audit events past their retention"),
            Err(error) => tracing::warn!(%error, "pruning the audit log failed"),
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
