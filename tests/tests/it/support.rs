//! Helpers shared by the test modules: JWT minting and inspection, and
//! account changes made behind the running application's back.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header, encode};
use portcullis_domain::{Initiator, Role};
use portcullis_tests::TestApp;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

/// The content type of RFC 9457 problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The challenge of a 401 without a credential.
pub const BEARER_CHALLENGE: &str = r#"Bearer realm="portcullis""#;

/// The API's `Content-Security-Policy`.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Decodes segment `index` (0 = header, 1 = claims) of a compact JWT without
/// verifying anything.
pub fn jwt_segment(token: &str, index: usize) -> Value {
    let segment = token
        .split('.')
        .nth(index)
        .expect("the token has three dot-separated segments");
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .expect("the segment is base64url without padding");
    serde_json::from_slice(&bytes).expect("the segment is JSON")
}

/// The claims of a JWT, decoded without verification.
pub fn jwt_claims(token: &str) -> Value {
    jwt_segment(token, 1)
}

/// Signs `claims` with HS256 and `secret`, with `typ` as given and no `kid`:
/// a token as issued before key ids, which the server accepts with its
/// configured secret until such tokens can no longer be live.
pub fn mint(claims: &Value, typ: Option<&str>, secret: &[u8]) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = typ.map(str::to_owned);
    encode(&header, claims, &EncodingKey::from_secret(secret)).expect("signing works")
}

/// Signs `claims` with HS256 and `secret`, `typ` `at+jwt` and `kid` as given.
pub fn mint_with_kid(claims: &Value, kid: &str, secret: &[u8]) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    encode(&header, claims, &EncodingKey::from_secret(secret)).expect("signing works")
}

/// Encodes a JSON value as a base64url JWT segment.
pub fn jwt_encode_segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON serialises"))
}

/// The current Unix time in seconds.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Disables or re-enables `username` through a second `AuthService` over the
/// running application's data directory.
pub async fn set_disabled(app: &TestApp, username: &str, disabled: bool) {
    portcullis::build_admin_service(&app.settings)
        .await
        .expect("auth service over the test data directory")
        .set_disabled(username, disabled, &Initiator::command_line())
        .await
        .expect("the account exists");
}

/// Gives `username` the admin role behind the running application's back.
pub async fn make_admin(app: &TestApp, username: &str) {
    portcullis::build_admin_service(&app.settings)
        .await
        .expect("auth service over the test data directory")
        .set_role(username, Role::Admin, &Initiator::command_line())
        .await
        .expect("the account exists");
}

/// A header's value as text, or `None` when it is absent.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(|value| value.to_str().expect("the header value is visible ASCII"))
}

/// The media type of a response, without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    header(headers, "content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Asserts `response` is an RFC 9457 problem with `status` and returns its
/// body.
pub async fn expect_problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    assert_eq!(
        media_type(response.headers()),
        PROBLEM_JSON,
        "content type of a {status}"
    );
    let body: Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status, "problem status in {body}");
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "problem `{member}` in {body}");
    }
    body
}

/// Asserts `response` is a 400 RFC 6749 §5.2 error `error` and returns its body.
pub async fn expect_oauth_error(response: Response, error: &str) -> Value {
    expect_oauth_error_with_status(response, 400, error).await
}

/// Asserts `response` is an RFC 6749 §5.2 error `error` with `status` and
/// returns its body.
pub async fn expect_oauth_error_with_status(response: Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    assert_eq!(
        media_type(response.headers()),
        "application/json",
        "content type of an OAuth error"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], error, "error code in {body}");
    assert!(
        body["error_description"].is_string(),
        "error_description in {body}"
    );
    body
}

/// The field names listed in a problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("the problem lists `errors`")
        .iter()
        .map(|error| {
            assert!(error["message"].is_string(), "message of {error}");
            error["field"]
                .as_str()
                .expect("each error names its field")
                .to_owned()
        })
        .collect()
}

// --- credentials of every kind (API keys, Basic, admin) ----------------------

/// The challenge of a 401 for a presented but refused credential.
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

/// The challenge of a 403 for a credential without the `admin` scope.
pub const ADMIN_SCOPE_CHALLENGE: &str =
    r#"Bearer realm="portcullis", error="insufficient_scope", scope="admin""#;

/// Starts a test app whose credential-check limiter never gets in the way
/// (for tests that are not about rate limiting).
pub async fn spawn_unthrottled() -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = portcullis_tests::test_args(data_dir.path().join("data"));
    args.login_per_ip_per_min = Some(10_000);
    args.login_per_user_per_min = Some(10_000);
    let settings = portcullis::Settings::resolve(&args).expect("valid settings");
    TestApp::spawn_with(data_dir, settings).await
}

/// One credential as a client presents it on a "user" route.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `Authorization: Bearer <access token>`.
    Bearer(String),
    /// `X-API-Key: <key>`.
    ApiKey(String),
    /// `Authorization: Basic base64(username:password)`.
    Basic(String, String),
}

impl Credential {
    /// HTTP Basic with `username` and `password`.
    pub fn basic(username: &str, password: &str) -> Self {
        Self::Basic(username.to_owned(), password.to_owned())
    }

    /// Adds the credential's header to `request`.
    pub fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Self::Bearer(token) => request.bearer_auth(token),
            Self::ApiKey(key) => request.header("x-api-key", key),
            Self::Basic(username, password) => {
                request.header("authorization", basic_authorization(username, password))
            }
        }
    }
}

/// The `Authorization` value of HTTP Basic (RFC 7617) for `username` and
/// `password`.
pub fn basic_authorization(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

/// Sends `method path` with an optional credential and JSON body.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    credential: Option<&Credential>,
    body: Option<&Value>,
) -> Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(credential) = credential {
        request = credential.apply(request);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

/// `POST /users/me/api-keys` with `credential`; asserts 201 and returns the
/// `NewApiKey`.
pub async fn new_api_key(app: &TestApp, credential: &Credential, body: &Value) -> Value {
    let response = call(
        app,
        Method::POST,
        "/users/me/api-keys",
        Some(credential),
        Some(body),
    )
    .await;
    assert_eq!(response.status(), 201, "creating an API key with {body}");
    response.json().await.expect("NewApiKey json")
}

/// The `key` of a `NewApiKey`.
pub fn api_key_of(created: &Value) -> String {
    created["key"].as_str().expect("the new key").to_owned()
}

/// Registers `username`, gives it the admin role and logs it in; returns the
/// access token (scopes `profile admin introspect`).
pub async fn admin_token_for(app: &TestApp, username: &str) -> String {
    app.register(username).await;
    make_admin(app, username).await;
    app.login(username).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// Asserts a 401 problem with exactly `challenge` and no `Basic` challenge.
pub async fn expect_unauthorized(response: Response, challenge: &str, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    let all: Vec<&str> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|value| value.to_str().expect("visible ASCII"))
        .collect();
    assert_eq!(all, [challenge], "{case}: WWW-Authenticate");
    assert!(
        all.iter()
            .all(|c| !c.to_ascii_lowercase().contains("basic")),
        "{case}: never a Basic challenge: {all:?}"
    );
    expect_problem(response, 401).await;
}

/// Asserts a 403 problem that names the missing `admin` scope.
pub async fn expect_admin_scope_missing(response: Response, case: &str) {
    assert_eq!(response.status(), 403, "{case}");
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(ADMIN_SCOPE_CHALLENGE),
        "{case}"
    );
    expect_problem(response, 403).await;
}
