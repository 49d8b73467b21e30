//! Test support for the black-box tests: start the real application on port 0
//! with a fresh temporary data directory and talk HTTP to it.

#![allow(
    clippy::expect_used,
    reason = "test support: a set-up that fails must fail the test at once, saying what failed"
)]

pub mod cluster;
pub mod private_postgres;

use std::net::SocketAddr;
use std::path::PathBuf;

use portcullis::{Application, Settings, SettingsArgs};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod tcp_proxy;
pub use tcp_proxy::TcpProxy;

/// The signing key the test apps use, so tests can mint their own tokens.
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

/// A password that satisfies the default policy for any test username.
pub const GOOD_PASSWORD: &str = "correct horse battery staple";

/// A running application.
pub struct TestApp {
    /// Base URL, e.g. `http://127.0.0.1:54321`.
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The metrics listener's address, when `metrics_bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// Settings the app runs with.
    pub settings: Settings,
    /// HTTP client.
    pub client: Client,
    data_dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test app in `data_dir`: port 0, a known secret, the
/// cheapest argon2 parameters (explicitly marked insecure), and login and
/// API-key creation limits high enough that only tests about rate limiting
/// meet them (every test client is 127.0.0.1).
pub fn test_settings(data_dir: PathBuf) -> Settings {
    Settings::resolve(&test_args(data_dir)).expect("test settings are valid")
}

/// The [`SettingsArgs`] behind [`test_settings`], for tests that vary them.
pub fn test_args(data_dir: PathBuf) -> SettingsArgs {
    SettingsArgs {
        bind: Some("127.0.0.1:0".to_owned()),
        data_dir: Some(data_dir),
        jwt_secret: Some(TEST_JWT_SECRET.to_owned()),
        argon2_m_kib: Some(8),
        argon2_t: Some(1),
        argon2_p: Some(1),
        insecure_test_hashing: Some(true),
        login_per_ip_per_min: Some(100_000),
        login_per_user_per_min: Some(100_000),
        api_key_creations_per_user_per_min: Some(100_000),
        ..SettingsArgs::default()
    }
}

impl TestApp {
    /// Starts an app with [`test_settings`] in a fresh temporary directory.
    pub async fn spawn() -> Self {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let settings = test_settings(data_dir.path().join("data"));
        Self::spawn_with(data_dir, settings).await
    }

    /// Starts an app with the given settings; `data_dir` is kept alive with it.
    pub async fn spawn_with(data_dir: TempDir, settings: Settings) -> Self {
        let application = Application::build(&settings)
            .await
            .expect("application starts");
        let addr = application.local_addr();
        let metrics_addr = application.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            addr,
            metrics_addr,
            settings,
            client: Client::new(),
            data_dir,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and starts a new one on the same data
    /// directory (and a new port). The public URL, and with it the issuer,
    /// stays the first server's, as a deployment's does across restarts.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// [`restart`](Self::restart), with settings changed by `change` (an
    /// upgrade, another algorithm).
    pub async fn restart_with(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        self.shutdown().await;
        let mut settings = self.settings.clone();
        settings.bind = "127.0.0.1:0".parse().expect("address");
        if settings.public_url.is_none() {
            settings.public_url = Some(self.base.clone());
        }
        change(&mut settings);
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("tempdir"));
        Self::spawn_with(data_dir, settings).await
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.settings.database_path()
    }

    /// A full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `POST /auth/register` with a JSON body.
    pub async fn register_json(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/auth/register"))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers `username` with [`GOOD_PASSWORD`] and asserts 201.
    pub async fn register(&self, username: &str) -> Value {
        let response = self
            .register_json(&json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": GOOD_PASSWORD,
            }))
            .await;
        assert_eq!(response.status(), 201, "registering {username}");
        response.json().await.expect("user json")
    }

    /// `POST /auth/token` with form parameters.
    pub async fn token_form(&self, params: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url("/auth/token"))
            .form(params)
            .send()
            .await
            .expect("request")
    }

    /// Password grant for `username` with [`GOOD_PASSWORD`]; asserts 200 and
    /// returns the token response.
    pub async fn login(&self, username: &str) -> Value {
        let response = self
            .token_form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", GOOD_PASSWORD),
            ])
            .await;
        assert_eq!(response.status(), 200, "logging in {username}");
        response.json().await.expect("token json")
    }

    /// Registers and logs in; returns the access token.
    pub async fn access_token_for(&self, username: &str) -> String {
        self.register(username).await;
        self.login(username).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// `GET /users/me` with a bearer token.
    pub async fn me(&self, token: &str) -> Response {
        self.client
            .get(self.url("/users/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
