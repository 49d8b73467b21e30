//! `GET /users/me` and `PATCH /users/me`: bearer authentication and the
//! profile.

use std::os::unix::fs::PermissionsExt;

use portcullis_crypto::Hs256Key;
use portcullis_tests::{GOOD_PASSWORD, TEST_JWT_SECRET, TestApp, test_args};
use reqwest::Response;
use serde_json::{Value, json};

use crate::support::{
    BEARER_CHALLENGE, expect_problem, header, jwt_claims, jwt_encode_segment, make_admin, mint,
    mint_with_kid, now_unix, set_disabled,
};

/// The challenge of a 401 for a presented but refused credential.
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

/// Asserts a 401 problem whose challenge says the token was refused.
async fn expect_invalid_token(response: Response, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(INVALID_TOKEN_CHALLENGE),
        "{case}"
    );
    expect_problem(response, 401).await;
}

/// Registers and logs in `username`; returns the access token and its claims.
async fn token_and_claims(app: &TestApp, username: &str) -> (String, Value) {
    let token = app.access_token_for(username).await;
    let claims = jwt_claims(&token);
    (token, claims)
}

/// `claims` re-issued now with a fresh `jti`, valid for 15 minutes.
fn fresh_claims(claims: &Value) -> Value {
    let now = now_unix();
    let mut claims = claims.clone();
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    claims["exp"] = json!(now + 900);
    claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
    claims
}

async fn patch_me(app: &TestApp, token: &str, body: &Value) -> Response {
    app.client
        .patch(app.url("/users/me"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn users_me_returns_the_callers_account() {
    let app = TestApp::spawn().await;
    let registered = app.register("meg").await;
    let token = app.login("meg").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app.me(&token).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me, registered, "the same account as registered");
}

#[tokio::test]
async fn users_me_without_a_token_is_401_with_the_bearer_challenge() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/users/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(BEARER_CHALLENGE)
    );
    expect_problem(response, 401).await;
}

#[tokio::test]
async fn a_token_minted_with_the_test_secret_for_a_real_session_is_accepted() {
    // The control for the negative cases below: the minting itself is right.
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "minty").await;
    let token = mint(
        &fresh_claims(&claims),
        Some("at+jwt"),
        TEST_JWT_SECRET.as_bytes(),
    );
    let response = app.me(&token).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["username"], "minty");
}

#[tokio::test]
async fn a_token_naming_the_servers_kid_is_accepted_and_one_naming_another_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "kidded").await;
    let claims = fresh_claims(&claims);
    let secret = TEST_JWT_SECRET.as_bytes();
    let kid = Hs256Key::new(secret).unwrap().kid().to_owned();
    let token = mint_with_kid(&claims, &kid, secret);
    assert_eq!(app.me(&token).await.status(), 200, "the server's kid");

    // The right secret under an id the server does not know: refused, not
    // tried with the legacy key.
    let token = mint_with_kid(&claims, "some-other-key", secret);
    expect_invalid_token(app.me(&token).await, "unknown kid").await;
}

#[tokio::test]
async fn the_bearer_scheme_name_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("lower").await;
    let response = app
        .client
        .get(app.url("/users/me"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_malformed_bearer_value_is_invalid_token() {
    let app = TestApp::spawn().await;
    for value in [
        "Bearer ",
        "Bearer not a token",
        "Bearer abc\"def",
        "Bearer a.b.c",
    ] {
        let response = app
            .client
            .get(app.url("/users/me"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        expect_invalid_token(response, value).await;
    }
}

#[tokio::test]
async fn a_token_without_the_profile_scope_is_403_insufficient_scope() {
    let app = TestApp::spawn().await;
    app.register("boss").await;
    make_admin(&app, "boss").await;
    let grant = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "boss"),
            ("password", GOOD_PASSWORD),
            ("scope", "admin"),
        ])
        .await;
    assert_eq!(grant.status(), 200);
    let grant: Value = grant.json().await.unwrap();
    assert_eq!(grant["scope"], "admin");

    let response = app.me(grant["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 403);
    let challenge = header(response.headers(), "www-authenticate")
        .expect("a challenge naming the scope")
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="profile""#), "{challenge}");
    expect_problem(response, 403).await;
}

#[tokio::test]
async fn a_tampered_token_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (token, claims) = token_and_claims(&app, "tamper").await;
    let parts: Vec<&str> = token.split('.').collect();

    let mut widened = claims.clone();
    widened["scope"] = json!("profile admin");
    let forged = format!("{}.{}.{}", parts[0], jwt_encode_segment(&widened), parts[2]);
    expect_invalid_token(app.me(&forged).await, "claims changed, signature kept").await;

    let mut signature = parts[2].to_owned();
    let last = signature.pop().unwrap();
    signature.push(if last == 'A' { 'Q' } else { 'A' });
    let forged = format!("{}.{}.{}", parts[0], parts[1], signature);
    expect_invalid_token(app.me(&forged).await, "signature changed").await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "otherkey").await;
    let token = mint(
        &fresh_claims(&claims),
        Some("at+jwt"),
        b"another-secret-another-secret-another-secret-0123",
    );
    expect_invalid_token(app.me(&token).await, "another key").await;
}

#[tokio::test]
async fn an_expired_token_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "expired").await;
    let mut claims = fresh_claims(&claims);
    let now = now_unix();
    claims["iat"] = json!(now - 1020);
    claims["nbf"] = json!(now - 1020);
    claims["exp"] = json!(now - 120);
    let token = mint(&claims, Some("at+jwt"), TEST_JWT_SECRET.as_bytes());
    expect_invalid_token(app.me(&token).await, "expired 120 s ago").await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "audience").await;
    let mut claims = fresh_claims(&claims);
    claims["aud"] = json!("some-other-service");
    let token = mint(&claims, Some("at+jwt"), TEST_JWT_SECRET.as_bytes());
    expect_invalid_token(app.me(&token).await, "wrong aud").await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "issuer").await;
    let mut claims = fresh_claims(&claims);
    claims["iss"] = json!("https://elsewhere.example");
    let token = mint(&claims, Some("at+jwt"), TEST_JWT_SECRET.as_bytes());
    expect_invalid_token(app.me(&token).await, "wrong iss").await;
}

#[tokio::test]
async fn a_token_typed_jwt_instead_of_at_jwt_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "typed").await;
    let claims = fresh_claims(&claims);
    let token = mint(&claims, Some("JWT"), TEST_JWT_SECRET.as_bytes());
    expect_invalid_token(app.me(&token).await, "typ JWT").await;
    let token = mint(&claims, None, TEST_JWT_SECRET.as_bytes());
    expect_invalid_token(app.me(&token).await, "no typ").await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "unsigned").await;
    let header = jwt_encode_segment(&json!({"alg": "none", "typ": "at+jwt"}));
    let payload = jwt_encode_segment(&fresh_claims(&claims));
    let token = format!("{header}.{payload}.");
    expect_invalid_token(app.me(&token).await, "alg none").await;
}

#[tokio::test]
async fn a_token_missing_its_session_claim_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "sessionless").await;
    let mut claims = fresh_claims(&claims);
    claims.as_object_mut().unwrap().remove("sid");
    let token = mint(&claims, Some("at+jwt"), TEST_JWT_SECRET.as_bytes());
    expect_invalid_token(app.me(&token).await, "no sid").await;
}

#[tokio::test]
async fn a_token_for_an_unknown_session_is_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, claims) = token_and_claims(&app, "ghost").await;
    let mut claims = fresh_claims(&claims);
    claims["sid"] = json!(uuid::Uuid::new_v4().to_string());
    let token = mint(&claims, Some("at+jwt"), TEST_JWT_SECRET.as_bytes());
    expect_invalid_token(app.me(&token).await, "unknown sid").await;
}

#[tokio::test]
async fn a_token_in_the_query_string_is_not_accepted() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("query").await;
    let response = app
        .client
        .get(app.url(&format!("/users/me?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = header(response.headers(), "www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with(BEARER_CHALLENGE), "{challenge}");
    expect_problem(response, 401).await;
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_re_enabling_lets_them_log_in_again() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("switch").await;
    assert_eq!(app.me(&token).await.status(), 200);

    set_disabled(&app, "switch", true).await;
    expect_invalid_token(app.me(&token).await, "disabled").await;

    // Disabling ends every session (CONTRACT.md, admin PATCH; the domain's
    // `UserStore::set_disabled`), so re-enabling does not revive old tokens;
    // a new login works.
    set_disabled(&app, "switch", false).await;
    expect_invalid_token(app.me(&token).await, "re-enabled, old session").await;
    let fresh = app.login("switch").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.me(&fresh).await.status(), 200, "re-enabled, new login");
}

#[tokio::test]
async fn a_token_survives_a_restart() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("durable").await;
    let app = app.restart().await;
    let response = app.me(&token).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["username"], "durable");
}

#[tokio::test]
async fn a_generated_signing_key_is_kept_with_mode_0600_and_reused_after_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut args = test_args(data_dir.path().join("data"));
    args.jwt_secret = None;
    // The v1 key file is HS256's; EdDSA keys live in the store.
    args.jwt_alg = Some("HS256".to_owned());
    let settings = portcullis::Settings::resolve(&args).unwrap();
    let key_path = settings.key_path();
    let app = TestApp::spawn_with(data_dir, settings).await;
    let token = app.access_token_for("keyed").await;
    assert_eq!(app.me(&token).await.status(), 200);

    // The generated key is not the test secret.
    let claims = fresh_claims(&jwt_claims(&token));
    let foreign = mint(&claims, Some("at+jwt"), TEST_JWT_SECRET.as_bytes());
    expect_invalid_token(app.me(&foreign).await, "signed with the test secret").await;

    let app = app.restart().await;
    assert_eq!(app.me(&token).await.status(), 200, "same key after restart");

    let metadata = std::fs::metadata(&key_path).expect("the key file exists");
    assert!(metadata.is_file());
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        0o600,
        "{}",
        key_path.display()
    );
}

#[tokio::test]
async fn patch_me_changes_email_and_full_name() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("patchy").await;
    let response = patch_me(
        &app,
        &token,
        &json!({
            "email": "new-patchy@example.com",
            "full_name": "Pat Chy",
            "current_password": GOOD_PASSWORD,
        }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["email"], "new-patchy@example.com");
    assert_eq!(updated["full_name"], "Pat Chy");
    assert_eq!(updated["username"], "patchy");

    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me, updated, "the change is stored");
}

#[tokio::test]
async fn patch_me_with_a_null_full_name_clears_it() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("nully").await;
    let set = patch_me(&app, &token, &json!({"full_name": "Some Name"})).await;
    assert_eq!(set.status(), 200);
    let response = patch_me(&app, &token, &json!({"full_name": null})).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert!(updated["full_name"].is_null(), "{updated}");
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert!(me["full_name"].is_null(), "{me}");
}

#[tokio::test]
async fn patch_me_leaves_absent_fields_unchanged() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("absent").await;
    let first = patch_me(&app, &token, &json!({"full_name": "Kept Name"})).await;
    assert_eq!(first.status(), 200);

    let response = patch_me(
        &app,
        &token,
        &json!({"email": "absent2@example.com", "current_password": GOOD_PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["full_name"], "Kept Name", "full_name untouched");
    assert_eq!(updated["email"], "absent2@example.com");

    let response = patch_me(&app, &token, &json!({})).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["full_name"], "Kept Name");
    assert_eq!(updated["email"], "absent2@example.com");
}

#[tokio::test]
async fn patch_me_with_another_users_email_is_409() {
    let app = TestApp::spawn().await;
    app.register("owner").await;
    let token = app.access_token_for("taker").await;
    let response = patch_me(
        &app,
        &token,
        &json!({"email": "OWNER@example.com", "current_password": GOOD_PASSWORD}),
    )
    .await;
    let problem = expect_problem(response, 409).await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["email"], "taker@example.com", "unchanged");
}

#[tokio::test]
async fn patch_me_with_an_invalid_email_is_422_without_echoing_it() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("badmail").await;
    let response = patch_me(
        &app,
        &token,
        &json!({"email": "no-at-sign-zqx", "current_password": GOOD_PASSWORD}),
    )
    .await;
    let problem = expect_problem(response, 422).await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    assert!(!problem.to_string().contains("no-at-sign-zqx"), "{problem}");
}

#[tokio::test]
async fn patch_me_without_a_token_is_401() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .patch(app.url("/users/me"))
        .json(&json!({"full_name": "Nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(response.headers(), "www-authenticate"),
        Some(BEARER_CHALLENGE)
    );
    expect_problem(response, 401).await;
}
