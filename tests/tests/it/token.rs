//! `POST /auth/token` (password grant), `POST /auth/login`, and the access
//! token they issue.

use portcullis_crypto::Hs256Key;
use portcullis_tests::{GOOD_PASSWORD, TEST_JWT_SECRET, TestApp};
use reqwest::Response;
use serde_json::{Value, json};

use crate::support::{
    expect_oauth_error, expect_oauth_error_with_status, header, jwt_claims, jwt_segment,
    make_admin, media_type, set_disabled,
};

fn password_grant<'a>(username: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ]
}

/// Asserts a successful token response (status, headers, body) and returns its body.
async fn expect_tokens(response: Response) -> Value {
    assert_eq!(response.status(), 200, "status of {}", response.url());
    assert_eq!(
        header(response.headers(), "cache-control"),
        Some("no-store")
    );
    assert_eq!(header(response.headers(), "pragma"), Some("no-cache"));
    assert_eq!(media_type(response.headers()), "application/json");
    let body: Value = response.json().await.expect("token JSON");
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "access_token in {body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    assert!(
        refresh.len() >= 43,
        "a refresh token of at least 256 bits in base64url is at least 43 characters, got {}",
        refresh.len()
    );
    assert!(body["scope"].is_string(), "scope in {body}");
    body
}

async fn login_json(app: &TestApp, body: &Value) -> Response {
    app.client
        .post(app.url("/auth/login"))
        .json(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn the_password_grant_answers_tokens_with_no_store_and_no_cache() {
    let app = TestApp::spawn().await;
    app.register("tess").await;
    let response = app.token_form(&password_grant("tess", GOOD_PASSWORD)).await;
    let body = expect_tokens(response).await;
    assert_eq!(body["scope"], "profile");
}

#[tokio::test]
async fn swagger_uis_extra_client_id_and_empty_scope_parameters_are_accepted() {
    let app = TestApp::spawn().await;
    app.register("swagger").await;
    let mut params = password_grant("swagger", GOOD_PASSWORD);
    params.extend([("client_id", ""), ("client_secret", ""), ("scope", "")]);
    let body = expect_tokens(app.token_form(&params).await).await;
    assert_eq!(body["scope"], "profile");
}

#[tokio::test]
async fn a_missing_grant_type_is_invalid_request() {
    let app = TestApp::spawn().await;
    app.register("nogrant").await;
    let response = app
        .token_form(&[("username", "nogrant"), ("password", GOOD_PASSWORD)])
        .await;
    expect_oauth_error(response, "invalid_request").await;
}

#[tokio::test]
async fn a_missing_password_is_invalid_request() {
    let app = TestApp::spawn().await;
    app.register("nopass").await;
    let response = app
        .token_form(&[("grant_type", "password"), ("username", "nopass")])
        .await;
    expect_oauth_error(response, "invalid_request").await;
}

#[tokio::test]
async fn a_duplicated_parameter_is_invalid_request() {
    let app = TestApp::spawn().await;
    app.register("twice").await;
    let mut params = password_grant("twice", GOOD_PASSWORD);
    params.push(("username", "twice"));
    let response = app.token_form(&params).await;
    expect_oauth_error(response, "invalid_request").await;

    let mut params = password_grant("twice", GOOD_PASSWORD);
    params.push(("grant_type", "password"));
    let response = app.token_form(&params).await;
    expect_oauth_error(response, "invalid_request").await;
}

#[tokio::test]
async fn the_client_credentials_grant_is_unsupported() {
    let app = TestApp::spawn().await;
    let response = app
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ])
        .await;
    expect_oauth_error(response, "unsupported_grant_type").await;
}

#[tokio::test]
async fn wrong_password_unknown_user_and_disabled_user_get_identical_invalid_grant_answers() {
    let app = TestApp::spawn().await;
    app.register("known").await;
    app.register("sleeper").await;
    set_disabled(&app, "sleeper", true).await;

    let mut bodies = Vec::new();
    for (username, password) in [
        ("known", "a wrong password of some length"),
        ("nobody-here", GOOD_PASSWORD),
        ("sleeper", GOOD_PASSWORD),
    ] {
        let response = app.token_form(&password_grant(username, password)).await;
        assert_eq!(response.status(), 400, "{username}");
        assert!(response.headers().get("www-authenticate").is_none());
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"], "invalid_grant", "{username}: {body}");
        assert!(!text.contains(password), "the password is echoed: {text}");
        bodies.push(text);
    }
    assert_eq!(bodies[0], bodies[1], "wrong password vs unknown user");
    assert_eq!(bodies[0], bodies[2], "wrong password vs disabled user");
}

#[tokio::test]
async fn a_non_admin_asking_for_the_admin_scope_gets_invalid_scope() {
    let app = TestApp::spawn().await;
    app.register("plain").await;
    let mut params = password_grant("plain", GOOD_PASSWORD);
    params.push(("scope", "admin"));
    expect_oauth_error(app.token_form(&params).await, "invalid_scope").await;

    let mut params = password_grant("plain", GOOD_PASSWORD);
    params.push(("scope", "profile admin"));
    expect_oauth_error(app.token_form(&params).await, "invalid_scope").await;
}

#[tokio::test]
async fn an_unknown_scope_is_invalid_scope() {
    let app = TestApp::spawn().await;
    app.register("curious").await;
    let mut params = password_grant("curious", GOOD_PASSWORD);
    params.push(("scope", "unknown"));
    expect_oauth_error(app.token_form(&params).await, "invalid_scope").await;
}

#[tokio::test]
async fn the_username_is_case_insensitive_at_login() {
    let app = TestApp::spawn().await;
    app.register("dora").await;
    let body = expect_tokens(app.token_form(&password_grant("DoRa", GOOD_PASSWORD)).await).await;
    let me: Value = app
        .me(body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "dora");
}

#[tokio::test]
async fn the_password_is_not_case_folded_at_login() {
    let app = TestApp::spawn().await;
    app.register("casey").await;
    let response = app
        .token_form(&password_grant("casey", &GOOD_PASSWORD.to_uppercase()))
        .await;
    expect_oauth_error(response, "invalid_grant").await;
}

#[tokio::test]
async fn asking_for_the_profile_scope_grants_profile() {
    let app = TestApp::spawn().await;
    app.register("narrow").await;
    let mut params = password_grant("narrow", GOOD_PASSWORD);
    params.push(("scope", "profile"));
    let body = expect_tokens(app.token_form(&params).await).await;
    assert_eq!(body["scope"], "profile");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "profile");
}

#[tokio::test]
async fn an_admin_gets_profile_admin_and_introspect_by_default_and_can_narrow_to_profile() {
    let app = TestApp::spawn().await;
    app.register("root").await;
    make_admin(&app, "root").await;

    let body = expect_tokens(app.token_form(&password_grant("root", GOOD_PASSWORD)).await).await;
    assert_eq!(body["scope"], "profile admin introspect");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["scope"],
        "profile admin introspect"
    );

    let mut params = password_grant("root", GOOD_PASSWORD);
    params.push(("scope", "profile"));
    let body = expect_tokens(app.token_form(&params).await).await;
    assert_eq!(body["scope"], "profile");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["scope"],
        "profile"
    );
}

#[tokio::test]
async fn a_json_body_on_the_token_endpoint_is_415_with_an_oauth_error_body() {
    let app = TestApp::spawn().await;
    app.register("jsonish").await;
    let response = app
        .client
        .post(app.url("/auth/token"))
        .json(&json!({"grant_type": "password", "username": "jsonish", "password": GOOD_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body = expect_oauth_error_with_status(response, 415, "invalid_request").await;
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error", "error_description"], "{body}");
}

#[tokio::test]
async fn a_token_request_over_64_kib_is_413_with_an_oauth_error_body() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(64 * 1024);
    let response = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "anyone"),
            ("password", &padding),
        ])
        .await;
    let body = expect_oauth_error_with_status(response, 413, "invalid_request").await;
    assert!(!body.to_string().contains(&padding[..64]));
}

#[tokio::test]
async fn the_json_login_answers_like_the_password_grant() {
    let app = TestApp::spawn().await;
    app.register("jason").await;
    let body = expect_tokens(
        login_json(
            &app,
            &json!({"username": "Jason", "password": GOOD_PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(body["scope"], "profile");
    assert_eq!(
        app.me(body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    let body = expect_tokens(
        login_json(
            &app,
            &json!({"username": "jason", "password": GOOD_PASSWORD, "scope": "profile"}),
        )
        .await,
    )
    .await;
    assert_eq!(body["scope"], "profile");
}

#[tokio::test]
async fn the_json_login_without_a_password_is_invalid_request() {
    let app = TestApp::spawn().await;
    app.register("halfway").await;
    let response = login_json(&app, &json!({"username": "halfway"})).await;
    expect_oauth_error(response, "invalid_request").await;
}

#[tokio::test]
async fn the_json_login_with_a_wrong_password_is_invalid_grant() {
    let app = TestApp::spawn().await;
    app.register("wrongly").await;
    let response = login_json(
        &app,
        &json!({"username": "wrongly", "password": "definitely not the password"}),
    )
    .await;
    expect_oauth_error(response, "invalid_grant").await;
}

#[tokio::test]
async fn the_json_login_with_an_admin_scope_for_a_user_is_invalid_scope() {
    let app = TestApp::spawn().await;
    app.register("climber").await;
    let response = login_json(
        &app,
        &json!({"username": "climber", "password": GOOD_PASSWORD, "scope": "admin"}),
    )
    .await;
    expect_oauth_error(response, "invalid_scope").await;
}

#[tokio::test]
async fn the_access_token_is_an_rfc_9068_jwt_with_every_required_claim() {
    let app = TestApp::spawn().await;
    let user = app.register("claims").await;
    let token = app.login("claims").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "a compact JWS");

    let header = jwt_segment(&token, 0);
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(header["alg"], "HS256", "{header}");

    let claims = jwt_claims(&token);
    for claim in [
        "iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "scope",
    ] {
        assert!(
            claims.get(claim).is_some_and(|v| !v.is_null()),
            "claim `{claim}` in {claims}"
        );
    }
    assert_eq!(claims["sub"], user["id"], "sub is the user id");
    // v2: the issuer defaults to the public URL, the server's own address.
    assert_eq!(claims["iss"], app.base.as_str(), "iss is the public URL");
    let aud_ok = claims["aud"] == "portcullis" || claims["aud"] == json!(["portcullis"]);
    assert!(aud_ok, "aud is portcullis: {claims}");
    assert_eq!(claims["scope"], "profile");
    let (exp, iat, nbf) = (
        claims["exp"].as_i64().unwrap(),
        claims["iat"].as_i64().unwrap(),
        claims["nbf"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 900, "lifetime is the default access TTL");
    assert!(nbf <= iat + 1, "nbf {nbf} is not after iat {iat}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty())
            && claims["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "jti and sid are non-empty strings: {claims}"
    );

    let second = app.login("claims").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_claims = jwt_claims(&second);
    assert_ne!(
        claims["jti"], second_claims["jti"],
        "each token has its own jti"
    );
    assert_ne!(
        claims["sid"], second_claims["sid"],
        "each login starts a session"
    );
}

#[tokio::test]
async fn the_access_token_header_names_the_key_that_signed_it() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("kid").await;
    let header = jwt_segment(&token, 0);
    let kid = Hs256Key::new(TEST_JWT_SECRET.as_bytes()).unwrap();
    assert_eq!(header["kid"], kid.kid(), "{header}");
    assert_eq!(
        header.as_object().map(|fields| fields.len()),
        Some(3),
        "typ, alg and kid only: {header}"
    );
}
