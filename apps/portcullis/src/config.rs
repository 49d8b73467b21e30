//! Settings: flag beats environment beats TOML file beats default.
//!
//! clap merges flags and `PORTCULLIS_*` variables (its `env` feature); the
//! file fills what both left unset; [`Settings::resolve`] applies defaults and
//! refuses unsafe values before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use clap::builder::BoolishValueParser;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The smallest HS256 key accepted, in bytes (RFC 7518 §3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// The smallest argon2 memory cost accepted without the insecure-test switch.
pub const MIN_SECURE_ARGON2_M_KIB: u32 = 7168;
/// The longest access-token lifetime accepted: a day. RFC 9068 tokens are
/// meant to be short-lived; longer would also outlast most revocation needs.
pub const MAX_ACCESS_TTL_SECS: u64 = 86_400;
/// The longest session lifetime (absolute or idle) accepted: ten years.
pub const MAX_SESSION_TTL_SECS: u64 = 315_360_000;
/// The longest connection timeout accepted, in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 3_600;
/// The most concurrent streams one HTTP/2 connection may be allowed.
pub const MAX_HTTP2_STREAMS: u32 = 1_000;

/// Settings that can be given as flags or environment variables.
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// TOML file with settings (keys as in docs/configuration.md).
    #[arg(long, env = "PORTCULLIS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Listen address; port 0 picks a free port [default: 127.0.0.1:8000].
    #[arg(long, env = "PORTCULLIS_BIND", global = true)]
    pub bind: Option<String>,
    /// Directory for the SQLite database and the generated key [default: ./data].
    #[arg(long, env = "PORTCULLIS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// HS256 signing key, at least 32 bytes [default: generated into the data directory].
    #[arg(
        long,
        env = "PORTCULLIS_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// `iss` of issued tokens, checked on every request [default: portcullis].
    #[arg(long, env = "PORTCULLIS_ISSUER", global = true)]
    pub issuer: Option<String>,
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

/// The TOML file: the same settings, snake_case keys, every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    jwt_secret: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    access_ttl_secs: Option<u64>,
    refresh_ttl_secs: Option<u64>,
    refresh_idle_secs: Option<u64>,
    login_per_ip_per_min: Option<u32>,
    login_per_user_per_min: Option<u32>,
    max_api_keys_per_user: Option<u32>,
    api_key_creations_per_user_per_min: Option<u32>,
    max_sessions_per_user: Option<u32>,
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting, resolved and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub bind: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Explicit signing key; `None` means the generated key file.
    pub jwt_secret: Option<SecretString>,
    /// `iss` of tokens.
    pub issuer: String,
    /// `aud` of tokens.
    pub audience: String,
    /// Access-token lifetime, seconds.
    pub access_ttl_secs: u64,
    /// Absolute session lifetime, seconds.
    pub refresh_ttl_secs: u64,
    /// Session idle timeout, seconds.
    pub refresh_idle_secs: u64,
    /// Credential checks per client IP per minute.
    pub login_per_ip_per_min: u32,
    /// Credential checks per username per minute.
    pub login_per_user_per_min: u32,
    /// Live API keys per user.
    pub max_api_keys_per_user: u32,
    /// API-key creations per user per minute.
    pub api_key_creations_per_user_per_min: u32,
    /// Active sessions per user.
    pub max_sessions_per_user: u32,
    /// Minimum password length.
    pub password_min_length: usize,
    /// argon2id memory cost, KiB.
    pub argon2_m_kib: u32,
    /// argon2id iterations.
    pub argon2_t: u32,
    /// argon2id parallelism.
    pub argon2_p: u32,
    /// Whether argon2 costs below the secure floor are allowed.
    pub insecure_test_hashing: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Allowed CORS origins.
    pub cors_origins: Vec<String>,
    /// TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Serve the documents.
    pub docs: bool,
    /// Connections served at once; `None`: as many as the open-file limit
    /// allows, at most [`crate::DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: Option<usize>,
    /// Time allowed for a request's headers, seconds.
    pub header_read_timeout_secs: u64,
    /// Time allowed for a request's body, seconds.
    pub body_read_timeout_secs: u64,
    /// Idle connection timeout, seconds.
    pub idle_timeout_secs: u64,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_streams: u32,
    /// Tracing filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
}

/// A setting that cannot be used. The binary exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Resolves flags/env over the file over the defaults, then checks the result.
    pub fn resolve(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let bind_text = pick(args.bind.clone(), file.bind, "127.0.0.1:8000".to_owned());
        let bind = bind_text.parse().map_err(|_| {
            ConfigError(format!(
                "bind: `{bind_text}` is not an address like 127.0.0.1:8000"
            ))
        })?;
        let log_format =
            match pick(args.log_format.clone(), file.log_format, "text".to_owned()).as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError(format!(
                        "log_format: `{other}` is not `text` or `json`"
                    )));
                }
            };
        let settings = Self {
            bind,
            data_dir: pick(
                args.data_dir.clone(),
                file.data_dir,
                PathBuf::from("./data"),
            ),
            jwt_secret: args
                .jwt_secret
                .clone()
                .or(file.jwt_secret)
                .map(SecretString::from),
            issuer: pick(args.issuer.clone(), file.issuer, "portcullis".to_owned()),
            audience: pick(
                args.audience.clone(),
                file.audience,
                "portcullis".to_owned(),
            ),
            access_ttl_secs: pick(args.access_ttl_secs, file.access_ttl_secs, 900),
            refresh_ttl_secs: pick(args.refresh_ttl_secs, file.refresh_ttl_secs, 2_592_000),
            refresh_idle_secs: pick(args.refresh_idle_secs, file.refresh_idle_secs, 604_800),
            login_per_ip_per_min: pick(args.login_per_ip_per_min, file.login_per_ip_per_min, 10),
            login_per_user_per_min: pick(
                args.login_per_user_per_min,
                file.login_per_user_per_min,
                10,
            ),
            max_api_keys_per_user: pick(
                args.max_api_keys_per_user,
                file.max_api_keys_per_user,
                100,
            ),
            api_key_creations_per_user_per_min: pick(
                args.api_key_creations_per_user_per_min,
                file.api_key_creations_per_user_per_min,
                10,
            ),
            max_sessions_per_user: pick(
                args.max_sessions_per_user,
                file.max_sessions_per_user,
                100,
            ),
            password_min_length: pick(args.password_min_length, file.password_min_length, 15),
            argon2_m_kib: pick(args.argon2_m_kib, file.argon2_m_kib, 19_456),
            argon2_t: pick(args.argon2_t, file.argon2_t, 2),
            argon2_p: pick(args.argon2_p, file.argon2_p, 1),
            insecure_test_hashing: pick(
                args.insecure_test_hashing,
                file.insecure_test_hashing,
                false,
            ),
            trusted_proxies: args
                .trusted_proxies
                .as_deref()
                .map(split_list)
                .or(file.trusted_proxies)
                .unwrap_or_default(),
            cors_origins: args
                .cors_origins
                .as_deref()
                .map(split_list)
                .or(file.cors_origins)
                .unwrap_or_default(),
            tls_cert: args.tls_cert.clone().or(file.tls_cert),
            tls_key: args.tls_key.clone().or(file.tls_key),
            docs: pick(args.docs, file.docs, true),
            max_connections: args.max_connections.or(file.max_connections),
            header_read_timeout_secs: pick(
                args.header_read_timeout_secs,
                file.header_read_timeout_secs,
                10,
            ),
            body_read_timeout_secs: pick(
                args.body_read_timeout_secs,
                file.body_read_timeout_secs,
                10,
            ),
            idle_timeout_secs: pick(args.idle_timeout_secs, file.idle_timeout_secs, 60),
            http2_max_streams: pick(args.http2_max_streams, file.http2_max_streams, 32),
            log: pick(args.log.clone(), file.log, "info".to_owned()),
            log_format,
        };
        settings.check()?;
        Ok(settings)
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("portcullis.db")
    }

    /// The generated signing-key file.
    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("jwt-signing-key")
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().len() < MIN_JWT_SECRET_BYTES
        {
            return Err(ConfigError(format!(
                "PORTCULLIS_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes; \
                 generate one with `openssl rand -base64 48`, or unset it to use a generated key file"
            )));
        }
        if self.password_min_length < 8 || self.password_min_length > 256 {
            return Err(ConfigError(
                "password_min_length must be between 8 and 256".to_owned(),
            ));
        }
        portcullis_crypto::Argon2Policy {
            memory_kib: self.argon2_m_kib,
            iterations: self.argon2_t,
            parallelism: self.argon2_p,
        }
        .validate(true)
        .map_err(|e| ConfigError(format!("argon2 parameters: {e}")))?;
        if self.argon2_m_kib < MIN_SECURE_ARGON2_M_KIB && !self.insecure_test_hashing {
            return Err(ConfigError(format!(
                "argon2_m_kib must be at least {MIN_SECURE_ARGON2_M_KIB} \
                 (set PORTCULLIS_INSECURE_TEST_HASHING=1 only for tests)"
            )));
        }
        for (name, value) in [
            ("login_per_ip_per_min", u64::from(self.login_per_ip_per_min)),
            (
                "login_per_user_per_min",
                u64::from(self.login_per_user_per_min),
            ),
            (
                "max_api_keys_per_user",
                u64::from(self.max_api_keys_per_user),
            ),
            (
                "api_key_creations_per_user_per_min",
                u64::from(self.api_key_creations_per_user_per_min),
            ),
            (
                "max_sessions_per_user",
                u64::from(self.max_sessions_per_user),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be greater than 0")));
            }
        }
        // Bounded, so that no lifetime can overflow a timestamp: an
        // unbounded one was accepted here and then made every login panic.
        for (name, value, max) in [
            ("access_ttl_secs", self.access_ttl_secs, MAX_ACCESS_TTL_SECS),
            (
                "refresh_ttl_secs",
                self.refresh_ttl_secs,
                MAX_SESSION_TTL_SECS,
            ),
            (
                "refresh_idle_secs",
                self.refresh_idle_secs,
                MAX_SESSION_TTL_SECS,
            ),
            (
                "header_read_timeout_secs",
                self.header_read_timeout_secs,
                MAX_TIMEOUT_SECS,
            ),
            (
                "body_read_timeout_secs",
                self.body_read_timeout_secs,
                MAX_TIMEOUT_SECS,
            ),
            (
                "idle_timeout_secs",
                self.idle_timeout_secs,
                MAX_TIMEOUT_SECS,
            ),
            (
                "http2_max_streams",
                u64::from(self.http2_max_streams),
                u64::from(MAX_HTTP2_STREAMS),
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConfigError(format!("{name} must be between 1 and {max}")));
            }
        }
        if self.max_connections == Some(0) {
            return Err(ConfigError(
                "max_connections must be greater than 0".to_owned(),
            ));
        }
        for origin in &self.cors_origins {
            check_cors_origin(origin)?;
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(ConfigError(
                "issuer and audience must not be empty".to_owned(),
            ));
        }
        portcullis_http::client_ip::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError(format!("trusted_proxies: {e}")))?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError(
                "tls_cert and tls_key must be given together".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A CORS origin must be exactly what a browser sends as `Origin`:
/// `scheme://host[:port]`, lower-case, no path (not even `/`), no wildcard.
/// Anything else would never match, or match more than meant.
fn check_cors_origin(origin: &str) -> Result<(), ConfigError> {
    let refuse = |why: &str| {
        ConfigError(format!(
            "cors_origins: `{origin}` {why}; write origins like https://app.example.com"
        ))
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
        return Err(ConfigError(format!(
            "cors_origins: `{origin}` is not an origin as browsers send it \
             (no path, no trailing `/`, lower-case, default port omitted); did you mean `{serialised}`?"
        )));
    }
    Ok(())
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
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.message())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let settings = Settings::resolve(&SettingsArgs::default()).expect("defaults are valid");
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(settings.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.access_ttl_secs, 900);
        assert_eq!(settings.refresh_ttl_secs, 2_592_000);
        assert_eq!(settings.refresh_idle_secs, 604_800);
        assert_eq!(settings.password_min_length, 15);
        assert_eq!(settings.max_api_keys_per_user, 100);
        assert_eq!(settings.api_key_creations_per_user_per_min, 10);
        assert_eq!(settings.max_sessions_per_user, 100);
        assert_eq!(
            (settings.argon2_m_kib, settings.argon2_t, settings.argon2_p),
            (19_456, 2, 1)
        );
        assert!(settings.docs);
        assert_eq!(settings.log_format, LogFormat::Text);
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
        assert_eq!(settings.issuer, "from-flag");
        assert_eq!(settings.audience, "file-aud");
        assert_eq!(settings.access_ttl_secs, 900);
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
}

#[cfg(test)]
mod documentation_tests {
    use std::collections::BTreeSet;

    use clap::{Args, Command};

    use super::SettingsArgs;

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

    /// `(flag, env)` pairs of the settings table in docs/configuration.md.
    /// A row may hold two settings (`A` / `B`), paired in order.
    fn settings_in_docs() -> BTreeSet<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let text = std::fs::read_to_string(path).expect("docs/configuration.md exists");
        let code_spans = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        text.lines()
            .filter(|line| line.starts_with("| `"))
            .flat_map(|line| {
                let cells: Vec<&str> = line.split(" | ").collect();
                let envs = code_spans(cells.get(1).copied().unwrap_or_default());
                let flags = code_spans(cells.get(2).copied().unwrap_or_default());
                flags.into_iter().zip(envs).collect::<Vec<_>>()
            })
            .collect()
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
