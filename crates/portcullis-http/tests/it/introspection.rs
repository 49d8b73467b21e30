//! `POST /auth/introspect`.

use std::time::Duration;

use portcullis_domain::{ClientInfo, LoginRequest, Password, Role, TokenGrant};
use serde_json::{Value, json};

use crate::fakes::{AUDIENCE, ISSUER, Keys, PASSWORD, TestApp, header, json_of};

const FORM: &str = "application/x-www-form-urlencoded";

async fn app() -> TestApp {
    let app = TestApp::new(Keys::Stored).await;
    app.user("root", Role::Admin).await;
    app.user("alice", Role::User).await;
    app
}

async fn login(app: &TestApp, username: &str) -> TokenGrant {
    app.service
        .login(LoginRequest {
            username: username.to_owned(),
            password: Password::new(PASSWORD.to_owned()),
            scope: None,
            client: ClientInfo::default(),
        })
        .await
        .expect("logged in")
}

/// Introspects `token` as the admin `root` (HTTP Basic).
async fn introspect(app: &TestApp, token: &str) -> Value {
    let body = format!("token={}", percent_encode(token));
    let (status, _, answer) = json_of(
        app.client
            .post("/auth/introspect")
            .header("authorization", TestApp::basic("root"))
            .content_type(FORM)
            .body(body)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn member_names(answer: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = answer
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn an_active_access_token_answers_every_member_of_its_kind() {
    let app = app().await;
    let grant = login(&app, "alice").await;
    let answer = introspect(&app, &grant.access_token).await;
    assert_eq!(
        member_names(&answer),
        [
            "active",
            "aud",
            "exp",
            "iat",
            "iss",
            "jti",
            "scope",
            "sid",
            "sub",
            "token_type",
            "username"
        ]
    );
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "profile");
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["iss"], ISSUER);
    assert_eq!(answer["aud"], AUDIENCE);
    assert_eq!(answer["sid"], grant.session_id.to_string());
    assert_eq!(answer["iat"], 1_800_000_000);
    assert_eq!(answer["exp"], 1_800_000_900);
}

#[tokio::test]
async fn a_refresh_token_is_active_until_it_is_rotated() {
    let app = app().await;
    let grant = login(&app, "alice").await;
    let answer = introspect(&app, &grant.refresh_token).await;
    assert_eq!(
        member_names(&answer),
        [
            "active",
            "exp",
            "iat",
            "iss",
            "scope",
            "sid",
            "sub",
            "token_type",
            "username"
        ]
    );
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["sid"], grant.session_id.to_string());
    assert_eq!(answer["iat"], 1_800_000_000);
    // The idle limit (7 days) comes before the absolute one (30 days).
    assert_eq!(answer["exp"], 1_800_000_000 + 604_800);

    app.clock.advance(Duration::from_secs(10));
    let rotated = app
        .service
        .refresh(portcullis_domain::RefreshRequest {
            refresh_token: grant.refresh_token.clone(),
            scope: None,
            client: ClientInfo::default(),
        })
        .await
        .expect("rotated");
    assert_eq!(
        introspect(&app, &grant.refresh_token).await,
        json!({"active": false})
    );
    // Introspecting the used token did not count as a replay: the session
    // and its new refresh token live on.
    let fresh = introspect(&app, &rotated.refresh_token).await;
    assert_eq!(fresh["active"], true, "{fresh}");
    assert_eq!(fresh["iat"], 1_800_000_010);
}

#[tokio::test]
async fn an_api_key_answers_its_members_and_is_inactive_once_revoked() {
    let app = app().await;
    let (status, _, created) = json_of(
        app.client
            .post("/users/me/api-keys")
            .header("authorization", TestApp::basic("alice"))
            .body_json(&json!({"name": "ci", "expires_in_days": 1}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("key");
    let answer = introspect(&app, key).await;
    assert_eq!(
        member_names(&answer),
        [
            "active",
            "exp",
            "iat",
            "iss",
            "jti",
            "scope",
            "sub",
            "token_type",
            "username"
        ]
    );
    assert_eq!(answer["token_type"], "api_key");
    assert_eq!(answer["jti"], created["id"]);
    assert_eq!(answer["exp"], 1_800_000_000 + 86_400);

    let id = created["id"].as_str().expect("id");
    let response = app
        .client
        .delete(format!("/users/me/api-keys/{id}"))
        .header("authorization", TestApp::basic("alice"))
        .send()
        .await;
    assert_eq!(response.status, 204, "{:?}", response.body);
    assert_eq!(introspect(&app, key).await, json!({"active": false}));
}

#[tokio::test]
async fn after_logout_the_access_and_refresh_tokens_are_inactive_at_once() {
    let app = app().await;
    let grant = login(&app, "alice").await;
    let response = app
        .client
        .post("/auth/logout")
        .header("authorization", format!("Bearer {}", grant.access_token))
        .send()
        .await;
    assert_eq!(response.status, 204, "{:?}", response.body);
    assert_eq!(
        introspect(&app, &grant.access_token).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &grant.refresh_token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn an_expired_access_token_is_inactive() {
    let app = app().await;
    let grant = login(&app, "alice").await;
    app.clock.advance(Duration::from_secs(901));
    assert_eq!(
        introspect(&app, &grant.access_token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn garbage_of_every_shape_is_exactly_inactive() {
    let app = app().await;
    let long = "a".repeat(10_000);
    let forged_key = format!("pcl_{}", "A".repeat(43));
    for garbage in [
        "x",
        "not.a.jwt",
        "eyJhbGciOiJub25lIn0.e30.",
        forged_key.as_str(),
        "pcl_short",
        "refresh-unknown",
        "\u{0}\u{1}é🦀",
        long.as_str(),
    ] {
        assert_eq!(
            introspect(&app, garbage).await,
            json!({"active": false}),
            "{garbage:.20}"
        );
    }
}

#[tokio::test]
async fn a_hint_of_the_wrong_kind_still_finds_the_token() {
    let app = app().await;
    let grant = login(&app, "alice").await;
    for hint in ["refresh_token", "api_key", "bogus"] {
        let (status, _, answer) = json_of(
            app.client
                .post("/auth/introspect")
                .header("authorization", TestApp::basic("root"))
                .content_type(FORM)
                .body(format!(
                    "token={}&token_type_hint={hint}",
                    grant.access_token
                ))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(answer["token_type"], "Bearer", "hint {hint}");
    }
}

#[tokio::test]
async fn without_a_credential_401_and_with_a_user_credential_403_insufficient_scope() {
    let app = app().await;
    let grant = login(&app, "alice").await;
    let body = format!("token={}", grant.access_token);
    let (status, headers, problem) = json_of(
        app.client
            .post("/auth/introspect")
            .content_type(FORM)
            .body(body.clone())
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(
        header(&headers, "www-authenticate"),
        Some(r#"Bearer realm="portcullis""#)
    );
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );

    for credential in [
        format!("Bearer {}", grant.access_token),
        TestApp::basic("alice"),
    ] {
        let (status, headers, problem) = json_of(
            app.client
                .post("/auth/introspect")
                .header("authorization", credential)
                .content_type(FORM)
                .body(body.clone())
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some(r#"Bearer realm="portcullis", error="insufficient_scope", scope="introspect""#)
        );
        assert_eq!(problem["status"], 403);
    }
}

#[tokio::test]
async fn a_user_cannot_be_granted_the_introspect_scope() {
    let app = app().await;
    let (status, _, body) = json_of(
        app.client
            .post("/auth/token")
            .content_type(FORM)
            .body(format!(
                "grant_type=password&username=alice&password={}&scope=introspect",
                percent_encode(PASSWORD)
            ))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    let (status, _, problem) = json_of(
        app.client
            .post("/users/me/api-keys")
            .header("authorization", TestApp::basic("alice"))
            .body_json(&json!({"name": "sneaky", "scopes": ["introspect"]}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 422, "{problem}");
}

#[tokio::test]
async fn an_admins_api_key_holding_introspect_alone_may_introspect() {
    let app = app().await;
    let (status, _, created) = json_of(
        app.client
            .post("/users/me/api-keys")
            .header("authorization", TestApp::basic("root"))
            .body_json(&json!({"name": "resource server", "scopes": ["introspect"]}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("key");
    let grant = login(&app, "alice").await;
    let (status, _, answer) = json_of(
        app.client
            .post("/auth/introspect")
            .header("x-api-key", key)
            .content_type(FORM)
            .body(format!("token={}", grant.access_token))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["active"], true);
    // That key can do nothing else.
    let response = app
        .client
        .get("/users/me")
        .header("x-api-key", key)
        .send()
        .await;
    assert_eq!(response.status, 403, "{:?}", response.body);
}

#[tokio::test]
async fn a_missing_token_is_422_and_a_repeated_one_400_as_problems() {
    let app = app().await;
    for (body, status) in [("", 422), ("token=", 422), ("token=a&token=b", 400)] {
        let (got, headers, problem) = json_of(
            app.client
                .post("/auth/introspect")
                .header("authorization", TestApp::basic("root"))
                .content_type(FORM)
                .body(body)
                .send()
                .await,
        )
        .await;
        assert_eq!(got, status, "{body:?}: {problem}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("application/problem+json")
        );
    }
    let (got, _, problem) = json_of(
        app.client
            .post("/auth/introspect")
            .header("authorization", TestApp::basic("root"))
            .body_json(&json!({"token": "x"}))
            .send()
            .await,
    )
    .await;
    assert_eq!(got, 415, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("x-www-form-urlencoded"))
    );
}
