//! The Portcullis server and administration CLI.
//!
//! This is the only crate that knows every other crate: it resolves the
//! settings, opens the SQLite store, loads the signing key, and wires the
//! concrete adapters into the domain's `AuthService` and the HTTP app.
//! [`Application`] is what `portcullis serve` runs and what the black-box
//! tests start on port 0.

pub mod config;
pub mod keys;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::Server;
use poem::listener::{
    Acceptor, AcceptorExt, Listener, RustlsCertificate, RustlsConfig, TcpListener,
};
use portcullis_crypto::{Argon2Hasher, Argon2Policy, JwtCodec};
use portcullis_domain::ports::SystemClock;
use portcullis_domain::{AuthService, AuthSettings, PasswordPolicy, Ports};
use portcullis_http::adapters::{
    BlockingArgon2Hasher, GovernorAttemptLimiter, HashingLimits, JwtTokens,
};
use portcullis_http::client_ip::TrustedProxies;
use portcullis_http::{AppState, HttpOptions};
use portcullis_storage::SqliteStore;
use secrecy::ExposeSecret;

pub use config::{ConfigError, Settings, SettingsArgs};

/// How long in-flight requests may take to finish after SIGINT/SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often sessions that can never be used again are deleted.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// How often the login limiters forget clients whose budget is full again.
pub const LIMITER_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Opens the data directory and store and assembles the use-cases.
pub fn build_auth_service(settings: &Settings) -> anyhow::Result<AuthService> {
    Ok(build_components(settings)?.0)
}

/// The use-cases and the limiter that needs periodic cleanup.
fn build_components(
    settings: &Settings,
) -> anyhow::Result<(AuthService, Arc<GovernorAttemptLimiter>)> {
    create_data_dir(settings)?;
    let database = settings.database_path();
    // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm
    // files the database file's mode, so all three are owner-only from the
    // first moment. An existing file is tightened if it is not.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&database)
        .with_context(|| format!("cannot create {}", database.display()))?;
    restrict_to_owner(&database)?;
    let store = Arc::new(
        SqliteStore::open(&database)
            .with_context(|| format!("cannot open {}", database.display()))?,
    );
    let codec = match &settings.jwt_secret {
        Some(secret) => JwtCodec::new(
            secret.expose_secret().as_bytes(),
            &settings.issuer,
            &settings.audience,
        ),
        None => {
            let key = keys::load_or_create_signing_key(&settings.key_path())?;
            JwtCodec::new(key.expose_secret(), &settings.issuer, &settings.audience)
        }
    }
    .context("cannot build the token signer")?;
    let policy = Argon2Policy {
        memory_kib: settings.argon2_m_kib,
        iterations: settings.argon2_t,
        parallelism: settings.argon2_p,
    };
    policy
        .validate(settings.insecure_test_hashing)
        .context("argon2 parameters")?;
    let hasher = Argon2Hasher::new(policy).context("argon2 parameters")?;
    let hasher = Arc::new(BlockingArgon2Hasher::new(
        hasher,
        HashingLimits::for_available_cores(),
    ));
    let tokens = Arc::new(JwtTokens::new(codec));
    let password_policy = PasswordPolicy::with_min_length(settings.password_min_length)
        .context("password_min_length must be between 8 and 256")?;
    let limiter = Arc::new(GovernorAttemptLimiter::new(
        std::num::NonZeroU32::new(settings.login_per_ip_per_min)
            .context("login_per_ip_per_min must be greater than 0")?,
        std::num::NonZeroU32::new(settings.login_per_user_per_min)
            .context("login_per_user_per_min must be greater than 0")?,
        std::num::NonZeroU32::new(settings.api_key_creations_per_user_per_min)
            .context("api_key_creations_per_user_per_min must be greater than 0")?,
    ));
    let service = AuthService::new(
        Ports {
            users: store.clone(),
            sessions: store.clone(),
            api_keys: store,
            hasher,
            issuer: tokens.clone(),
            verifier: tokens,
            clock: Arc::new(SystemClock),
            limiter: limiter.clone(),
        },
        AuthSettings {
            access_token_ttl: Duration::from_secs(settings.access_ttl_secs),
            session_ttl: Duration::from_secs(settings.refresh_ttl_secs),
            session_idle_timeout: Duration::from_secs(settings.refresh_idle_secs),
            password_policy,
            max_sessions_per_user: settings.max_sessions_per_user,
            max_api_keys_per_user: settings.max_api_keys_per_user,
        },
    );
    Ok((service, limiter))
}

fn create_data_dir(settings: &Settings) -> anyhow::Result<()> {
    if let Ok(metadata) = std::fs::metadata(&settings.data_dir) {
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %settings.data_dir.display(),
                "the data directory is accessible to other users; consider chmod 700"
            );
        }
    } else {
        // The directory holds the signing key: only its owner may enter.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&settings.data_dir)
            .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    }
    Ok(())
}

/// The database holds password hashes: only its owner may read it.
fn restrict_to_owner(path: &std::path::Path) -> anyhow::Result<()> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}

/// A server bound to its address, ready to run.
pub struct Application {
    auth: AuthService,
    limiter: Arc<GovernorAttemptLimiter>,
    local_addr: SocketAddr,
    acceptor: poem::listener::BoxAcceptor,
    scheme: &'static str,
    app: poem::endpoint::BoxEndpoint<'static>,
}

impl Application {
    /// Wires everything and binds the listen address (port 0 picks a free port).
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let (auth, limiter) = build_components(settings)?;
        let trusted_proxies = TrustedProxies::parse(&settings.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        let app = portcullis_http::build_app(
            AppState {
                auth: auth.clone(),
                trusted_proxies,
            },
            &HttpOptions {
                docs_enabled: settings.docs,
                cors_origins: settings.cors_origins.clone(),
                hsts: settings.tls_cert.is_some(),
            },
        );
        let acceptor = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => {
                let certificate = RustlsCertificate::new()
                    .cert(
                        std::fs::read(cert)
                            .with_context(|| format!("cannot read {}", cert.display()))?,
                    )
                    .key(
                        std::fs::read(key)
                            .with_context(|| format!("cannot read {}", key.display()))?,
                    );
                // rustls speaks TLS 1.2 and 1.3 only.
                TcpListener::bind(settings.bind)
                    .rustls(RustlsConfig::new().fallback(certificate))
                    .into_acceptor()
                    .await
                    .map(AcceptorExt::boxed)
            }
            _ => TcpListener::bind(settings.bind)
                .into_acceptor()
                .await
                .map(AcceptorExt::boxed),
        }
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .context("the listener has no socket address")?;
        Ok(Self {
            auth,
            limiter,
            local_addr,
            acceptor,
            scheme: if settings.tls_cert.is_some() {
                "https"
            } else {
                "http"
            },
            app,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish
    /// for up to [`SHUTDOWN_GRACE`].
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr, "listening on {}://{}", self.scheme, self.local_addr);
        let purge = tokio::spawn(purge_dead_sessions_periodically(self.auth.clone()));
        let cleanup = tokio::spawn(clean_up_limiters_periodically(self.limiter.clone()));
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.app, shutdown, Some(SHUTDOWN_GRACE))
            .await
            .context("server failed");
        purge.abort();
        cleanup.abort();
        result
    }
}

/// governor keeps every key it has seen until told otherwise: forget the
/// ones whose budget is full again so memory stays bounded by recent clients.
async fn clean_up_limiters_periodically(limiter: Arc<GovernorAttemptLimiter>) {
    let mut interval = tokio::time::interval(LIMITER_CLEANUP_INTERVAL);
    loop {
        interval.tick().await;
        limiter.retain_recent();
    }
}

/// Deletes dead sessions (and their refresh tokens) every [`PURGE_INTERVAL`]
/// so the tables do not grow without bound. A failure is logged and retried
/// at the next tick.
async fn purge_dead_sessions_periodically(auth: AuthService) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match auth.purge_dead_sessions().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged dead sessions"),
            Err(error) => tracing::warn!(%error, "purging dead sessions failed"),
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
