//! The life of a session: refresh-token rotation and reuse detection,
//! revocation (RFC 7009), logout, session listing and ending, password change,
//! account deletion, expiry, and revoked state across a restart.

use std::time::Duration;

use portcullis_tests::{GOOD_PASSWORD, TestApp, test_args};
use reqwest::Response;
use serde_json::{Value, json};

use crate::support::{
    BEARER_CHALLENGE, error_fields, expect_oauth_error, expect_problem, header, jwt_claims,
    make_admin, media_type, set_disabled,
};

/// A password that passes the policy and differs from [`GOOD_PASSWORD`].
const NEW_PASSWORD: &str = "violet lantern orbit meadow";

/// Starts an app whose login limiter never gets in the way of these tests
/// (they are about sessions, not about rate limiting).
async fn spawn() -> TestApp {
    spawn_tuned(|_| {}).await
}

/// Starts an app like [`spawn`] with further changes to its settings.
async fn spawn_tuned(tune: impl FnOnce(&mut portcullis::SettingsArgs)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = test_args(data_dir.path().join("data"));
    args.login_per_ip_per_min = Some(10_000);
    args.login_per_user_per_min = Some(10_000);
    tune(&mut args);
    let settings = portcullis::Settings::resolve(&args).expect("valid settings");
    TestApp::spawn_with(data_dir, settings).await
}

/// The tokens of one session.
#[derive(Debug, Clone)]
struct Tokens {
    access: String,
    refresh: String,
}

impl Tokens {
    fn from_grant(grant: &Value) -> Self {
        Self {
            access: grant["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh: grant["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }

    /// The session id (`sid`) of the access token.
    fn sid(&self) -> String {
        jwt_claims(&self.access)["sid"]
            .as_str()
            .expect("sid claim")
            .to_owned()
    }
}

/// Logs `username` in with [`GOOD_PASSWORD`]: a new session.
async fn session(app: &TestApp, username: &str) -> Tokens {
    Tokens::from_grant(&app.login(username).await)
}

/// Password grant with an explicit password, answer unchecked.
async fn login_with(app: &TestApp, username: &str, password: &str) -> Response {
    app.token_form(&[
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ])
    .await
}

/// Password grant sending `user_agent` as the `User-Agent` header.
async fn session_with_agent(app: &TestApp, username: &str, user_agent: &str) -> Tokens {
    let response = app
        .client
        .post(app.url("/auth/token"))
        .header("user-agent", user_agent)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "logging in {username}");
    Tokens::from_grant(&response.json().await.expect("token json"))
}

/// The refresh-token grant, answer unchecked.
async fn refresh(app: &TestApp, refresh_token: &str) -> Response {
    app.token_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ])
    .await
}

/// The refresh-token grant with a `scope`, answer unchecked.
async fn refresh_scoped(app: &TestApp, refresh_token: &str, scope: &str) -> Response {
    app.token_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("scope", scope),
    ])
    .await
}

/// Refreshes and asserts success; returns the new tokens.
async fn rotate(app: &TestApp, refresh_token: &str) -> Tokens {
    let response = refresh(app, refresh_token).await;
    assert_eq!(response.status(), 200, "refreshing");
    Tokens::from_grant(&response.json().await.expect("token json"))
}

/// `POST /auth/revoke` with form parameters.
async fn revoke(app: &TestApp, params: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url("/auth/revoke"))
        .form(params)
        .send()
        .await
        .expect("request")
}

/// Asserts an RFC 7009 success: 200 with an empty body.
async fn expect_revoked_ok(response: Response, case: &str) {
    assert_eq!(response.status(), 200, "revoking {case}");
    let body = response.text().await.expect("body");
    assert!(body.is_empty(), "revoking {case}: body {body:?}");
}

/// `POST /auth/logout` with an optional `scope`.
async fn logout(app: &TestApp, access_token: &str, scope: Option<&str>) -> Response {
    let path = match scope {
        Some(scope) => format!("/auth/logout?scope={scope}"),
        None => "/auth/logout".to_owned(),
    };
    app.client
        .post(app.url(&path))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("request")
}

/// `POST /users/me/password`.
async fn change_password(app: &TestApp, access_token: &str, current: &str, new: &str) -> Response {
    app.client
        .post(app.url("/users/me/password"))
        .bearer_auth(access_token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .expect("request")
}

/// `DELETE /users/me`.
async fn delete_me(app: &TestApp, access_token: &str, password: &str) -> Response {
    app.client
        .delete(app.url("/users/me"))
        .bearer_auth(access_token)
        .json(&json!({"password": password}))
        .send()
        .await
        .expect("request")
}

/// `GET /users/me/sessions`, asserting 200; returns the list.
async fn list_sessions(app: &TestApp, access_token: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url("/users/me/sessions"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "listing sessions");
    let body: Value = response.json().await.expect("sessions json");
    body.as_array().expect("a JSON array of sessions").clone()
}

/// `DELETE /users/me/sessions/{id}`.
async fn end_session(app: &TestApp, access_token: &str, id: &str) -> Response {
    app.client
        .delete(app.url(&format!("/users/me/sessions/{id}")))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("request")
}

/// Asserts a 401 whose challenge says the presented token was refused.
async fn expect_invalid_token(response: Response, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    let challenge = header(response.headers(), "www-authenticate")
        .unwrap_or_default()
        .to_owned();
    assert!(
        challenge.starts_with(BEARER_CHALLENGE),
        "{case}: challenge {challenge:?}"
    );
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{case}: challenge {challenge:?}"
    );
    expect_problem(response, 401).await;
}

/// Asserts the access token still authenticates.
async fn expect_alive(app: &TestApp, access_token: &str, case: &str) {
    assert_eq!(app.me(access_token).await.status(), 200, "{case}");
}

/// Asserts both tokens of a session are dead: the access token is a 401
/// `invalid_token` and the refresh token `invalid_grant`.
async fn expect_session_dead(app: &TestApp, tokens: &Tokens, case: &str) {
    expect_invalid_token(app.me(&tokens.access).await, case).await;
    expect_oauth_error(refresh(app, &tokens.refresh).await, "invalid_grant").await;
}

// --- refresh -----------------------------------------------------------------

#[tokio::test]
async fn a_refresh_returns_a_new_refresh_token_and_a_working_access_token_for_the_same_session() {
    let app = spawn().await;
    app.register("fresh").await;
    let first = session(&app, "fresh").await;

    let response = refresh(&app, &first.refresh).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(response.headers(), "cache-control"),
        Some("no-store")
    );
    assert_eq!(header(response.headers(), "pragma"), Some("no-cache"));
    assert_eq!(media_type(response.headers()), "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 900, "{body}");
    assert_eq!(body["scope"], "profile", "{body}");
    let second = Tokens::from_grant(&body);

    assert_ne!(second.refresh, first.refresh, "a new refresh token");
    assert!(second.refresh.len() >= 43, "at least 256 bits");
    assert_ne!(second.access, first.access, "a new access token");
    let (old, new) = (jwt_claims(&first.access), jwt_claims(&second.access));
    assert_eq!(new["sid"], old["sid"], "the same session");
    assert_eq!(new["sub"], old["sub"], "the same user");
    assert_ne!(new["jti"], old["jti"], "a new token id");

    let me = app.me(&second.access).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], "fresh");

    // The new refresh token is itself usable, and again rotated.
    let third = rotate(&app, &second.refresh).await;
    assert_ne!(third.refresh, second.refresh);
    assert_eq!(third.sid(), first.sid());
}

#[tokio::test]
async fn replaying_a_rotated_refresh_token_ends_the_whole_session() {
    let app = spawn().await;
    app.register("replay").await;
    let first = session(&app, "replay").await;
    let mut latest = first.clone();
    for _ in 0..3 {
        latest = rotate(&app, &latest.refresh).await;
    }
    expect_alive(&app, &latest.access, "before the replay").await;

    expect_oauth_error(refresh(&app, &first.refresh).await, "invalid_grant").await;

    // RFC 9700 §4.14.2: the reuse ends the session, the newest tokens too.
    expect_oauth_error(refresh(&app, &latest.refresh).await, "invalid_grant").await;
    expect_invalid_token(
        app.me(&latest.access).await,
        "newest access token after a replay",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_concurrent_refreshes_with_one_token_exactly_one_succeeds() {
    let app = spawn().await;
    app.register("racer").await;
    let tokens = session(&app, "racer").await;

    let url = app.url("/auth/token");
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = app.client.clone();
        let url = url.clone();
        let token = tokens.refresh.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let response = client
                .post(url)
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("a JSON body");
            (status, body)
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }

    let successes = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(successes, 1, "exactly one success among {answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
}

#[tokio::test]
async fn an_admin_can_narrow_the_scope_on_refresh() {
    let app = spawn().await;
    app.register("chief").await;
    make_admin(&app, "chief").await;
    let tokens = session(&app, "chief").await;
    let granted = jwt_claims(&tokens.access)["scope"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut granted: Vec<&str> = granted.split(' ').collect();
    granted.sort_unstable();
    assert_eq!(
        granted,
        ["admin", "introspect", "profile"],
        "the admin's login grant"
    );

    let response = refresh_scoped(&app, &tokens.refresh, "profile").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "profile", "{body}");
    let narrowed = Tokens::from_grant(&body);
    assert_eq!(jwt_claims(&narrowed.access)["scope"], "profile");
    expect_alive(&app, &narrowed.access, "the narrowed token").await;
}

#[tokio::test]
async fn a_user_asking_for_the_admin_scope_on_refresh_gets_invalid_scope_and_keeps_the_token() {
    let app = spawn().await;
    app.register("plain").await;
    let tokens = session(&app, "plain").await;

    expect_oauth_error(
        refresh_scoped(&app, &tokens.refresh, "admin").await,
        "invalid_scope",
    )
    .await;
    expect_oauth_error(
        refresh_scoped(&app, &tokens.refresh, "profile admin").await,
        "invalid_scope",
    )
    .await;

    // The refused request did not consume the token or end the session.
    expect_alive(&app, &tokens.access, "after invalid_scope").await;
    let next = rotate(&app, &tokens.refresh).await;
    assert_eq!(jwt_claims(&next.access)["scope"], "profile");
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token_and_an_access_token_is_not_a_refresh_token() {
    let app = spawn().await;
    app.register("mixup").await;
    let tokens = session(&app, "mixup").await;

    expect_invalid_token(app.me(&tokens.refresh).await, "refresh token as bearer").await;
    expect_oauth_error(refresh(&app, &tokens.access).await, "invalid_grant").await;

    // Neither mistake harmed the session.
    expect_alive(&app, &tokens.access, "after the mix-ups").await;
    rotate(&app, &tokens.refresh).await;
}

// --- the access token dies with its session ----------------------------------

#[tokio::test]
async fn after_a_local_logout_the_sessions_tokens_are_refused() {
    let app = spawn().await;
    app.register("leaver").await;
    let tokens = session(&app, "leaver").await;
    expect_alive(&app, &tokens.access, "before logout").await;

    let response = logout(&app, &tokens.access, Some("local")).await;
    assert_eq!(response.status(), 204);
    expect_session_dead(&app, &tokens, "after logout").await;
}

#[tokio::test]
async fn revoking_the_refresh_token_ends_the_session_and_its_access_token() {
    let app = spawn().await;
    app.register("revref").await;
    let tokens = session(&app, "revref").await;
    expect_alive(&app, &tokens.access, "before revocation").await;

    expect_revoked_ok(
        revoke(
            &app,
            &[
                ("token", &tokens.refresh),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await,
        "the refresh token",
    )
    .await;
    expect_session_dead(&app, &tokens, "refresh token revoked").await;
}

#[tokio::test]
async fn revoking_the_access_token_ends_the_session_and_its_refresh_token() {
    let app = spawn().await;
    app.register("revacc").await;
    let tokens = session(&app, "revacc").await;
    expect_alive(&app, &tokens.access, "before revocation").await;

    expect_revoked_ok(
        revoke(
            &app,
            &[
                ("token", &tokens.access),
                ("token_type_hint", "access_token"),
            ],
        )
        .await,
        "the access token",
    )
    .await;
    expect_session_dead(&app, &tokens, "access token revoked").await;
}

#[tokio::test]
async fn a_password_change_from_another_session_ends_this_one() {
    let app = spawn().await;
    app.register("victim").await;
    let this = session(&app, "victim").await;
    let other = session(&app, "victim").await;
    expect_alive(&app, &this.access, "before the change").await;

    let response = change_password(&app, &other.access, GOOD_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 204);
    expect_session_dead(&app, &this, "password changed elsewhere").await;
}

#[tokio::test]
async fn deleting_the_account_ends_its_sessions() {
    let app = spawn().await;
    app.register("goner").await;
    let this = session(&app, "goner").await;
    let other = session(&app, "goner").await;

    let response = delete_me(&app, &this.access, GOOD_PASSWORD).await;
    assert_eq!(response.status(), 204);
    expect_session_dead(&app, &this, "account deleted, the deleting session").await;
    expect_session_dead(&app, &other, "account deleted, another session").await;
}

#[tokio::test]
async fn disabling_the_user_ends_their_sessions_tokens() {
    let app = spawn().await;
    app.register("benched").await;
    let tokens = session(&app, "benched").await;
    expect_alive(&app, &tokens.access, "before disabling").await;

    set_disabled(&app, "benched", true).await;
    expect_session_dead(&app, &tokens, "user disabled").await;
}

// --- logout scopes ------------------------------------------------------------

#[tokio::test]
async fn logout_others_keeps_this_session_and_ends_the_rest() {
    let app = spawn().await;
    app.register("triple").await;
    let a = session(&app, "triple").await;
    let b = session(&app, "triple").await;
    let c = session(&app, "triple").await;

    assert_eq!(logout(&app, &a.access, Some("others")).await.status(), 204);
    expect_alive(&app, &a.access, "A after logging out the others").await;
    expect_session_dead(&app, &b, "B after others").await;
    expect_session_dead(&app, &c, "C after others").await;
    // A's refresh token still works.
    rotate(&app, &a.refresh).await;
}

#[tokio::test]
async fn logout_global_ends_every_session_of_the_user_only() {
    let app = spawn().await;
    app.register("global").await;
    app.register("bystander").await;
    let a = session(&app, "global").await;
    let b = session(&app, "global").await;
    let c = session(&app, "global").await;
    let stranger = session(&app, "bystander").await;

    assert_eq!(logout(&app, &a.access, Some("global")).await.status(), 204);
    expect_session_dead(&app, &a, "A after global").await;
    expect_session_dead(&app, &b, "B after global").await;
    expect_session_dead(&app, &c, "C after global").await;
    expect_alive(&app, &stranger.access, "another user's session").await;
}

#[tokio::test]
async fn logout_without_a_scope_ends_only_this_session() {
    let app = spawn().await;
    app.register("default").await;
    let a = session(&app, "default").await;
    let b = session(&app, "default").await;
    let c = session(&app, "default").await;

    assert_eq!(logout(&app, &a.access, None).await.status(), 204);
    expect_session_dead(&app, &a, "A after a plain logout").await;
    expect_alive(&app, &b.access, "B after A's plain logout").await;
    expect_alive(&app, &c.access, "C after A's plain logout").await;
}

#[tokio::test]
async fn logout_with_an_unknown_scope_is_422_and_ends_nothing() {
    let app = spawn().await;
    app.register("oddscope").await;
    let a = session(&app, "oddscope").await;
    let b = session(&app, "oddscope").await;

    expect_problem(logout(&app, &a.access, Some("everything")).await, 422).await;
    expect_alive(&app, &a.access, "A after a refused logout").await;
    expect_alive(&app, &b.access, "B after a refused logout").await;
}

// --- revocation edge cases ----------------------------------------------------

#[tokio::test]
async fn revoking_unknown_malformed_or_already_revoked_tokens_answers_200() {
    let app = spawn().await;
    app.register("bystand").await;
    let live = session(&app, "bystand").await;

    for junk in [
        "garbage-token-value",
        "x",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
    ] {
        expect_revoked_ok(revoke(&app, &[("token", junk)]).await, junk).await;
        expect_revoked_ok(
            revoke(
                &app,
                &[("token", junk), ("token_type_hint", "refresh_token")],
            )
            .await,
            junk,
        )
        .await;
    }
    // An unknown hint is ignored, not refused (RFC 7009 §2.1).
    expect_revoked_ok(
        revoke(&app, &[("token", "junk"), ("token_type_hint", "id_token")]).await,
        "an unknown hint",
    )
    .await;

    let dead = session(&app, "bystand").await;
    expect_revoked_ok(revoke(&app, &[("token", &dead.refresh)]).await, "once").await;
    expect_revoked_ok(revoke(&app, &[("token", &dead.refresh)]).await, "twice").await;
    expect_revoked_ok(revoke(&app, &[("token", &dead.access)]).await, "its access").await;
    expect_session_dead(&app, &dead, "revoked session").await;

    // None of it touched the live session.
    expect_alive(&app, &live.access, "the untouched session").await;
    rotate(&app, &live.refresh).await;
}

#[tokio::test]
async fn a_wrong_token_type_hint_still_revokes() {
    let app = spawn().await;
    app.register("hinted").await;

    let by_refresh = session(&app, "hinted").await;
    expect_revoked_ok(
        revoke(
            &app,
            &[
                ("token", &by_refresh.refresh),
                ("token_type_hint", "access_token"),
            ],
        )
        .await,
        "a refresh token hinted as an access token",
    )
    .await;
    expect_session_dead(&app, &by_refresh, "refresh token with the wrong hint").await;

    let by_access = session(&app, "hinted").await;
    expect_revoked_ok(
        revoke(
            &app,
            &[
                ("token", &by_access.access),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await,
        "an access token hinted as a refresh token",
    )
    .await;
    expect_session_dead(&app, &by_access, "access token with the wrong hint").await;
}

#[tokio::test]
async fn a_revocation_without_a_token_is_invalid_request() {
    let app = spawn().await;
    expect_oauth_error(revoke(&app, &[]).await, "invalid_request").await;
    expect_oauth_error(
        revoke(&app, &[("token_type_hint", "refresh_token")]).await,
        "invalid_request",
    )
    .await;
}

// --- durability -------------------------------------------------------------------

#[tokio::test]
async fn revoked_sessions_stay_revoked_after_a_restart_and_live_ones_stay_alive() {
    let app = spawn().await;
    app.register("durable").await;
    let revoked = session(&app, "durable").await;
    let logged_out = session(&app, "durable").await;
    let live = session(&app, "durable").await;

    expect_revoked_ok(
        revoke(&app, &[("token", &revoked.refresh)]).await,
        "before restart",
    )
    .await;
    assert_eq!(logout(&app, &logged_out.access, None).await.status(), 204);

    let app = app.restart().await;
    expect_session_dead(&app, &revoked, "revoked, after restart").await;
    expect_session_dead(&app, &logged_out, "logged out, after restart").await;
    expect_alive(&app, &live.access, "live session after restart").await;
    let next = rotate(&app, &live.refresh).await;
    assert_eq!(next.sid(), live.sid());
}

// --- sessions -----------------------------------------------------------------

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_marked_and_can_be_ended() {
    let app = spawn().await;
    app.register("lister").await;
    let first = session_with_agent(&app, "lister", "first-agent/1.0").await;
    let second = session_with_agent(&app, "lister", "second-agent/2.0").await;

    let sessions = list_sessions(&app, &second.access).await;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one current in {sessions:?}");
    assert_eq!(current[0]["id"], second.sid(), "the caller's session");
    for s in &sessions {
        assert_eq!(s["ip"], "127.0.0.1", "{s}");
        for member in ["created_at", "last_used_at", "expires_at"] {
            assert!(s[member].is_string(), "{member} in {s}");
        }
        assert!(s["current"].is_boolean(), "{s}");
    }
    let agent_of = |sid: &str| -> Value {
        sessions
            .iter()
            .find(|s| s["id"] == sid)
            .map(|s| s["user_agent"].clone())
            .unwrap_or_else(|| panic!("session {sid} listed in {sessions:?}"))
    };
    assert_eq!(agent_of(&first.sid()), "first-agent/1.0");
    assert_eq!(agent_of(&second.sid()), "second-agent/2.0");

    // From the first session's point of view, it is the current one.
    let from_first = list_sessions(&app, &first.access).await;
    let current: Vec<&Value> = from_first.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{from_first:?}");
    assert_eq!(current[0]["id"], first.sid());

    let response = end_session(&app, &second.access, &first.sid()).await;
    assert_eq!(response.status(), 204);
    let sessions = list_sessions(&app, &second.access).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["id"], second.sid());
    assert_eq!(sessions[0]["current"], true);
    expect_session_dead(&app, &first, "the ended session").await;
    expect_alive(&app, &second.access, "the session that ended the other").await;

    // Ending it again: it is no longer an active session.
    expect_problem(end_session(&app, &second.access, &first.sid()).await, 404).await;
}

#[tokio::test]
async fn another_users_session_cannot_be_ended() {
    let app = spawn().await;
    app.register("mallory").await;
    app.register("alice").await;
    let mallory = session(&app, "mallory").await;
    let alice = session(&app, "alice").await;

    let response = end_session(&app, &mallory.access, &alice.sid()).await;
    expect_problem(response, 404).await;
    expect_alive(&app, &alice.access, "alice after mallory's attempt").await;
    rotate(&app, &alice.refresh).await;

    let mallorys = list_sessions(&app, &mallory.access).await;
    assert_eq!(mallorys.len(), 1, "only mallory's own: {mallorys:?}");
    assert_eq!(mallorys[0]["id"], mallory.sid());
}

#[tokio::test]
async fn ending_an_unknown_or_malformed_session_id_is_404() {
    let app = spawn().await;
    app.register("nosuch").await;
    let tokens = session(&app, "nosuch").await;

    let random = uuid::Uuid::new_v4().to_string();
    expect_problem(end_session(&app, &tokens.access, &random).await, 404).await;
    expect_problem(end_session(&app, &tokens.access, "not-a-uuid").await, 404).await;
    expect_alive(&app, &tokens.access, "after the misses").await;
}

// --- password change ---------------------------------------------------------------

#[tokio::test]
async fn a_password_change_with_a_wrong_current_password_is_422_and_changes_nothing() {
    let app = spawn().await;
    app.register("careful").await;
    let this = session(&app, "careful").await;
    let other = session(&app, "careful").await;

    let response = change_password(
        &app,
        &this.access,
        "not the current password at all",
        NEW_PASSWORD,
    )
    .await;
    let problem = expect_problem(response, 422).await;
    assert_eq!(error_fields(&problem), ["current_password"], "{problem}");

    expect_alive(&app, &this.access, "this session").await;
    expect_alive(&app, &other.access, "the other session").await;
    assert_eq!(
        login_with(&app, "careful", GOOD_PASSWORD).await.status(),
        200,
        "the old password still works"
    );
    expect_oauth_error(
        login_with(&app, "careful", NEW_PASSWORD).await,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_password_change_to_a_weak_password_is_422_on_new_password() {
    let app = spawn().await;
    app.register("weakling").await;
    let this = session(&app, "weakling").await;
    let other = session(&app, "weakling").await;

    for weak in ["short", "weakling-and-more-text"] {
        let response = change_password(&app, &this.access, GOOD_PASSWORD, weak).await;
        let problem = expect_problem(response, 422).await;
        assert_eq!(
            error_fields(&problem),
            ["new_password"],
            "{weak}: {problem}"
        );
    }
    expect_alive(&app, &other.access, "the other session").await;
    assert_eq!(
        login_with(&app, "weakling", GOOD_PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn a_password_change_keeps_this_session_and_ends_the_others() {
    let app = spawn().await;
    app.register("changer").await;
    let this = session(&app, "changer").await;
    let other = session(&app, "changer").await;

    let response = change_password(&app, &this.access, GOOD_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 204);

    expect_alive(&app, &this.access, "the changing session").await;
    let next = rotate(&app, &this.refresh).await;
    assert_eq!(next.sid(), this.sid(), "the changing session refreshes");
    expect_session_dead(&app, &other, "another session").await;

    expect_oauth_error(
        login_with(&app, "changer", GOOD_PASSWORD).await,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        login_with(&app, "changer", NEW_PASSWORD).await.status(),
        200,
        "the new password logs in"
    );
}

// --- account deletion -----------------------------------------------------------------

#[tokio::test]
async fn deleting_the_account_with_a_wrong_password_is_422_and_keeps_it() {
    let app = spawn().await;
    app.register("keeper").await;
    let tokens = session(&app, "keeper").await;

    let response = delete_me(&app, &tokens.access, "not my password, surely not").await;
    let problem = expect_problem(response, 422).await;
    assert_eq!(error_fields(&problem), ["password"], "{problem}");

    expect_alive(&app, &tokens.access, "after the refused deletion").await;
    assert_eq!(
        login_with(&app, "keeper", GOOD_PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn a_deleted_account_is_gone_and_its_username_can_be_registered_again() {
    let app = spawn().await;
    let original = app.register("phoenix").await;
    let tokens = session(&app, "phoenix").await;

    let response = delete_me(&app, &tokens.access, GOOD_PASSWORD).await;
    assert_eq!(response.status(), 204);
    expect_invalid_token(app.me(&tokens.access).await, "after deletion").await;
    expect_oauth_error(refresh(&app, &tokens.refresh).await, "invalid_grant").await;
    expect_oauth_error(
        login_with(&app, "phoenix", GOOD_PASSWORD).await,
        "invalid_grant",
    )
    .await;

    let reborn = app.register("phoenix").await;
    assert_ne!(reborn["id"], original["id"], "a new account");
    // The old token does not come back to life for the new account.
    expect_invalid_token(app.me(&tokens.access).await, "old token, new account").await;
    let fresh = session(&app, "phoenix").await;
    let me: Value = app.me(&fresh.access).await.json().await.unwrap();
    assert_eq!(me["id"], reborn["id"]);
}

// --- expiry ---------------------------------------------------------------------------

#[tokio::test]
async fn a_session_past_its_absolute_lifetime_is_refused() {
    let app = spawn_tuned(|args| args.refresh_ttl_secs = Some(2)).await;
    app.register("mayfly").await;
    let tokens = session(&app, "mayfly").await;

    // A wait, not a timing assertion: the session is certainly over by then.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    expect_oauth_error(refresh(&app, &tokens.refresh).await, "invalid_grant").await;
    expect_invalid_token(app.me(&tokens.access).await, "session expired").await;
}

#[tokio::test]
async fn a_session_idle_past_the_idle_timeout_is_refused() {
    let app = spawn_tuned(|args| args.refresh_idle_secs = Some(2)).await;
    app.register("sleeper").await;
    let tokens = session(&app, "sleeper").await;

    tokio::time::sleep(Duration::from_millis(3_200)).await;
    expect_oauth_error(refresh(&app, &tokens.refresh).await, "invalid_grant").await;
    expect_invalid_token(app.me(&tokens.access).await, "session idle").await;
}
