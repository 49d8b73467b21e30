//! `GET /openapi.json` and `GET /docs`.

use portcullis_tests::{TestApp, test_args};
use serde_json::{Value, json};

use crate::support::{API_CSP, header, media_type};

async fn openapi(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(media_type(response.headers()), "application/json");
    response.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_json() {
    let app = TestApp::spawn().await;
    let spec = openapi(&app).await;
    let version = spec["openapi"].as_str().unwrap();
    assert!(version.starts_with("3."), "openapi version {version}");
    assert!(spec["info"]["title"].is_string());
    for path in [
        "/auth/register",
        "/auth/token",
        "/auth/login",
        "/users/me",
        "/health",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn the_openapi_document_declares_the_oauth2_password_flow_and_bearer_schemes() {
    let app = TestApp::spawn().await;
    let spec = openapi(&app).await;
    let schemes = &spec["components"]["securitySchemes"];

    let oauth2 = &schemes["OAuth2"];
    assert_eq!(oauth2["type"], "oauth2", "{schemes}");
    let password = &oauth2["flows"]["password"];
    assert_eq!(password["tokenUrl"], "/auth/token", "{oauth2}");
    let scopes = password["scopes"].as_object().unwrap();
    assert!(scopes.contains_key("profile"), "{oauth2}");
    assert!(scopes.contains_key("admin"), "{oauth2}");

    let bearer = &schemes["BearerAuth"];
    assert_eq!(bearer["type"], "http", "{schemes}");
    assert_eq!(
        bearer["scheme"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer"),
        "{bearer}"
    );
}

#[tokio::test]
async fn the_get_me_operation_requires_oauth2_or_bearer_auth() {
    let app = TestApp::spawn().await;
    let spec = openapi(&app).await;
    let security = spec["paths"]["/users/me"]["get"]["security"]
        .as_array()
        .unwrap();
    let names: Vec<&String> = security
        .iter()
        .flat_map(|requirement| requirement.as_object().unwrap().keys())
        .collect();
    assert!(names.iter().any(|n| *n == "OAuth2"), "{security:?}");
    assert!(names.iter().any(|n| *n == "BearerAuth"), "{security:?}");
    let oauth2 = security
        .iter()
        .find_map(|requirement| requirement.get("OAuth2"))
        .unwrap();
    assert_eq!(oauth2, &json!(["profile"]), "the operation needs `profile`");
}

#[tokio::test]
async fn the_docs_page_is_html_with_its_own_content_security_policy() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(media_type(response.headers()), "text/html");
    let csp = header(response.headers(), "content-security-policy")
        .expect("a Content-Security-Policy")
        .to_owned();
    assert!(!csp.is_empty());
    assert_ne!(csp, API_CSP, "Swagger UI cannot run under the API's policy");
    assert_eq!(header(response.headers(), "x-frame-options"), Some("DENY"));
    assert_eq!(
        header(response.headers(), "x-content-type-options"),
        Some("nosniff")
    );
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"), "a Swagger UI page");
}

#[tokio::test]
async fn with_docs_disabled_both_documents_are_404() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut args = test_args(data_dir.path().join("data"));
    args.docs = Some(false);
    let settings = portcullis::Settings::resolve(&args).unwrap();
    let app = TestApp::spawn_with(data_dir, settings).await;
    for path in ["/openapi.json", "/docs"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the API itself still runs");
}

#[tokio::test]
async fn only_oauth2_requirements_carry_scopes_as_openapi_3_0_requires() {
    let app = TestApp::spawn().await;
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for (scheme, scopes) in requirement.as_object().unwrap() {
                    let scopes = scopes.as_array().unwrap();
                    if scheme == "OAuth2" {
                        assert!(
                            !scopes.is_empty(),
                            "{method} {path}: OAuth2 lists its scope"
                        );
                    } else {
                        assert!(scopes.is_empty(), "{method} {path}: {scheme} lists scopes");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 40, "only {checked} requirements found");
}
