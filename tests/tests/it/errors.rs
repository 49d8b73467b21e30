//! Errors that are not specific to one endpoint, the security headers of
//! every response, request ids, and the health check.

use std::collections::BTreeSet;

use portcullis_tests::TestApp;
use reqwest::Response;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{API_CSP, expect_problem, header};

/// Asserts the headers the contract demands on every API response.
fn assert_security_headers(headers: &HeaderMap, case: &str) {
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{case}"
    );
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{case}");
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("no-referrer"),
        "{case}"
    );
    assert_eq!(header(headers, "cache-control"), Some("no-store"), "{case}");
    assert_eq!(
        header(headers, "content-security-policy"),
        Some(API_CSP),
        "{case}"
    );
    assert!(
        header(headers, "x-request-id").is_some_and(|id| !id.is_empty()),
        "{case}: X-Request-Id"
    );
    assert!(headers.get("server").is_none(), "{case}: Server header");
}

fn allowed_methods(response: &Response) -> BTreeSet<String> {
    header(response.headers(), "allow")
        .expect("an Allow header")
        .split(',')
        .map(|method| method.trim().to_ascii_uppercase())
        .filter(|method| !method.is_empty())
        .collect()
}

#[tokio::test]
async fn health_reports_the_service_and_database_ok() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok", "database": "ok"}));
}

#[tokio::test]
async fn an_unknown_path_is_a_404_problem() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .unwrap();
    expect_problem(response, 404).await;
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_listing_the_right_methods() {
    let app = TestApp::spawn().await;
    let response = app.client.put(app.url("/users/me")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        allowed_methods(&response),
        BTreeSet::from([
            "DELETE".to_owned(),
            "GET".to_owned(),
            "HEAD".to_owned(),
            "PATCH".to_owned()
        ])
    );
    expect_problem(response, 405).await;

    let response = app
        .client
        .get(app.url("/auth/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        allowed_methods(&response),
        BTreeSet::from(["POST".to_owned()])
    );
    expect_problem(response, 405).await;

    let response = app.client.post(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let allowed = allowed_methods(&response);
    assert!(allowed.contains("GET"), "{allowed:?}");
    assert!(!allowed.contains("POST"), "{allowed:?}");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let ok = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_security_headers(ok.headers(), "200");

    let unauthorized = app.client.get(app.url("/users/me")).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_security_headers(unauthorized.headers(), "401");

    let not_found = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(not_found.status(), 404);
    assert_security_headers(not_found.headers(), "404");

    let invalid = app
        .register_json(&json!({"username": "x", "email": "x", "password": "x"}))
        .await;
    assert_eq!(invalid.status(), 422);
    assert_security_headers(invalid.headers(), "422");

    let oauth = app.token_form(&[("grant_type", "nonsense")]).await;
    assert_eq!(oauth.status(), 400);
    assert_security_headers(oauth.headers(), "400 from the token endpoint");
}

#[tokio::test]
async fn a_plain_client_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/users/me", "/nowhere"] {
        let response = app
            .client
            .get(app.url(path))
            .header("x-request-id", "client-id_42.abc")
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(response.headers(), "x-request-id"),
            Some("client-id_42.abc"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_garbage_client_request_id_is_replaced() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(500);
    for garbage in ["evil id\" injected=1", "<script>", long.as_str()] {
        let response = app
            .client
            .get(app.url("/health"))
            .header("x-request-id", garbage)
            .send()
            .await
            .unwrap();
        let id = header(response.headers(), "x-request-id").expect("a request id");
        assert!(!id.is_empty());
        assert_ne!(id, garbage, "the garbage id is not echoed");
    }
}

#[tokio::test]
async fn request_ids_differ_between_requests() {
    let app = TestApp::spawn().await;
    let mut ids = BTreeSet::new();
    for _ in 0..3 {
        let response = app.client.get(app.url("/health")).send().await.unwrap();
        ids.insert(
            header(response.headers(), "x-request-id")
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 3, "{ids:?}");
}
