//! Settings: flag beats environment beats TOML file beats default.
//!
//! clap merges flags and `PORTCULLIS_*` variables (its `env` feature); the
//! file fills what both left unset; [`Settings::resolve`] applies the
//! defaults and parses every value, once, into the type that uses it
//! (`Duration`, `NonZeroU32`, `PasswordPolicy`, `Argon2Policy`,
//! `TrustedProxies`), refusing unsafe ones before anything starts. Nothing
//! built from [`Settings`] afterwards can fail on a setting.
//!
//! A default belongs to the crate that uses the setting: the domain's
//! `AuthSettings` and `PasswordPolicy`, crypto's `Argon2Policy`, the
//! adapters' `GovernorAttemptLimiter`, the HTTP layer's `HttpOptions` and the
//! server module's `ConnectionLimits`. This module reads them from there, so
//! a default here cannot disagree with the crate that owns it; only the
//! settings no crate owns (where to listen, the data directory, token
//! names, logging, and the bounds below) have their defaults here.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use portcullis_adapters::GovernorAttemptLimiter;
use portcullis_crypto::Argon2Policy;
use portcullis_domain::{
    AuthSettings, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH_FLOOR, PasswordPolicy, SigningAlgorithm,
};
use portcullis_http::HttpOptions;
use portcullis_http::client_ip::TrustedProxies;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::server::ConnectionLimits;

/// The smallest HS256 key accepted, in bytes (RFC 7518 §3.2): crypto's,
/// which refuses anything shorter.
pub use portcullis_crypto::MIN_HS256_SECRET_BYTES as MIN_JWT_SECRET_BYTES;
/// The longest access-token lifetime accepted: a day. RFC 9068 tokens are
/// meant to be short-lived; longer would also outlast most revocation needs.
pub const MAX_ACCESS_TTL_SECS: u64 = 86_400;
/// The longest session lifetime (absolute or idle) accepted: ten years.
pub const MAX_SESSION_TTL_SECS: u64 = 315_360_000;
/// The longest connection timeout accepted, in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 3_600;
/// The most concurrent streams one HTTP/2 connection may be allowed.
pub const MAX_HTTP2_STREAMS: u32 = 1_000;

/// The longest key publish-ahead time or rotation period accepted: ten
/// years, so that no key time can overflow a timestamp.
pub const MAX_KEY_SECS: u64 = 315_360_000;
/// How long a new signing key is published before it signs, unless
/// configured otherwise: an hour.
pub const DEFAULT_KEY_PUBLISH_AHEAD_SECS: u64 = 3_600;
/// How long a signing key signs before it is rotated, unless configured
/// otherwise: thirty days.
pub const DEFAULT_KEY_ROTATION_SECS: u64 = 2_592_000;

/// The listen address unless configured otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:8000";
/// The data directory unless configured otherwise, relative to the
/// working directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The SQLite file in the data directory when no database URL is set.
pub const SQLITE_FILE_NAME: &str = "portcullis.db";
/// Connections to PostgreSQL per node unless configured otherwise: enough
/// for a 2–8 core node (the work per request is a few short statements), few
/// enough that ten nodes stay inside PostgreSQL's default of 100.
pub const DEFAULT_DATABASE_MAX_CONNECTIONS: u32 = 16;
/// The most connections to PostgreSQL one node may keep.
pub const MAX_DATABASE_CONNECTIONS: u32 = 1000;
/// The `iss` and `aud` of tokens unless configured otherwise.
pub const DEFAULT_TOKEN_NAME: &str = "portcullis";
/// The tracing filter unless configured otherwise.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// Settings that can be given as flags or environment variables.
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// TOML file with settings (keys as in docs/configuration.md).
    #[arg(long, env = "PORTCULLIS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Listen address; port 0 picks a free port [default: 127.0.0.1:8000].
    #[arg(long, env = "PORTCULLIS_BIND", global = true)]
    pub bind: Option<String>,
    /// Listen address of the Prometheus `/metrics` listener, separate from the API's; port 0 picks a free port [default: none, no metrics].
    #[arg(long, env = "PORTCULLIS_METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,
    /// Directory for the SQLite database and the generated key [default: ./data].
    #[arg(long, env = "PORTCULLIS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The store: `sqlite:///path/file.db` or `postgres://user@host/db` (`?sslmode=require` for TLS) [default: SQLite in the data directory].
    #[arg(
        long,
        env = "PORTCULLIS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// PEM file of the CA certificates PostgreSQL servers' TLS certificates are checked against (the store's, or a `db copy` target's) [default: the system's trusted roots].
    #[arg(long, env = "PORTCULLIS_DATABASE_CA_FILE", global = true)]
    pub database_ca_file: Option<PathBuf>,
    /// Connections this node keeps to PostgreSQL at most [default: 16].
    #[arg(long, env = "PORTCULLIS_DATABASE_MAX_CONNECTIONS", global = true)]
    pub database_max_connections: Option<u32>,
    /// HS256 signing key, at least 32 bytes [default: generated into the data directory].
    #[arg(
        long,
        env = "PORTCULLIS_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// `iss` of issued tokens, checked on every request [default: the public URL].
    #[arg(long, env = "PORTCULLIS_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// The service's external base URL [default: http(s):// and the bound address].
    #[arg(long, env = "PORTCULLIS_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Access-token algorithm: EdDSA, ES256 or HS256 [default: EdDSA, or HS256 when a JWT secret is set].
    #[arg(long, env = "PORTCULLIS_JWT_ALG", global = true)]
    pub jwt_alg: Option<String>,
    /// Seconds a new signing key is published before it signs [default: 3600].
    #[arg(long, env = "PORTCULLIS_KEY_PUBLISH_AHEAD_SECS", global = true)]
    pub key_publish_ahead_secs: Option<u64>,
    /// Seconds a signing key signs before it is rotated [default: 2592000].
    #[arg(long, env = "PORTCULLIS_KEY_ROTATION_SECS", global = true)]
    pub key_rotation_secs: Option<u64>,
    /// File holding the master key that seals the signing keys [default: master-key in the data directory].
    #[arg(long, env = "PORTCULLIS_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// `aud` of issued tokens, checked on every request [default: portcullis].
    #[arg(long, env = "PORTCULLIS_AUDIENCE", global = true)]
    pub audience: Option<String>,
    /// Access-token lifetime in seconds [default: 900].
    #[arg(long, env = "PORTCULLIS_ACCESS_TTL_SECS", global = true)]
    pub access_ttl_secs: Option<u64>,
    /// Absolute session (refresh) lifetime in seconds [default: 2592000].
    #[arg(long, env = "PORTCULLIS_REFRESH_TTL_SECS", global = true)]
    pub refresh_ttl_secs: Option<u64>,
    /// A session unused this many seconds expires [default: 604800].
    #[arg(long, env = "PORTCULLIS_REFRESH_IDLE_SECS", global = true)]
    pub refresh_idle_secs: Option<u64>,
    /// Credential checks allowed per client IP per minute [default: 10].
    #[arg(long, env = "PORTCULLIS_LOGIN_PER_IP_PER_MIN", global = true)]
    pub login_per_ip_per_min: Option<u32>,
    /// Credential checks allowed per username per minute [default: 10].
    #[arg(long, env = "PORTCULLIS_LOGIN_PER_USER_PER_MIN", global = true)]
    pub login_per_user_per_min: Option<u32>,
    /// Live API keys one user may hold [default: 100].
    #[arg(long, env = "PORTCULLIS_MAX_API_KEYS_PER_USER", global = true)]
    pub max_api_keys_per_user: Option<u32>,
    /// API keys one user may create per minute [default: 10].
    #[arg(
        long,
        env = "PORTCULLIS_API_KEY_CREATIONS_PER_USER_PER_MIN",
        global = true
    )]
    pub api_key_creations_per_user_per_min: Option<u32>,
    /// Active sessions one user may hold; a new one ends the least recently used [default: 100].
    #[arg(long, env = "PORTCULLIS_MAX_SESSIONS_PER_USER", global = true)]
    pub max_sessions_per_user: Option<u32>,
    /// Days the audit log keeps an event; older ones are pruned behind a sealed checkpoint [default: 365].
    #[arg(long, env = "PORTCULLIS_AUDIT_RETENTION_DAYS", global = true)]
    pub audit_retention_days: Option<u32>,
    /// Minimum password length in code points, at least 8 [default: 15].
    #[arg(long, env = "PORTCULLIS_PASSWORD_MIN_LENGTH", global = true)]
    pub password_min_length: Option<usize>,
    /// argon2id memory cost in KiB [default: 19456].
    #[arg(long, env = "PORTCULLIS_ARGON2_M_KIB", global = true)]
    pub argon2_m_kib: Option<u32>,
    /// argon2id iterations [default: 2].
    #[arg(long, env = "PORTCULLIS_ARGON2_T", global = true)]
    pub argon2_t: Option<u32>,
    /// argon2id parallelism [default: 1].
    #[arg(long, env = "PORTCULLIS_ARGON2_P", global = true)]
    pub argon2_p: Option<u32>,
    /// Allow argon2 memory below 7168 KiB. For tests only.
    #[arg(long, env = "PORTCULLIS_INSECURE_TEST_HASHING", global = true, value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub insecure_test_hashing: Option<bool>,
    /// Comma-separated IPs/CIDRs whose X-Forwarded-For is believed [default: none].
    #[arg(long, env = "PORTCULLIS_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// Comma-separated allowed CORS origins [default: none, no CORS headers].
    #[arg(long, env = "PORTCULLIS_CORS_ORIGINS", global = true)]
    pub cors_origins: Option<String>,
    /// PEM certificate chain: serve HTTPS.
    #[arg(long, env = "PORTCULLIS_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key: serve HTTPS.
    #[arg(long, env = "PORTCULLIS_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Serve /docs and /openapi.json [default: true].
    #[arg(long, env = "PORTCULLIS_DOCS", global = true, value_parser = BoolishValueParser::new())]
    pub docs: Option<bool>,
    /// Connections served at once [default: 4096, or fewer when the open-file limit is lower].
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Seconds allowed for a request's headers (and a TLS handshake), also the longest wait for the next request on a kept-alive HTTP/1.1 connection [default: 10].
    #[arg(long, env = "PORTCULLIS_HEADER_READ_TIMEOUT_SECS", global = true)]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds allowed for a request's body [default: 10].
    #[arg(long, env = "PORTCULLIS_BODY_READ_TIMEOUT_SECS", global = true)]
    pub body_read_timeout_secs: Option<u64>,
    /// A connection that moves no byte for this many seconds, with no request in progress, is closed [default: 60].
    #[arg(long, env = "PORTCULLIS_IDLE_TIMEOUT_SECS", global = true)]
    pub idle_timeout_secs: Option<u64>,
    /// Concurrent streams per HTTP/2 connection (HTTP/2 is served over TLS only) [default: 32].
    #[arg(long, env = "PORTCULLIS_HTTP2_MAX_STREAMS", global = true)]
    pub http2_max_streams: Option<u32>,
    /// Tracing filter, e.g. `info` or `portcullis=debug` [default: info].
    #[arg(long, env = "PORTCULLIS_LOG", global = true)]
    pub log: Option<String>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "PORTCULLIS_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting, resolved and parsed into the type that uses it.
///
/// Built by [`Settings::resolve`], which applies the defaults and refuses
/// every value the server cannot run with, so that what is built from it
/// ([`Application::build`](crate::Application::build),
/// [`build_auth_service`](crate::build_auth_service)) fails only on I/O,
/// never on a setting. The fields are public to be read (and, in tests, to
/// move `bind`); a value written into one afterwards has not been checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Listen address.
    pub bind: SocketAddr,
    /// Listen address of the Prometheus `/metrics` listener; `None`: no
    /// metrics are served.
    pub metrics_bind: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where the store is.
    pub database: DatabaseLocation,
    /// Connections to PostgreSQL at most, 1 to [`MAX_DATABASE_CONNECTIONS`].
    pub database_max_connections: u32,
    /// The CA certificates PostgreSQL servers' certificates are checked
    /// against (the store's, or a `db copy` target's); `None`: the operating
    /// system's trusted roots.
    pub database_ca_file: Option<PathBuf>,
    /// Explicit signing key, at least [`MIN_JWT_SECRET_BYTES`]; `None` means
    /// the generated key file.
    pub jwt_secret: Option<SecretString>,
    /// `iss` of tokens, not empty; `None`: the public URL.
    pub issuer: Option<String>,
    /// The external base URL (`http` or `https`, no trailing `/`); `None`:
    /// the scheme and the bound address, known once the server listens.
    pub public_url: Option<String>,
    /// What access tokens are signed with. HS256 keeps the v1 keys: the
    /// configured secret or the generated key file, never rotated.
    pub jwt_algorithm: SigningAlgorithm,
    /// How long a new key is published before it signs.
    pub key_publish_ahead: Duration,
    /// How long a key signs before the scheduled rotation.
    pub key_rotation: Duration,
    /// The master key file (created with mode 0600 on first start).
    pub master_key_file: PathBuf,
    /// `aud` of tokens, not empty.
    pub audience: String,
    /// Access-token lifetime, at most [`MAX_ACCESS_TTL_SECS`].
    pub access_token_ttl: Duration,
    /// Absolute session lifetime, at most [`MAX_SESSION_TTL_SECS`].
    pub session_ttl: Duration,
    /// A session unused this long expires; at most [`MAX_SESSION_TTL_SECS`].
    pub session_idle_timeout: Duration,
    /// Credential checks per client address per minute.
    pub login_per_ip_per_min: NonZeroU32,
    /// Credential checks per username per minute.
    pub login_per_user_per_min: NonZeroU32,
    /// API-key creations per user per minute.
    pub api_key_creations_per_user_per_min: NonZeroU32,
    /// Live API keys per user.
    pub max_api_keys_per_user: NonZeroU32,
    /// Active sessions per user.
    pub max_sessions_per_user: NonZeroU32,
    /// How long the audit log keeps an event (whole days, 1 to
    /// [`MAX_AUDIT_RETENTION_DAYS`]).
    pub audit_retention: Duration,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// argon2id cost: accepted by argon2, and at least
    /// [`Argon2Policy::MIN_SECURE_MEMORY_KIB`] unless insecure test hashing
    /// was asked for.
    pub argon2_policy: Argon2Policy,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Allowed CORS origins, each exactly as browsers send `Origin`.
    pub cors_origins: Vec<String>,
    /// Serve HTTPS with these files; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Serve the documents.
    pub docs: bool,
    /// Connections served at once; `None`: as many as the open-file limit
    /// allows, at most [`crate::DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: Option<NonZeroUsize>,
    /// Time allowed for a request's headers (and a TLS handshake).
    pub header_read_timeout: Duration,
    /// Time allowed for a request's body.
    pub body_read_timeout: Duration,
    /// Idle connection timeout.
    pub idle_timeout: Duration,
    /// Concurrent streams per HTTP/2 connection, 1 to [`MAX_HTTP2_STREAMS`].
    pub http2_max_streams: u32,
    /// Tracing filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
}

/// Where a deployment's store is: `PORTCULLIS_DATABASE_URL`.
#[derive(Clone)]
pub enum DatabaseLocation {
    /// A SQLite file (the default: `portcullis.db` in the data directory).
    Sqlite(PathBuf),
    /// A PostgreSQL server, by its `postgres://` URL, which may hold a
    /// password and so is never printed; and the CA file its certificate is
    /// checked against.
    Postgres {
        /// The URL as configured.
        url: SecretString,
        /// `database_ca_file`.
        ca_file: Option<PathBuf>,
    },
}

impl std::fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres { ca_file, .. } => f
                .debug_struct("Postgres")
                .field("url", &"..")
                .field("ca_file", ca_file)
                .finish(),
        }
    }
}

impl DatabaseLocation {
    /// A database URL given to a command (`db copy --to`), read like
    /// `PORTCULLIS_DATABASE_URL`; `ca_file` is used for a PostgreSQL one.
    pub fn parse_url(url: &str, ca_file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let ca_file = if url.starts_with("sqlite://") {
            None
        } else {
            ca_file
        };
        Self::parse(url, ca_file)
    }

    /// Reads `PORTCULLIS_DATABASE_URL`: `sqlite://` and a path (three
    /// slashes for an absolute one), or a `postgres://`/`postgresql://` URL.
    /// The PostgreSQL URL's own syntax is checked when connecting.
    fn parse(url: &str, ca_file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let refuse = |why: &str| ConfigError::new("database_url", format!("database_url: {why}"));
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(refuse(
                    "a sqlite:// URL names a file, e.g. sqlite:///var/lib/portcullis/portcullis.db",
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: SecretString::from(url.to_owned()),
                ca_file,
            });
        }
        // The value may hold a password: name only what was expected.
        Err(refuse(
            "must start with sqlite:// or postgres:// (or postgresql://)",
        ))
    }

    /// What the location is, for messages: the SQLite file, or
    /// `PostgreSQL` (the URL may hold a password).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres { .. } => "PostgreSQL (PORTCULLIS_DATABASE_URL)".to_owned(),
        }
    }
}

/// The PEM files HTTPS is served with. Read when the server starts, not
/// when the settings are resolved: reading is I/O, and the files may be
/// replaced between starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (`tls_cert`).
    pub certificate_chain: PathBuf,
    /// The private key (`tls_key`).
    pub private_key: PathBuf,
}

/// A setting that cannot be used. The binary exits with code 2.
///
/// ```
/// use portcullis::{Settings, SettingsArgs};
///
/// let args = SettingsArgs {
///     access_ttl_secs: Some(0),
///     ..SettingsArgs::default()
/// };
/// let error = Settings::resolve(&args).unwrap_err();
/// assert_eq!(error.setting(), "access_ttl_secs");
/// assert_eq!(error.environment_variable(), "PORTCULLIS_ACCESS_TTL_SECS");
/// assert_eq!(error.message(), "access_ttl_secs must be between 1 and 86400");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {message}")]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl ConfigError {
    /// An error about `setting`, named by its file key.
    pub(crate) fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self {
            setting,
            message: message.into(),
        }
    }

    /// The refused setting, by its key in the TOML file (`access_ttl_secs`);
    /// `config` when the file itself cannot be used.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// The refused setting's environment variable
    /// (`PORTCULLIS_ACCESS_TTL_SECS`).
    pub fn environment_variable(&self) -> String {
        format!("PORTCULLIS_{}", self.setting.to_ascii_uppercase())
    }

    /// What is wrong and how to fix it, as the binary prints it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Settings {
    /// Resolves flags/env over the file over the defaults, and parses every
    /// value into the type that uses it. The first refused value is the
    /// error.
    pub fn resolve(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let auth_defaults = AuthSettings::default();
        let argon2_defaults = Argon2Policy::default();

        let bind_text = pick(args.bind.clone(), file.bind, DEFAULT_BIND.to_owned());
        let bind = bind_text.parse().map_err(|_| {
            ConfigError::new(
                "bind",
                format!("bind: `{bind_text}` is not an address like {DEFAULT_BIND}"),
            )
        })?;
        let metrics_bind = match args.metrics_bind.clone().or(file.metrics_bind) {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| {
                ConfigError::new(
                    "metrics_bind",
                    format!("metrics_bind: `{text}` is not an address like 127.0.0.1:9100"),
                )
            })?),
        };
        let log_format = parse_log_format(pick(
            args.log_format.clone(),
            file.log_format,
            "text".to_owned(),
        ))?;
        let jwt_secret = args
            .jwt_secret
            .clone()
            .or(file.jwt_secret)
            .map(SecretString::from);
        if let Some(secret) = &jwt_secret
            && secret.expose_secret().len() < MIN_JWT_SECRET_BYTES
        {
            return Err(ConfigError::new(
                "jwt_secret",
                format!(
                    "PORTCULLIS_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes; \
                     generate one with `openssl rand -base64 48`, or unset it to use a generated key file"
                ),
            ));
        }
        let password_policy = PasswordPolicy::with_min_length(pick(
            args.password_min_length,
            file.password_min_length,
            PasswordPolicy::default().min_length(),
        ))
        .ok_or_else(|| {
            ConfigError::new(
                "password_min_length",
                format!(
                    "password_min_length must be between {MIN_PASSWORD_LENGTH_FLOOR} and {MAX_PASSWORD_LENGTH}"
                ),
            )
        })?;
        let argon2_policy = parse_argon2_policy(
            Argon2Policy {
                memory_kib: pick(
                    args.argon2_m_kib,
                    file.argon2_m_kib,
                    argon2_defaults.memory_kib,
                ),
                iterations: pick(args.argon2_t, file.argon2_t, argon2_defaults.iterations),
                parallelism: pick(args.argon2_p, file.argon2_p, argon2_defaults.parallelism),
            },
            pick(
                args.insecure_test_hashing,
                file.insecure_test_hashing,
                false,
            ),
        )?;
        let login_per_ip_per_min = at_least_one(
            "login_per_ip_per_min",
            pick(
                args.login_per_ip_per_min,
                file.login_per_ip_per_min,
                GovernorAttemptLimiter::DEFAULT_PER_IP_PER_MINUTE.get(),
            ),
        )?;
        let login_per_user_per_min = at_least_one(
            "login_per_user_per_min",
            pick(
                args.login_per_user_per_min,
                file.login_per_user_per_min,
                GovernorAttemptLimiter::DEFAULT_PER_USER_PER_MINUTE.get(),
            ),
        )?;
        let max_api_keys_per_user = at_least_one(
            "max_api_keys_per_user",
            pick(
                args.max_api_keys_per_user,
                file.max_api_keys_per_user,
                auth_defaults.max_api_keys_per_user,
            ),
        )?;
        let api_key_creations_per_user_per_min = at_least_one(
            "api_key_creations_per_user_per_min",
            pick(
                args.api_key_creations_per_user_per_min,
                file.api_key_creations_per_user_per_min,
                GovernorAttemptLimiter::DEFAULT_API_KEY_CREATIONS_PER_MINUTE.get(),
            ),
        )?;
        let max_sessions_per_user = at_least_one(
            "max_sessions_per_user",
            pick(
                args.max_sessions_per_user,
                file.max_sessions_per_user,
                auth_defaults.max_sessions_per_user,
            ),
        )?;
        let audit_retention = seconds_up_to(
            "audit_retention_days",
            u64::from(pick(
                args.audit_retention_days,
                file.audit_retention_days,
                DEFAULT_AUDIT_RETENTION_DAYS,
            )) * 86_400,
            u64::from(MAX_AUDIT_RETENTION_DAYS) * 86_400,
        )
        .map_err(|_| {
            ConfigError::new(
                "audit_retention_days",
                format!("audit_retention_days must be between 1 and {MAX_AUDIT_RETENTION_DAYS}"),
            )
        })?;
        // Bounded, so that no lifetime can overflow a timestamp: an
        // unbounded one was accepted here and then made every login panic.
        let access_token_ttl = seconds_up_to(
            "access_ttl_secs",
            pick(
                args.access_ttl_secs,
                file.access_ttl_secs,
                auth_defaults.access_token_ttl.as_secs(),
            ),
            MAX_ACCESS_TTL_SECS,
        )?;
        let session_ttl = seconds_up_to(
            "refresh_ttl_secs",
            pick(
                args.refresh_ttl_secs,
                file.refresh_ttl_secs,
                auth_defaults.session_ttl.as_secs(),
            ),
            MAX_SESSION_TTL_SECS,
        )?;
        let session_idle_timeout = seconds_up_to(
            "refresh_idle_secs",
            pick(
                args.refresh_idle_secs,
                file.refresh_idle_secs,
                auth_defaults.session_idle_timeout.as_secs(),
            ),
            MAX_SESSION_TTL_SECS,
        )?;
        let header_read_timeout = seconds_up_to(
            "header_read_timeout_secs",
            pick(
                args.header_read_timeout_secs,
                file.header_read_timeout_secs,
                ConnectionLimits::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
            ),
            MAX_TIMEOUT_SECS,
        )?;
        let body_read_timeout = seconds_up_to(
            "body_read_timeout_secs",
            pick(
                args.body_read_timeout_secs,
                file.body_read_timeout_secs,
                HttpOptions::DEFAULT_BODY_READ_TIMEOUT.as_secs(),
            ),
            MAX_TIMEOUT_SECS,
        )?;
        let idle_timeout = seconds_up_to(
            "idle_timeout_secs",
            pick(
                args.idle_timeout_secs,
                file.idle_timeout_secs,
                ConnectionLimits::DEFAULT_IDLE_TIMEOUT.as_secs(),
            ),
            MAX_TIMEOUT_SECS,
        )?;
        let http2_max_streams = pick(
            args.http2_max_streams,
            file.http2_max_streams,
            ConnectionLimits::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
        );
        if !(1..=MAX_HTTP2_STREAMS).contains(&http2_max_streams) {
            return Err(ConfigError::new(
                "http2_max_streams",
                format!("http2_max_streams must be between 1 and {MAX_HTTP2_STREAMS}"),
            ));
        }
        let max_connections = args
            .max_connections
            .or(file.max_connections)
            .map(|wanted| {
                NonZeroUsize::new(wanted).ok_or_else(|| {
                    ConfigError::new("max_connections", "max_connections must be greater than 0")
                })
            })
            .transpose()?;
        let cors_origins = args
            .cors_origins
            .as_deref()
            .map(split_list)
            .or(file.cors_origins)
            .unwrap_or_default();
        for origin in &cors_origins {
            check_cors_origin(origin)?;
        }
        let issuer = args.issuer.clone().or(file.issuer);
        let audience = pick(
            args.audience.clone(),
            file.audience,
            DEFAULT_TOKEN_NAME.to_owned(),
        );
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .map(|url| parse_public_url(&url))
            .transpose()?;
        let jwt_algorithm = match args.jwt_alg.clone().or(file.jwt_alg) {
            Some(name) => SigningAlgorithm::parse(&name).ok_or_else(|| {
                ConfigError::new(
                    "jwt_alg",
                    format!("jwt_alg: `{name}` is not EdDSA, ES256 or HS256"),
                )
            })?,
            // v1: a configured secret means HS256 with it.
            None if jwt_secret.is_some() => SigningAlgorithm::Hs256,
            None => SigningAlgorithm::EdDsa,
        };
        let key_publish_ahead = seconds_up_to(
            "key_publish_ahead_secs",
            pick(
                args.key_publish_ahead_secs,
                file.key_publish_ahead_secs,
                DEFAULT_KEY_PUBLISH_AHEAD_SECS,
            ),
            MAX_KEY_SECS,
        )?;
        let key_rotation = seconds_up_to(
            "key_rotation_secs",
            pick(
                args.key_rotation_secs,
                file.key_rotation_secs,
                DEFAULT_KEY_ROTATION_SECS,
            ),
            MAX_KEY_SECS,
        )?;
        let data_dir = pick(
            args.data_dir.clone(),
            file.data_dir,
            PathBuf::from(DEFAULT_DATA_DIR),
        );
        let database_max_connections = pick(
            args.database_max_connections,
            file.database_max_connections,
            DEFAULT_DATABASE_MAX_CONNECTIONS,
        );
        if !(1..=MAX_DATABASE_CONNECTIONS).contains(&database_max_connections) {
            return Err(ConfigError::new(
                "database_max_connections",
                format!(
                    "database_max_connections must be between 1 and {MAX_DATABASE_CONNECTIONS}"
                ),
            ));
        }
        let database_ca_file = args.database_ca_file.clone().or(file.database_ca_file);
        let database = match args.database_url.clone().or(file.database_url) {
            Some(url) => DatabaseLocation::parse_url(&url, database_ca_file.clone())?,
            None => DatabaseLocation::Sqlite(data_dir.join(SQLITE_FILE_NAME)),
        };
        let master_key_file = args
            .master_key_file
            .clone()
            .or(file.master_key_file)
            .unwrap_or_else(|| data_dir.join("master-key"));
        for (setting, value) in [
            ("issuer", issuer.as_deref().unwrap_or("-")),
            ("audience", audience.as_str()),
        ] {
            if value.is_empty() {
                return Err(ConfigError::new(
                    setting,
                    "issuer and audience must not be empty",
                ));
            }
        }
        let trusted_proxies = TrustedProxies::parse(
            &args
                .trusted_proxies
                .as_deref()
                .map(split_list)
                .or(file.trusted_proxies)
                .unwrap_or_default(),
        )
        .map_err(|e| ConfigError::new("trusted_proxies", format!("trusted_proxies: {e}")))?;
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(certificate_chain), Some(private_key)) => Some(TlsFiles {
                certificate_chain,
                private_key,
            }),
            (None, None) => None,
            // Named after the one that is missing.
            (Some(_), None) => return Err(tls_pair_error("tls_key")),
            (None, Some(_)) => return Err(tls_pair_error("tls_cert")),
        };
        Ok(Self {
            bind,
            metrics_bind,
            data_dir,
            database,
            database_max_connections,
            database_ca_file,
            jwt_secret,
            issuer,
            public_url,
            jwt_algorithm,
            key_publish_ahead,
            key_rotation,
            master_key_file,
            audience,
            access_token_ttl,
            session_ttl,
            session_idle_timeout,
            login_per_ip_per_min,
            login_per_user_per_min,
            api_key_creations_per_user_per_min,
            max_api_keys_per_user,
            max_sessions_per_user,
            audit_retention,
            password_policy,
            argon2_policy,
            trusted_proxies,
            cors_origins,
            tls,
            docs: pick(args.docs, file.docs, HttpOptions::default().docs_enabled),
            max_connections,
            header_read_timeout,
            body_read_timeout,
            idle_timeout,
            http2_max_streams,
            log: pick(args.log.clone(), file.log, DEFAULT_LOG_FILTER.to_owned()),
            log_format,
        })
    }

    /// What the domain's use-cases run with.
    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            access_token_ttl: self.access_token_ttl,
            session_ttl: self.session_ttl,
            session_idle_timeout: self.session_idle_timeout,
            password_policy: self.password_policy,
            max_sessions_per_user: self.max_sessions_per_user.get(),
            max_api_keys_per_user: self.max_api_keys_per_user.get(),
        }
    }

    /// What the HTTP layer runs with. `Strict-Transport-Security` is sent
    /// exactly when HTTPS is served.
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions {
            docs_enabled: self.docs,
            cors_origins: self.cors_origins.clone(),
            hsts: self.tls.is_some(),
            body_read_timeout: self.body_read_timeout,
            metrics: self.metrics_bind.is_some(),
        }
    }

    /// The SQLite database file: the one `database_url` names, or
    /// `portcullis.db` in the data directory (also when the store is
    /// PostgreSQL: then it is the file a `db copy` from SQLite reads).
    pub fn database_path(&self) -> PathBuf {
        match &self.database {
            DatabaseLocation::Sqlite(path) => path.clone(),
            DatabaseLocation::Postgres { .. } => self.data_dir.join(SQLITE_FILE_NAME),
        }
    }

    /// The generated signing-key file.
    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("jwt-signing-key")
    }

    /// The public URL, or the scheme and `address` the server listens on.
    pub fn public_url_for(&self, address: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{address}")
        })
    }

    /// The `iss` of tokens: the configured issuer, or the public URL.
    pub fn issuer_for(&self, address: SocketAddr) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| self.public_url_for(address))
    }
}

/// The TOML file: the same settings, snake_case keys, every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    metrics_bind: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_ca_file: Option<PathBuf>,
    database_max_connections: Option<u32>,
    jwt_secret: Option<String>,
    issuer: Option<String>,
    public_url: Option<String>,
    jwt_alg: Option<String>,
    key_publish_ahead_secs: Option<u64>,
    key_rotation_secs: Option<u64>,
    master_key_file: Option<PathBuf>,
    audience: Option<String>,
    access_ttl_secs: Option<u64>,
    refresh_ttl_secs: Option<u64>,
    refresh_idle_secs: Option<u64>,
    login_per_ip_per_min: Option<u32>,
    login_per_user_per_min: Option<u32>,
    max_api_keys_per_user: Option<u32>,
    api_key_creations_per_user_per_min: Option<u32>,
    max_sessions_per_user: Option<u32>,
    audit_retention_days: Option<u32>,
    password_min_length: Option<usize>,
    argon2_m_kib: Option<u32>,
    argon2_t: Option<u32>,
    argon2_p: Option<u32>,
    insecure_test_hashing: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    cors_origins: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    docs: Option<bool>,
    max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    http2_max_streams: Option<u32>,
    log: Option<String>,
    log_format: Option<String>,
}

/// A CORS origin must be exactly what a browser sends as `Origin`:
/// `scheme://host[:port]`, lower-case, no path (not even `/`), no wildcard.
/// Anything else would never match, or match more than meant.
fn check_cors_origin(origin: &str) -> Result<(), ConfigError> {
    let refuse = |why: &str| {
        ConfigError::new(
            "cors_origins",
            format!("cors_origins: `{origin}` {why}; write origins like https://app.example.com"),
        )
    };
    if origin == "*" {
        return Err(refuse(
            "allows every site; list the origins that may call Portcullis",
        ));
    }
    let url = url::Url::parse(origin).map_err(|_| refuse("is not an origin"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("must use http or https"));
    }
    let serialised = url.origin().ascii_serialization();
    if serialised != origin {
        return Err(ConfigError::new(
            "cors_origins",
            format!(
                "cors_origins: `{origin}` is not an origin as browsers send it \
                 (no path, no trailing `/`, lower-case, default port omitted); did you mean `{serialised}`?"
            ),
        ));
    }
    Ok(())
}

fn parse_log_format(text: String) -> Result<LogFormat, ConfigError> {
    match text.as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError::new(
            "log_format",
            format!("log_format: `{other}` is not `text` or `json`"),
        )),
    }
}

/// argon2 must accept the cost, and the memory cost must reach the secure
/// floor unless insecure test hashing was asked for; both rules are the
/// crypto crate's.
fn parse_argon2_policy(
    policy: Argon2Policy,
    insecure_test_hashing: bool,
) -> Result<Argon2Policy, ConfigError> {
    if let Err(error) = policy.validate(true) {
        return Err(ConfigError::new(
            argon2_setting_at_fault(policy),
            format!("argon2 parameters: {error}"),
        ));
    }
    if policy.memory_kib < Argon2Policy::MIN_SECURE_MEMORY_KIB && !insecure_test_hashing {
        return Err(ConfigError::new(
            "argon2_m_kib",
            format!(
                "argon2_m_kib must be at least {} \
                 (set PORTCULLIS_INSECURE_TEST_HASHING=1 only for tests)",
                Argon2Policy::MIN_SECURE_MEMORY_KIB
            ),
        ));
    }
    Ok(policy)
}

/// Which of the three argon2 settings an unusable policy is blamed on: the
/// iterations or the parallelism when that value alone makes the default
/// policy unusable, otherwise the memory cost (whose minimum depends on the
/// parallelism). argon2's own rules decide, through `validate`.
fn argon2_setting_at_fault(policy: Argon2Policy) -> &'static str {
    let defaults = Argon2Policy::default();
    let fails_alone = |changed: Argon2Policy| changed.validate(true).is_err();
    if fails_alone(Argon2Policy {
        iterations: policy.iterations,
        ..defaults
    }) {
        "argon2_t"
    } else if fails_alone(Argon2Policy {
        parallelism: policy.parallelism,
        ..defaults
    }) {
        "argon2_p"
    } else {
        "argon2_m_kib"
    }
}

/// How long the audit log keeps an event unless configured: a year, long
/// enough to answer "who logged in as alice last spring".
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 365;

/// The longest audit retention accepted (a hundred years): any longer
/// could not be subtracted from a timestamp.
pub const MAX_AUDIT_RETENTION_DAYS: u32 = 36_500;

fn at_least_one(setting: &'static str, value: u32) -> Result<NonZeroU32, ConfigError> {
    NonZeroU32::new(value)
        .ok_or_else(|| ConfigError::new(setting, format!("{setting} must be greater than 0")))
}

fn seconds_up_to(setting: &'static str, seconds: u64, max: u64) -> Result<Duration, ConfigError> {
    if (1..=max).contains(&seconds) {
        Ok(Duration::from_secs(seconds))
    } else {
        Err(ConfigError::new(
            setting,
            format!("{setting} must be between 1 and {max}"),
        ))
    }
}

/// The public URL as every document builds on it: `http` or `https`, a
/// host, no query or fragment, no trailing `/`.
fn parse_public_url(text: &str) -> Result<String, ConfigError> {
    let refuse = |why: &str| {
        ConfigError::new(
            "public_url",
            format!("public_url: `{text}` {why}; write it like https://auth.example.com"),
        )
    };
    let url = url::Url::parse(text).map_err(|_| refuse("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("must use http or https"));
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("must be a base URL without query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not carry credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn tls_pair_error(missing: &'static str) -> ConfigError {
    ConfigError::new(missing, "tls_cert and tls_key must be given together")
}

fn pick<T>(flag_or_env: Option<T>, file: Option<T>, default: T) -> T {
    flag_or_env.or(file).unwrap_or(default)
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config", format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| ConfigError::new("config", format!("{}: {}", path.display(), e.message())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let settings = Settings::resolve(&SettingsArgs::default()).expect("defaults are valid");
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(settings.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.access_token_ttl, Duration::from_secs(900));
        assert_eq!(settings.session_ttl, Duration::from_secs(2_592_000));
        assert_eq!(settings.session_idle_timeout, Duration::from_secs(604_800));
        assert_eq!(settings.password_policy.min_length(), 15);
        assert_eq!(settings.max_api_keys_per_user.get(), 100);
        assert_eq!(settings.api_key_creations_per_user_per_min.get(), 10);
        assert_eq!(settings.max_sessions_per_user.get(), 100);
        assert_eq!(
            (
                settings.argon2_policy.memory_kib,
                settings.argon2_policy.iterations,
                settings.argon2_policy.parallelism
            ),
            (19_456, 2, 1)
        );
        assert!(settings.docs);
        assert_eq!(settings.log_format, LogFormat::Text);
        // The rest of the contract's table, which the crates that own these
        // defaults must keep.
        // v2: the issuer is the public URL, itself the bound address.
        assert_eq!(settings.issuer, None);
        assert_eq!(settings.public_url, None);
        let address = "127.0.0.1:8000".parse().expect("address");
        assert_eq!(settings.issuer_for(address), "http://127.0.0.1:8000");
        assert_eq!(settings.audience, "portcullis");
        assert_eq!(settings.jwt_algorithm, SigningAlgorithm::EdDsa);
        assert_eq!(settings.key_publish_ahead, Duration::from_secs(3600));
        assert_eq!(settings.key_rotation, Duration::from_secs(2_592_000));
        assert_eq!(
            settings.master_key_file,
            PathBuf::from("./data").join("master-key")
        );
        assert_eq!(settings.login_per_ip_per_min.get(), 10);
        assert_eq!(settings.login_per_user_per_min.get(), 10);
        assert!(settings.jwt_secret.is_none());
        assert!(settings.tls.is_none());
        assert!(settings.cors_origins.is_empty());
        assert_eq!(settings.max_connections, None);
        assert_eq!(settings.header_read_timeout, Duration::from_secs(10));
        assert_eq!(settings.body_read_timeout, Duration::from_secs(10));
        assert_eq!(settings.idle_timeout, Duration::from_secs(60));
        assert_eq!(settings.http2_max_streams, 32);
        assert_eq!(settings.log, "info");
    }

    #[test]
    fn a_jwt_secret_without_an_algorithm_means_hs256_as_in_v1() {
        let secret = Some("s".repeat(32));
        let settings = Settings::resolve(&SettingsArgs {
            jwt_secret: secret.clone(),
            ..SettingsArgs::default()
        })
        .expect("valid");
        assert_eq!(settings.jwt_algorithm, SigningAlgorithm::Hs256);
        let settings = Settings::resolve(&SettingsArgs {
            jwt_secret: secret,
            jwt_alg: Some("ES256".to_owned()),
            ..SettingsArgs::default()
        })
        .expect("valid");
        assert_eq!(settings.jwt_algorithm, SigningAlgorithm::Es256);
    }

    #[test]
    fn key_settings_are_checked_and_name_their_variable() {
        for (args, setting) in [
            (
                SettingsArgs {
                    jwt_alg: Some("RS256".to_owned()),
                    ..SettingsArgs::default()
                },
                "jwt_alg",
            ),
            (
                SettingsArgs {
                    jwt_alg: Some("eddsa".to_owned()),
                    ..SettingsArgs::default()
                },
                "jwt_alg",
            ),
            (
                SettingsArgs {
                    key_publish_ahead_secs: Some(0),
                    ..SettingsArgs::default()
                },
                "key_publish_ahead_secs",
            ),
            (
                SettingsArgs {
                    key_rotation_secs: Some(MAX_KEY_SECS + 1),
                    ..SettingsArgs::default()
                },
                "key_rotation_secs",
            ),
        ] {
            let error = Settings::resolve(&args).expect_err("refused");
            assert_eq!(error.setting(), setting);
        }
    }

    #[test]
    fn the_public_url_is_a_base_url_and_becomes_the_issuer() {
        let settings = Settings::resolve(&SettingsArgs {
            public_url: Some("https://auth.example.com/".to_owned()),
            ..SettingsArgs::default()
        })
        .expect("valid");
        let address = "127.0.0.1:9".parse().expect("address");
        assert_eq!(settings.public_url_for(address), "https://auth.example.com");
        assert_eq!(settings.issuer_for(address), "https://auth.example.com");
        for bad in [
            "auth.example.com",
            "ftp://auth.example.com",
            "https://auth.example.com/?a=1",
            "https://auth.example.com/#top",
            "https://user:pw@auth.example.com",
        ] {
            let error = Settings::resolve(&SettingsArgs {
                public_url: Some(bad.to_owned()),
                ..SettingsArgs::default()
            })
            .expect_err(bad);
            assert_eq!(error.setting(), "public_url", "{bad}");
            assert_eq!(error.environment_variable(), "PORTCULLIS_PUBLIC_URL");
        }
    }

    #[test]
    fn a_flag_beats_the_file_which_beats_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("portcullis.toml");
        std::fs::write(&file, "issuer = \"from-file\"\naudience = \"file-aud\"\n").expect("write");
        let args = SettingsArgs {
            config: Some(file),
            issuer: Some("from-flag".to_owned()),
            ..SettingsArgs::default()
        };
        let settings = Settings::resolve(&args).expect("valid");
        assert_eq!(settings.issuer.as_deref(), Some("from-flag"));
        assert_eq!(settings.audience, "file-aud");
        assert_eq!(settings.access_token_ttl, Duration::from_secs(900));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("portcullis.toml");
        std::fs::write(&file, "isuer = \"typo\"\n").expect("write");
        let args = SettingsArgs {
            config: Some(file),
            ..SettingsArgs::default()
        };
        assert!(Settings::resolve(&args).is_err());
    }

    #[test]
    fn unsafe_values_are_refused() {
        let short_secret = SettingsArgs {
            jwt_secret: Some("x".repeat(31)),
            ..SettingsArgs::default()
        };
        assert!(Settings::resolve(&short_secret).is_err());
        let weak_hash = SettingsArgs {
            argon2_m_kib: Some(1024),
            ..SettingsArgs::default()
        };
        assert!(Settings::resolve(&weak_hash).is_err());
        let allowed_for_tests = SettingsArgs {
            argon2_m_kib: Some(1024),
            insecure_test_hashing: Some(true),
            ..SettingsArgs::default()
        };
        assert!(Settings::resolve(&allowed_for_tests).is_ok());
        let zero_iterations = SettingsArgs {
            argon2_t: Some(0),
            ..SettingsArgs::default()
        };
        assert!(Settings::resolve(&zero_iterations).is_err());
        let short_minimum = SettingsArgs {
            password_min_length: Some(7),
            ..SettingsArgs::default()
        };
        assert!(Settings::resolve(&short_minimum).is_err());
    }

    #[test]
    fn lifetimes_and_timeouts_outside_their_bounds_are_refused() {
        for args in [
            SettingsArgs {
                access_ttl_secs: Some(MAX_ACCESS_TTL_SECS + 1),
                ..SettingsArgs::default()
            },
            SettingsArgs {
                refresh_ttl_secs: Some(u64::MAX),
                ..SettingsArgs::default()
            },
            SettingsArgs {
                refresh_idle_secs: Some(0),
                ..SettingsArgs::default()
            },
            SettingsArgs {
                header_read_timeout_secs: Some(0),
                ..SettingsArgs::default()
            },
            SettingsArgs {
                http2_max_streams: Some(MAX_HTTP2_STREAMS + 1),
                ..SettingsArgs::default()
            },
            SettingsArgs {
                max_connections: Some(0),
                ..SettingsArgs::default()
            },
        ] {
            assert!(Settings::resolve(&args).is_err(), "{args:?}");
        }
        let longest = SettingsArgs {
            access_ttl_secs: Some(MAX_ACCESS_TTL_SECS),
            refresh_ttl_secs: Some(MAX_SESSION_TTL_SECS),
            ..SettingsArgs::default()
        };
        assert!(Settings::resolve(&longest).is_ok());
    }

    #[test]
    fn cors_origins_must_be_exact_browser_origins() {
        for bad in [
            "*",
            "null",
            "https://app.example.com/",
            "https://app.example.com/path",
            "HTTPS://App.Example.com",
            "https://app.example.com:443",
            "ftp://app.example.com",
            "app.example.com",
        ] {
            let args = SettingsArgs {
                cors_origins: Some(bad.to_owned()),
                ..SettingsArgs::default()
            };
            assert!(Settings::resolve(&args).is_err(), "{bad}");
        }
        let good = SettingsArgs {
            cors_origins: Some("https://app.example.com, http://localhost:3000".to_owned()),
            ..SettingsArgs::default()
        };
        assert!(Settings::resolve(&good).is_ok());
    }

    #[test]
    fn every_refused_value_names_its_setting_and_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let typo = dir.path().join("portcullis.toml");
        std::fs::write(&typo, "isuer = \"typo\"\n").expect("write");
        let cases = [
            (
                SettingsArgs {
                    config: Some(typo),
                    ..SettingsArgs::default()
                },
                "config",
            ),
            (
                SettingsArgs {
                    bind: Some("localhost".to_owned()),
                    ..SettingsArgs::default()
                },
                "bind",
            ),
            (
                SettingsArgs {
                    metrics_bind: Some("localhost:9100".to_owned()),
                    ..SettingsArgs::default()
                },
                "metrics_bind",
            ),
            (
                SettingsArgs {
                    jwt_secret: Some("x".repeat(31)),
                    ..SettingsArgs::default()
                },
                "jwt_secret",
            ),
            (
                SettingsArgs {
                    password_min_length: Some(257),
                    ..SettingsArgs::default()
                },
                "password_min_length",
            ),
            (
                SettingsArgs {
                    argon2_m_kib: Some(1024),
                    ..SettingsArgs::default()
                },
                "argon2_m_kib",
            ),
            (
                SettingsArgs {
                    argon2_t: Some(0),
                    ..SettingsArgs::default()
                },
                "argon2_t",
            ),
            (
                SettingsArgs {
                    argon2_p: Some(0),
                    ..SettingsArgs::default()
                },
                "argon2_p",
            ),
            (
                SettingsArgs {
                    login_per_user_per_min: Some(0),
                    ..SettingsArgs::default()
                },
                "login_per_user_per_min",
            ),
            (
                SettingsArgs {
                    max_sessions_per_user: Some(0),
                    ..SettingsArgs::default()
                },
                "max_sessions_per_user",
            ),
            (
                SettingsArgs {
                    refresh_idle_secs: Some(0),
                    ..SettingsArgs::default()
                },
                "refresh_idle_secs",
            ),
            (
                SettingsArgs {
                    idle_timeout_secs: Some(MAX_TIMEOUT_SECS + 1),
                    ..SettingsArgs::default()
                },
                "idle_timeout_secs",
            ),
            (
                SettingsArgs {
                    max_connections: Some(0),
                    ..SettingsArgs::default()
                },
                "max_connections",
            ),
            (
                SettingsArgs {
                    cors_origins: Some("*".to_owned()),
                    ..SettingsArgs::default()
                },
                "cors_origins",
            ),
            (
                SettingsArgs {
                    audience: Some(String::new()),
                    ..SettingsArgs::default()
                },
                "audience",
            ),
            (
                SettingsArgs {
                    trusted_proxies: Some("proxy.example.com".to_owned()),
                    ..SettingsArgs::default()
                },
                "trusted_proxies",
            ),
            (
                SettingsArgs {
                    tls_cert: Some(PathBuf::from("cert.pem")),
                    ..SettingsArgs::default()
                },
                "tls_key",
            ),
            (
                SettingsArgs {
                    log_format: Some("xml".to_owned()),
                    ..SettingsArgs::default()
                },
                "log_format",
            ),
        ];
        for (args, setting) in cases {
            let error = Settings::resolve(&args).expect_err(setting);
            assert_eq!(error.setting(), setting, "{error}");
            assert_eq!(
                error.environment_variable(),
                format!("PORTCULLIS_{}", setting.to_uppercase())
            );
            assert!(
                error.to_string().starts_with("configuration error: ")
                    && error.to_string().ends_with(error.message()),
                "{error}"
            );
        }
    }

    #[test]
    fn the_domain_and_the_http_layer_get_the_resolved_values() {
        let args = SettingsArgs {
            access_ttl_secs: Some(600),
            refresh_ttl_secs: Some(86_400),
            refresh_idle_secs: Some(3_600),
            password_min_length: Some(20),
            max_sessions_per_user: Some(3),
            max_api_keys_per_user: Some(4),
            docs: Some(false),
            cors_origins: Some("https://app.example.com".to_owned()),
            body_read_timeout_secs: Some(5),
            tls_cert: Some(PathBuf::from("cert.pem")),
            tls_key: Some(PathBuf::from("key.pem")),
            ..SettingsArgs::default()
        };
        let settings = Settings::resolve(&args).expect("valid");
        let auth = settings.auth_settings();
        assert_eq!(auth.access_token_ttl, Duration::from_secs(600));
        assert_eq!(auth.session_ttl, Duration::from_secs(86_400));
        assert_eq!(auth.session_idle_timeout, Duration::from_secs(3_600));
        assert_eq!(auth.password_policy.min_length(), 20);
        assert_eq!(auth.max_sessions_per_user, 3);
        assert_eq!(auth.max_api_keys_per_user, 4);
        let http = settings.http_options();
        assert!(!http.docs_enabled);
        assert_eq!(http.cors_origins, ["https://app.example.com"]);
        assert!(http.hsts, "HTTPS is configured");
        assert_eq!(http.body_read_timeout, Duration::from_secs(5));
        assert_eq!(
            settings.tls,
            Some(TlsFiles {
                certificate_chain: PathBuf::from("cert.pem"),
                private_key: PathBuf::from("key.pem"),
            })
        );
        let plain = Settings::resolve(&SettingsArgs::default()).expect("valid");
        assert!(!plain.http_options().hsts, "no HSTS over plain HTTP");
    }
}

#[cfg(test)]
mod documentation_tests {
    use std::collections::BTreeSet;

    use clap::{Args, Command, FromArgMatches};

    use super::{Settings, SettingsArgs};

    /// `(flag, env)` of every setting the binary accepts, read from clap.
    fn settings_in_code() -> BTreeSet<(String, String)> {
        SettingsArgs::augment_args(Command::new("portcullis"))
            .get_arguments()
            .filter(|arg| arg.get_id() != "config")
            .map(|arg| {
                (
                    format!("--{}", arg.get_long().unwrap_or_default()),
                    arg.get_env()
                        .map(|env| env.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    fn code_spans(cell: &str) -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// The settings table of docs/configuration.md, one row of cells per
    /// line.
    fn documented_rows() -> Vec<Vec<String>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let text = std::fs::read_to_string(path).expect("docs/configuration.md exists");
        text.lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| line.split(" | ").map(str::to_owned).collect())
            .collect()
    }

    /// `(flag, env)` pairs of the settings table in docs/configuration.md.
    /// A row may hold two settings (`A` / `B`), paired in order.
    fn settings_in_docs() -> BTreeSet<(String, String)> {
        documented_rows()
            .iter()
            .flat_map(|cells| {
                let envs = code_spans(cells.get(1).map(String::as_str).unwrap_or_default());
                let flags = code_spans(cells.get(2).map(String::as_str).unwrap_or_default());
                flags.into_iter().zip(envs).collect::<Vec<_>>()
            })
            .collect()
    }

    /// The settings resolved from these command-line words, through clap as
    /// the binary parses them (so an inherited `PORTCULLIS_*` variable
    /// counts on both sides of a comparison).
    fn resolve_flags(words: &[&str]) -> String {
        let command = SettingsArgs::augment_args(Command::new("portcullis"));
        let matches = command
            .try_get_matches_from(std::iter::once("portcullis").chain(words.iter().copied()))
            .unwrap_or_else(|e| panic!("{words:?} parses: {e}"));
        let args = SettingsArgs::from_arg_matches(&matches).expect("the matches are settings");
        let settings =
            Settings::resolve(&args).unwrap_or_else(|e| panic!("{words:?} is valid: {e}"));
        format!("{settings:?}")
    }

    /// Fails unless giving `flag` the value a document states as its default
    /// resolves to exactly the settings of giving nothing.
    #[track_caller]
    fn assert_stated_default_is_applied(flag: &str, stated: &str, source: &str) {
        assert_eq!(
            resolve_flags(&[flag, stated]),
            resolve_flags(&[]),
            "{source} states `{stated}` as the default of {flag}, but it is not"
        );
    }

    #[test]
    fn every_default_stated_in_the_help_is_the_default_applied() {
        let mut checked = 0;
        for arg in SettingsArgs::augment_args(Command::new("portcullis")).get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let Some(stated) = help
                .split_once("[default: ")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(stated, _)| stated)
            else {
                continue;
            };
            // A description rather than a value: "generated into the data
            // directory", "none", "4096, or fewer when ...".
            if stated.contains(' ') || stated == "none" {
                continue;
            }
            let flag = format!("--{}", arg.get_long().expect("settings are long flags"));
            assert_stated_default_is_applied(&flag, stated, "--help");
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} defaults were checked");
    }

    #[test]
    fn every_default_in_the_configuration_document_is_the_default_applied() {
        let mut checked = 0;
        for cells in documented_rows() {
            let flags = code_spans(cells.get(2).map(String::as_str).unwrap_or_default());
            let stated = code_spans(cells.get(3).map(String::as_str).unwrap_or_default());
            // One setting whose default is one value; "generated", "none"
            // and the descriptions have no code span.
            if let ([flag], [stated]) = (flags.as_slice(), stated.as_slice()) {
                assert_stated_default_is_applied(flag, stated, "docs/configuration.md");
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} defaults were checked");
    }

    #[test]
    fn the_configuration_document_lists_exactly_the_settings_in_the_code() {
        let code = settings_in_code();
        let docs = settings_in_docs();
        let undocumented: Vec<_> = code.difference(&docs).collect();
        let stale: Vec<_> = docs.difference(&code).collect();
        assert!(
            undocumented.is_empty() && stale.is_empty(),
            "undocumented settings: {undocumented:?}; documented but absent: {stale:?}"
        );
        assert!(
            code.len() >= 20,
            "the clap introspection found {}",
            code.len()
        );
    }
}
