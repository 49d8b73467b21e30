//! Transport (CONTRACT §1 and §3, Headers): CORS only for configured origins
//! and never reflected, HTTPS with rustls when a certificate is configured,
//! and `Strict-Transport-Security` exactly when serving TLS.

use std::path::PathBuf;

use portcullis_tests::{TestApp, test_args};
use reqwest::header::HeaderMap;
use reqwest::tls::{Certificate, Version};
use reqwest::{Client, Method, Response};
use serde_json::Value;
use tempfile::TempDir;

use crate::support::{API_CSP, expect_problem, header};

/// The one origin the CORS tests allow.
const APP_ORIGIN: &str = "https://app.example.com";

/// Origins that are not [`APP_ORIGIN`], some of them look-alikes.
const FOREIGN_ORIGINS: [&str; 5] = [
    "https://evil.example",
    "https://app.example.com.evil.example",
    "http://app.example.com",
    "https://app.example.com:8443",
    "null",
];

/// Starts an app with changes to the default test settings; `data_dir` is
/// created when not given.
pub(crate) async fn spawn_tuned(
    data_dir: Option<TempDir>,
    tune: impl FnOnce(&mut portcullis::SettingsArgs),
) -> TestApp {
    let data_dir = data_dir.unwrap_or_else(|| tempfile::tempdir().expect("temporary directory"));
    let mut args = test_args(data_dir.path().join("data"));
    tune(&mut args);
    let settings = portcullis::Settings::resolve(&args).expect("valid settings");
    TestApp::spawn_with(data_dir, settings).await
}

/// Starts an app that allows [`APP_ORIGIN`].
async fn spawn_with_cors() -> TestApp {
    spawn_tuned(None, |args| {
        args.cors_origins = Some(APP_ORIGIN.to_owned());
    })
    .await
}

/// The names of all `Access-Control-*` headers.
fn cors_header_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|name| name.as_str().to_ascii_lowercase())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// The comma-separated entries of a header, trimmed and lower-cased.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| {
            value
                .to_str()
                .expect("visible ASCII")
                .split(',')
                .map(|entry| entry.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A CORS preflight for `method path` from `origin` announcing
/// `request_headers`.
async fn preflight(
    app: &TestApp,
    path: &str,
    origin: &str,
    method: &str,
    request_headers: &str,
) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", request_headers)
        .send()
        .await
        .expect("request")
}

/// `GET path` with an `Origin`.
async fn get_from(app: &TestApp, path: &str, origin: &str) -> Response {
    app.client
        .get(app.url(path))
        .header("origin", origin)
        .send()
        .await
        .expect("request")
}

/// Asserts the response never grants `origin` (nor every origin) and never
/// allows credentials.
fn assert_not_granted(response: &Response, origin: &str, case: &str) {
    let granted = header(response.headers(), "access-control-allow-origin");
    assert!(
        granted != Some(origin) && granted != Some("*"),
        "{case}: `{origin}` is not granted, got Access-Control-Allow-Origin {granted:?}"
    );
    assert_eq!(
        header(response.headers(), "access-control-allow-credentials"),
        None,
        "{case}: never Access-Control-Allow-Credentials"
    );
}

#[tokio::test]
async fn without_configured_origins_no_response_carries_any_cors_header() {
    let app = TestApp::spawn().await;

    let simple = get_from(&app, "/health", "https://evil.example").await;
    assert_eq!(simple.status(), 200, "an Origin does not break a request");
    assert_eq!(cors_header_names(simple.headers()), Vec::<String>::new());

    let refused = get_from(&app, "/users/me", "https://evil.example").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(cors_header_names(refused.headers()), Vec::<String>::new());

    for origin in [APP_ORIGIN, "https://evil.example"] {
        let response = preflight(&app, "/users/me", origin, "GET", "authorization").await;
        assert_eq!(
            cors_header_names(response.headers()),
            Vec::<String>::new(),
            "preflight from {origin}: status {}",
            response.status()
        );
    }
}

#[tokio::test]
async fn a_preflight_from_the_configured_origin_allows_the_api_s_methods_and_headers() {
    let app = spawn_with_cors().await;

    let response = preflight(&app, "/users/me", APP_ORIGIN, "GET", "authorization").await;
    assert!(
        response.status().is_success(),
        "preflight status {}",
        response.status()
    );
    let headers = response.headers();
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some(APP_ORIGIN),
        "exactly the configured origin"
    );
    let methods = list(headers, "access-control-allow-methods");
    assert!(methods.contains(&"get".to_owned()), "methods: {methods:?}");
    let allowed = list(headers, "access-control-allow-headers");
    assert!(
        allowed.contains(&"authorization".to_owned()),
        "headers: {allowed:?}"
    );
    assert_not_granted(&response, "https://evil.example", "preflight");

    // A browser client's login: a JSON POST.
    let response = preflight(&app, "/auth/login", APP_ORIGIN, "POST", "content-type").await;
    assert!(
        response.status().is_success(),
        "preflight status {}",
        response.status()
    );
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    assert!(list(response.headers(), "access-control-allow-methods").contains(&"post".to_owned()));
    assert!(
        list(response.headers(), "access-control-allow-headers")
            .contains(&"content-type".to_owned())
    );
}

#[tokio::test]
async fn a_request_from_the_configured_origin_gets_exactly_that_origin_back() {
    let app = spawn_with_cors().await;

    let response = get_from(&app, "/health", APP_ORIGIN).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    assert_eq!(
        header(response.headers(), "access-control-allow-credentials"),
        None,
        "Portcullis uses no cookies: never Access-Control-Allow-Credentials"
    );
    let body: Value = response.json().await.expect("health json");
    assert_eq!(body["status"], "ok");

    // A client that is not a browser (no Origin) is unaffected.
    let response = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        None
    );
}

#[tokio::test]
async fn an_origin_that_is_not_configured_is_never_reflected() {
    let app = spawn_with_cors().await;
    for origin in FOREIGN_ORIGINS {
        let response = get_from(&app, "/health", origin).await;
        assert_not_granted(&response, origin, &format!("GET /health from {origin}"));
        if !response.status().is_success() {
            // Refusing is allowed; any error is a problem document.
            assert_eq!(response.status(), 403, "GET /health from {origin}");
            expect_problem(response, 403).await;
        }

        let response = preflight(&app, "/users/me", origin, "GET", "authorization").await;
        assert_not_granted(&response, origin, &format!("preflight from {origin}"));
        assert!(
            header(response.headers(), "access-control-allow-methods").is_none(),
            "preflight from {origin}: no methods granted"
        );
    }
}

#[tokio::test]
async fn each_origin_of_a_comma_separated_list_is_allowed_and_answered_with_itself() {
    let second = "https://admin.example.org";
    let app = spawn_tuned(None, |args| {
        args.cors_origins = Some(format!("{APP_ORIGIN}, {second}"));
    })
    .await;
    for origin in [APP_ORIGIN, second] {
        let response = get_from(&app, "/health", origin).await;
        assert_eq!(response.status(), 200, "GET /health from {origin}");
        assert_eq!(
            header(response.headers(), "access-control-allow-origin"),
            Some(origin),
            "each allowed origin gets itself back, never the whole list"
        );
    }
    let response = get_from(&app, "/health", "https://evil.example").await;
    assert_not_granted(&response, "https://evil.example", "a third origin");
}

// --- TLS ---------------------------------------------------------------------

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM
/// files into `dir`: the certificate, its path and the key's path.
fn self_signed_certificate(dir: &TempDir) -> (Certificate, PathBuf, PathBuf) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("generate a certificate");
    let cert_pem = generated.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).expect("write the certificate");
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).expect("write the key");
    let certificate = Certificate::from_pem(cert_pem.as_bytes()).expect("a PEM certificate");
    (certificate, cert_path, key_path)
}

/// An app serving HTTPS with a fresh self-signed certificate, and a client
/// that trusts only that certificate and resolves `localhost` to the app.
async fn spawn_tls() -> (TestApp, Certificate) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (certificate, cert_path, key_path) = self_signed_certificate(&dir);
    let app = spawn_tuned(Some(dir), |args| {
        args.tls_cert = Some(cert_path);
        args.tls_key = Some(key_path);
    })
    .await;
    (app, certificate)
}

/// A client that trusts only `certificate`, optionally pinned to one TLS version.
fn tls_client(app: &TestApp, certificate: &Certificate, version: Option<Version>) -> Client {
    let mut builder = Client::builder()
        .tls_certs_only([certificate.clone()])
        .resolve("localhost", app.addr)
        .https_only(true);
    if let Some(version) = version {
        builder = builder.tls_version_min(version).tls_version_max(version);
    }
    builder.build().expect("an HTTPS client")
}

/// `https://localhost:PORT/path`.
fn https_url(app: &TestApp, path: &str) -> String {
    format!("https://localhost:{}{path}", app.addr.port())
}

/// Asserts a `Strict-Transport-Security` with a positive `max-age`.
fn assert_hsts(response: &Response, case: &str) {
    let hsts = header(response.headers(), "strict-transport-security")
        .unwrap_or_else(|| panic!("{case}: Strict-Transport-Security over TLS"));
    let max_age = hsts
        .split(';')
        .map(str::trim)
        .find_map(|directive| directive.strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("{case}: max-age in {hsts:?}"));
    let seconds: u64 = max_age
        .parse()
        .unwrap_or_else(|_| panic!("{case}: max-age is a number in {hsts:?}"));
    assert!(seconds > 0, "{case}: a positive max-age in {hsts:?}");
}

#[tokio::test]
async fn with_a_certificate_the_api_is_served_over_https_with_strict_transport_security() {
    let (app, certificate) = spawn_tls().await;
    let client = tls_client(&app, &certificate, None);

    let response = client
        .get(https_url(&app, "/health"))
        .send()
        .await
        .expect("an HTTPS request to /health");
    assert_eq!(response.status(), 200);
    assert_hsts(&response, "GET /health");
    assert_eq!(
        header(response.headers(), "content-security-policy"),
        Some(API_CSP)
    );
    let body: Value = response.json().await.expect("health json");
    assert_eq!(body["status"], "ok");

    // Errors carry it too.
    let unauthorized = client
        .get(https_url(&app, "/users/me"))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthorized.status(), 401);
    assert_hsts(&unauthorized, "a 401");
    let not_found = client
        .get(https_url(&app, "/no-such-path"))
        .send()
        .await
        .expect("request");
    assert_eq!(not_found.status(), 404);
    assert_hsts(&not_found, "a 404");

    // The certificate's IP address works as well.
    let by_ip = client
        .get(format!("https://127.0.0.1:{}/health", app.addr.port()))
        .send()
        .await
        .expect("an HTTPS request to 127.0.0.1");
    assert_eq!(by_ip.status(), 200);
}

#[tokio::test]
async fn an_account_can_register_log_in_and_call_the_api_over_https() {
    let (app, certificate) = spawn_tls().await;
    let client = tls_client(&app, &certificate, None);
    let registered = client
        .post(https_url(&app, "/auth/register"))
        .json(&serde_json::json!({
            "username": "alice",
            "email": "alice@example.com",
            "password": portcullis_tests::GOOD_PASSWORD,
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(registered.status(), 201);
    let grant = client
        .post(https_url(&app, "/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", portcullis_tests::GOOD_PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(grant.status(), 200);
    assert_hsts(&grant, "the token response");
    let grant: Value = grant.json().await.expect("token json");
    let access = grant["access_token"].as_str().expect("access_token");
    let me = client
        .get(https_url(&app, "/users/me"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request");
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.expect("user json");
    assert_eq!(me["username"], "alice");
}

#[tokio::test]
async fn both_tls_1_2_and_tls_1_3_clients_are_served() {
    let (app, certificate) = spawn_tls().await;
    for version in [Version::TLS_1_2, Version::TLS_1_3] {
        let client = tls_client(&app, &certificate, Some(version));
        let response = client
            .get(https_url(&app, "/health"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{version:?}: {e:?}"));
        assert_eq!(response.status(), 200, "{version:?}");
    }
}

#[tokio::test]
async fn the_https_port_does_not_answer_plain_http() {
    let (app, _) = spawn_tls().await;
    let plain = Client::new()
        .get(format!("http://127.0.0.1:{}/health", app.addr.port()))
        .send()
        .await;
    assert!(
        !matches!(&plain, Ok(response) if response.status().is_success()),
        "plain HTTP to the HTTPS port must not be served: {plain:?}"
    );
}

#[tokio::test]
async fn plain_http_responses_carry_no_strict_transport_security() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/users/me", "/no-such-path"] {
        let response = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(
            header(response.headers(), "strict-transport-security"),
            None,
            "GET {path} over plain HTTP"
        );
    }
}
