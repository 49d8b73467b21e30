//! The example's own operations work with Portcullis credentials, and the
//! embedded server is the one the `portcullis` binary runs: each test talks
//! HTTP to `notes_example::build` on port 0.

#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

use std::time::{Duration, Instant};

use portcullis::{Settings, SettingsArgs};
use portcullis_domain::ports::SessionStore;
use portcullis_domain::{
    ClientInfo, LoginRequest, Password, RefreshTokenHash, RegistrationRequest,
};
use portcullis_sqlite::SqliteStore;
use reqwest::tls::Certificate;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

const PASSWORD: &str = "correct horse battery staple";

/// The one origin the CORS test allows.
const APP_ORIGIN: &str = "https://app.example.com";

/// Test settings in `dir`: port 0, a known secret, the cheapest argon2
/// parameters (explicitly marked insecure), limits no test meets, and
/// whatever `tune` changes.
fn settings(dir: &TempDir, tune: impl FnOnce(&mut SettingsArgs)) -> Settings {
    let mut args = SettingsArgs {
        bind: Some("127.0.0.1:0".to_owned()),
        data_dir: Some(dir.path().join("data")),
        jwt_secret: Some("notes-example-test-secret-0123456789abcdef".to_owned()),
        argon2_m_kib: Some(8),
        argon2_t: Some(1),
        argon2_p: Some(1),
        insecure_test_hashing: Some(true),
        login_per_ip_per_min: Some(1000),
        login_per_user_per_min: Some(1000),
        ..SettingsArgs::default()
    };
    tune(&mut args);
    Settings::resolve(&args).expect("settings")
}

/// The notes server running in the background; it stops when dropped.
struct Served {
    base_url: String,
    _stop: oneshot::Sender<()>,
}

impl Served {
    async fn start(settings: &Settings) -> Self {
        let application = notes_example::build(settings)
            .await
            .expect("the notes server starts");
        let base_url = application.base_url();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            base_url,
            _stop: stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

async fn token(client: &Client, server: &Served, username: &str) -> String {
    let registered = client
        .post(server.url("/auth/register"))
        .json(&json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let response = client
        .post(server.url("/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token json");
    body["access_token"].as_str().expect("token").to_owned()
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("visible ASCII"))
}

#[tokio::test]
async fn notes_are_private_to_their_author_and_need_a_credential() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Served::start(&settings(&dir, |_| {})).await;
    let client = Client::new();
    let alice = token(&client, &server, "alice").await;
    let bob = token(&client, &server, "bob").await;

    let created = client
        .post(server.url("/notes"))
        .bearer_auth(&alice)
        .json(&json!({"text": "buy milk"}))
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), StatusCode::CREATED);

    let mine: Value = client
        .get(server.url("/notes"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("notes json");
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(mine[0]["text"], "buy milk");

    let theirs: Value = client
        .get(server.url("/notes"))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("notes json");
    assert_eq!(theirs, json!([]));

    let anonymous = client
        .get(server.url("/notes"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&anonymous, "www-authenticate"),
        Some(r#"Bearer realm="portcullis""#)
    );
}

#[tokio::test]
async fn the_example_validates_with_portcullis_error_formats_and_shares_the_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Served::start(&settings(&dir, |_| {})).await;
    let client = Client::new();
    let alice = token(&client, &server, "alice").await;
    let empty = client
        .post(server.url("/notes"))
        .bearer_auth(&alice)
        .json(&json!({"text": ""}))
        .send()
        .await
        .expect("request");
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        header(&empty, "content-type"),
        Some("application/problem+json")
    );

    let spec: Value = client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("document json");
    assert!(spec["paths"]["/notes"]["get"]["security"].is_array());
    assert!(spec["paths"]["/auth/token"]["post"].is_object());
    assert!(spec["components"]["securitySchemes"]["OAuth2"].is_object());
}

// What follows would fail against an app the example wired itself: before
// `Application::build_with`, it served the endpoint with poem's own server
// and default HTTP options, so CORS and TLS settings were ignored and dead
// sessions were never purged.

#[tokio::test]
async fn the_embedded_server_answers_cors_preflights_from_the_configured_origin_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Served::start(&settings(&dir, |args| {
        args.cors_origins = Some(APP_ORIGIN.to_owned());
    }))
    .await;
    let client = Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(Method::OPTIONS, server.url("/notes"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };

    let allowed = preflight(APP_ORIGIN).await.expect("request");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );

    let foreign = preflight("https://evil.example").await.expect("request");
    let granted = header(&foreign, "access-control-allow-origin");
    assert!(
        granted != Some("https://evil.example") && granted != Some("*"),
        "a foreign origin is not granted: {granted:?}"
    );
}

#[tokio::test]
async fn the_embedded_server_serves_https_with_strict_transport_security_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("generate a certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, generated.cert.pem()).expect("write the certificate");
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).expect("write the key");
    let server = Served::start(&settings(&dir, |args| {
        args.tls_cert = Some(cert_path);
        args.tls_key = Some(key_path);
    }))
    .await;
    assert!(
        server.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        server.base_url
    );
    let certificate =
        Certificate::from_pem(generated.cert.pem().as_bytes()).expect("a PEM certificate");
    let client = Client::builder()
        .tls_certs_only([certificate])
        .https_only(true)
        .build()
        .expect("an HTTPS client");

    let health = client
        .get(server.url("/health"))
        .send()
        .await
        .expect("an HTTPS request");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        header(&health, "strict-transport-security").is_some_and(|hsts| hsts.contains("max-age=")),
        "HSTS over TLS: {:?}",
        health.headers()
    );
    // The example's own operations are on the same HTTPS server.
    let notes = client
        .get(server.url("/notes"))
        .send()
        .await
        .expect("an HTTPS request");
    assert_eq!(notes.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&notes, "strict-transport-security").is_some());
}

#[tokio::test]
async fn the_embedded_server_purges_dead_sessions_when_it_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(&dir, |_| {});
    // A session that ended before the server starts: dead, but still stored.
    let auth = portcullis::build_auth_service(&settings)
        .await
        .expect("auth service");
    auth.register(
        RegistrationRequest {
            username: "alice".to_owned(),
            email: "alice@example.com".to_owned(),
            full_name: None,
            password: Password::new(PASSWORD.to_owned()),
        },
        &ClientInfo::default(),
    )
    .await
    .expect("registered");
    let grant = auth
        .login(LoginRequest {
            username: "alice".to_owned(),
            password: Password::new(PASSWORD.to_owned()),
            scope: None,
            client: ClientInfo::default(),
        })
        .await
        .expect("logged in");
    auth.revoke_token(&grant.refresh_token, None, &ClientInfo::default())
        .await
        .expect("revoked");
    let store = SqliteStore::open(&settings.database_path()).expect("the store");
    let refresh_token = RefreshTokenHash::from_digest(
        portcullis_crypto::token_digest(&grant.refresh_token).to_vec(),
    );
    let is_stored = || store.find_refresh_token_owner(&refresh_token);
    assert!(
        is_stored().await.expect("lookup").is_some(),
        "an ended session stays until a purge"
    );

    let _server = Served::start(&settings).await;
    // The first purge runs as the server starts; the next would be ten
    // minutes later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_stored().await.expect("lookup").is_some() {
        assert!(
            Instant::now() < deadline,
            "the embedded server did not purge the dead session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
