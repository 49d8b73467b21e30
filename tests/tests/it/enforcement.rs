//! Every operation enforces what the OpenAPI document claims about it: the
//! document is fetched and walked, so an operation added later is covered
//! without touching this file.

use portcullis_tests::{GOOD_PASSWORD, TestApp};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::{
    BEARER_CHALLENGE, Credential, api_key_of, header, make_admin, new_api_key, spawn_unthrottled,
};

/// The security schemes every secured operation offers.
const SCHEMES: [&str; 4] = ["OAuth2", "BearerAuth", "ApiKeyAuth", "BasicAuth"];

/// One operation of the document.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    /// The path template, e.g. `/admin/users/{id}`.
    template: String,
    /// The `security` requirements (empty: none).
    security: Vec<Value>,
    /// Whether it takes a JSON request body.
    json_body: bool,
}

impl Operation {
    /// `GET /users/me`-style name for failure messages.
    fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }

    /// Whether any credential is required.
    fn secured(&self) -> bool {
        !self.security.is_empty()
    }

    /// The scopes the operation requires, read from its OAuth2 requirement
    /// (the only scheme whose scope list OpenAPI 3.0 defines).
    fn oauth2_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self
            .security
            .iter()
            .filter_map(|requirement| requirement.get("OAuth2"))
            .flat_map(|scopes| scopes.as_array().cloned().unwrap_or_default())
            .map(|scope| scope.as_str().expect("a scope name").to_owned())
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The concrete path: every `{param}` becomes a random UUID.
    fn path(&self) -> String {
        self.template
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Calls the operation with `credential`, a random UUID for every path
    /// parameter and `{}` as the body when one is required.
    async fn call(&self, app: &TestApp, credential: Option<&Credential>) -> Response {
        let mut request = app
            .client
            .request(self.method.clone(), app.url(&self.path()));
        if let Some(credential) = credential {
            request = credential.apply(request);
        }
        if self.json_body {
            request = request.json(&json!({}));
        }
        request.send().await.expect("request")
    }
}

/// `GET /openapi.json`.
async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "GET /openapi.json");
    response.json().await.expect("the document is JSON")
}

/// Every operation of the document.
fn operations(document: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                continue;
            };
            if !matches!(
                method,
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                continue;
            }
            let security = operation["security"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let json_body = operation["requestBody"]["content"]
                .as_object()
                .is_some_and(|content| content.contains_key("application/json"));
            found.push(Operation {
                method,
                template: template.clone(),
                security,
                json_body,
            });
        }
    }
    assert!(!found.is_empty(), "the document lists operations");
    found
}

/// The secured operations of the document; at least the ones the contract
/// says need a credential.
async fn secured_operations(app: &TestApp) -> Vec<Operation> {
    let secured: Vec<Operation> = operations(&document(app).await)
        .into_iter()
        .filter(Operation::secured)
        .collect();
    assert!(secured.len() >= 14, "{secured:#?}");
    secured
}

/// Fails naming every operation in `failures`.
fn assert_none(failures: &[String], what: &str) {
    assert!(
        failures.is_empty(),
        "{what}: {} operation(s) fail:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Logs `username` in with an optional `scope`; returns the access token.
async fn login_scoped(app: &TestApp, username: &str, scope: Option<&str>) -> String {
    let mut params = vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", GOOD_PASSWORD),
    ];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    let response = app.token_form(&params).await;
    assert_eq!(response.status(), 200, "logging in {username}");
    let grant: Value = response.json().await.expect("token json");
    grant["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[tokio::test]
async fn every_secured_operation_without_a_credential_is_401_with_the_bearer_challenge() {
    let app = spawn_unthrottled().await;
    let mut failures = Vec::new();
    for operation in secured_operations(&app).await {
        let response = operation.call(&app, None).await;
        let status = response.status().as_u16();
        let challenge = header(response.headers(), "www-authenticate").map(str::to_owned);
        if status != 401 {
            failures.push(format!("{}: {status} instead of 401", operation.name()));
        } else if challenge.as_deref() != Some(BEARER_CHALLENGE) {
            failures.push(format!(
                "{}: WWW-Authenticate {challenge:?}",
                operation.name()
            ));
        }
    }
    assert_none(&failures, "without a credential");
}

#[tokio::test]
async fn every_secured_operation_refuses_a_bad_credential_of_each_kind_with_invalid_token() {
    let app = spawn_unthrottled().await;
    app.register("someone").await;
    let bad = [
        Credential::Bearer("not.a.jwt".to_owned()),
        Credential::ApiKey(format!("pcl_{}", "A".repeat(43))),
        Credential::basic("someone", "not the right password at all"),
    ];
    let mut failures = Vec::new();
    for operation in secured_operations(&app).await {
        for credential in &bad {
            let response = operation.call(&app, Some(credential)).await;
            let status = response.status().as_u16();
            let challenge = header(response.headers(), "www-authenticate").map(str::to_owned);
            let expected = r#"Bearer realm="portcullis", error="invalid_token""#;
            if status != 401 || challenge.as_deref() != Some(expected) {
                failures.push(format!(
                    "{} with a bad {credential:?}: {status}, WWW-Authenticate {challenge:?}",
                    operation.name()
                ));
            }
        }
    }
    assert_none(&failures, "with a bad credential");
}

#[tokio::test]
async fn a_profile_only_credential_is_403_on_admin_operations_and_passes_profile_ones() {
    let app = spawn_unthrottled().await;
    app.register("profiled").await;
    // An admin narrowed to `profile`, too: the token decides, not the role.
    app.register("narrowed").await;
    make_admin(&app, "narrowed").await;

    let mut failures = Vec::new();
    let operations = secured_operations(&app).await;
    for operation in &operations {
        let scopes = operation.oauth2_scopes();
        if scopes.is_empty() {
            failures.push(format!("{}: no OAuth2 scope listed", operation.name()));
            continue;
        }
        // An operation for admins only (`admin`, `introspect`): every one
        // of these credentials lacks its scope.
        let admin_only = scopes.len() == 1 && scopes[0] != "profile";
        let expected_challenge = format!(
            r#"Bearer realm="portcullis", error="insufficient_scope", scope="{}""#,
            scopes[0]
        );
        let needs_profile = scopes.iter().any(|scope| scope == "profile");
        // A fresh credential for every call: some operations (logout) end
        // the credential's session.
        let user_token = login_scoped(&app, "profiled", None).await;
        let narrowed_token = login_scoped(&app, "narrowed", Some("profile")).await;
        let user_key = api_key_of(
            &new_api_key(
                &app,
                &Credential::Bearer(user_token.clone()),
                &json!({"name": "probe"}),
            )
            .await,
        );
        let credentials = [
            ("a user's bearer token", Credential::Bearer(user_token)),
            (
                "an admin's token narrowed to profile",
                Credential::Bearer(narrowed_token),
            ),
            ("a user's API key", Credential::ApiKey(user_key)),
            (
                "a user's Basic credential",
                Credential::basic("profiled", GOOD_PASSWORD),
            ),
        ];
        for (who, credential) in &credentials {
            let response = operation.call(&app, Some(credential)).await;
            let status = response.status().as_u16();
            let challenge = header(response.headers(), "www-authenticate").map(str::to_owned);
            if admin_only {
                if status != 403 || challenge.as_deref() != Some(expected_challenge.as_str()) {
                    failures.push(format!(
                        "{} (scopes {scopes:?}) with {who}: {status}, WWW-Authenticate \
                         {challenge:?}; expected 403 insufficient_scope",
                        operation.name()
                    ));
                }
            } else if needs_profile && (status == 401 || status == 403) {
                failures.push(format!(
                    "{} (scopes {scopes:?}) with {who}: {status}, WWW-Authenticate {challenge:?}",
                    operation.name()
                ));
            }
        }
    }
    assert!(
        operations
            .iter()
            .any(|operation| operation.oauth2_scopes() == ["admin"]),
        "some operation is admin-only"
    );
    assert_none(&failures, "with a profile-only credential");
}

#[tokio::test]
async fn an_admin_credential_passes_every_secured_operations_scope_check() {
    let app = spawn_unthrottled().await;
    app.register("chief").await;
    make_admin(&app, "chief").await;
    let mut failures = Vec::new();
    for operation in secured_operations(&app).await {
        // Fresh every time: logout ends the session.
        let token = Credential::Bearer(login_scoped(&app, "chief", None).await);
        let status = operation.call(&app, Some(&token)).await.status().as_u16();
        if status == 401 || status == 403 {
            failures.push(format!("{}: {status}", operation.name()));
        }
    }
    assert_none(&failures, "with an admin token");
}

#[tokio::test]
async fn the_four_security_schemes_are_declared_and_every_secured_operation_lists_them_all() {
    let app = spawn_unthrottled().await;
    let document = document(&app).await;
    let schemes = &document["components"]["securitySchemes"];

    let oauth2 = &schemes["OAuth2"];
    assert_eq!(oauth2["type"], "oauth2", "{schemes}");
    assert_eq!(
        oauth2["flows"]["password"]["tokenUrl"], "/auth/token",
        "{oauth2}"
    );
    let bearer = &schemes["BearerAuth"];
    assert_eq!(bearer["type"], "http", "{bearer}");
    assert_eq!(
        bearer["scheme"].as_str().map(str::to_ascii_lowercase),
        Some("bearer".to_owned()),
        "{bearer}"
    );
    let api_key = &schemes["ApiKeyAuth"];
    assert_eq!(api_key["type"], "apiKey", "{api_key}");
    assert_eq!(api_key["in"], "header", "{api_key}");
    assert_eq!(
        api_key["name"].as_str().map(str::to_ascii_lowercase),
        Some("x-api-key".to_owned()),
        "{api_key}"
    );
    let basic = &schemes["BasicAuth"];
    assert_eq!(basic["type"], "http", "{basic}");
    assert_eq!(
        basic["scheme"].as_str().map(str::to_ascii_lowercase),
        Some("basic".to_owned()),
        "{basic}"
    );

    let all = operations(&document);
    let mut failures = Vec::new();
    for operation in &all {
        // The contract's "user" and "admin" routes must be documented as
        // secured: no operation escapes by being undocumented.
        let must_be_secured = operation.template.starts_with("/users/")
            || operation.template == "/users/me"
            || operation.template.starts_with("/admin/")
            || operation.template == "/auth/logout";
        if must_be_secured && !operation.secured() {
            failures.push(format!("{}: no security requirement", operation.name()));
        }
        if !operation.secured() {
            continue;
        }
        // Alternatives (any one credential), not one requirement naming
        // several schemes, which would demand all of them at once.
        for requirement in &operation.security {
            let names = requirement.as_object().map_or(0, serde_json::Map::len);
            if names != 1 {
                failures.push(format!(
                    "{}: a requirement names {names} schemes at once: {requirement}",
                    operation.name()
                ));
            }
        }
        let listed: Vec<&str> = operation
            .security
            .iter()
            .flat_map(|requirement| {
                requirement
                    .as_object()
                    .expect("a security requirement object")
                    .keys()
                    .map(String::as_str)
            })
            .collect();
        for scheme in SCHEMES {
            if !listed.contains(&scheme) {
                failures.push(format!("{}: does not list {scheme}", operation.name()));
            }
        }
        for name in &listed {
            if !SCHEMES.contains(name) {
                failures.push(format!("{}: lists unknown scheme {name}", operation.name()));
            }
        }
    }
    assert_none(&failures, "security declarations");
}
