//! Abuse resistance (CONTRACT §3): every credential check passes a limiter per
//! client address (IPv6 by /64) and per normalised username, a refusal is 429
//! with an integer `Retry-After` ≥ 1, and the client address is the socket
//! peer unless a trusted proxy forwarded it.
//!
//! That a refused attempt computes no hash and that a full hashing queue
//! answers 503 are covered by unit tests of the domain and of the hashing
//! adapter; `PORTCULLIS_DOCS=false` by `documents.rs`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_domain::{Password, RegistrationRequest, Role};
use portcullis_tests::{GOOD_PASSWORD, TestApp, test_args};
use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};

use crate::support::{expect_oauth_error, expect_oauth_error_with_status, expect_problem, header};

/// A password that passes the policy and is nobody's.
const WRONG_PASSWORD: &str = "incorrect horse battery staple";

/// A password that passes the policy and differs from [`GOOD_PASSWORD`].
const NEW_PASSWORD: &str = "violet lantern orbit meadow";

/// A budget that no test here reaches.
const PLENTY: u32 = 100_000;

/// Starts an app with the given per-address and per-username budgets and
/// trusted proxies.
async fn spawn_limited(per_ip: u32, per_user: u32, trusted_proxies: Option<&str>) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = test_args(data_dir.path().join("data"));
    args.login_per_ip_per_min = Some(per_ip);
    args.login_per_user_per_min = Some(per_user);
    args.trusted_proxies = trusted_proxies.map(str::to_owned);
    let settings = portcullis::Settings::resolve(&args).expect("valid settings");
    TestApp::spawn_with(data_dir, settings).await
}

/// Creates `username` with [`GOOD_PASSWORD`] behind the running application's
/// back, so that setting up spends no attempt budget.
async fn create_account(app: &TestApp, username: &str) {
    portcullis::build_auth_service(&app.settings)
        .await
        .expect("auth service over the test data directory")
        .create_user(
            RegistrationRequest {
                username: username.to_owned(),
                email: format!("{username}@example.com"),
                full_name: None,
                password: Password::new(GOOD_PASSWORD.to_owned()),
            },
            Role::User,
            &portcullis_domain::Initiator::command_line(),
        )
        .await
        .expect("the account is created");
}

/// Adds `X-Forwarded-For: forwarded_for` when given.
fn forwarded(request: RequestBuilder, forwarded_for: Option<&str>) -> RequestBuilder {
    match forwarded_for {
        Some(value) => request.header("x-forwarded-for", value),
        None => request,
    }
}

/// The password grant, optionally with an `X-Forwarded-For`; answer unchecked.
async fn password_grant(
    app: &TestApp,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Response {
    forwarded(app.client.post(app.url("/auth/token")), forwarded_for)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .expect("request")
}

/// The `Authorization` value of HTTP Basic.
fn basic(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

/// The integer `Retry-After` of a 429, asserted to be at least 1.
fn retry_after(response: &Response, case: &str) -> u64 {
    let value = header(response.headers(), "retry-after")
        .unwrap_or_else(|| panic!("{case}: a 429 carries Retry-After"));
    let seconds: u64 = value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{case}: Retry-After is an integer, got {value:?}"));
    assert!(
        seconds >= 1,
        "{case}: Retry-After is at least 1, got {seconds}"
    );
    seconds
}

/// Asserts an OAuth endpoint's refusal: 429 `rate_limited` with `Retry-After`.
async fn expect_limited_oauth(response: Response, case: &str) {
    assert_eq!(response.status(), 429, "{case}");
    retry_after(&response, case);
    expect_oauth_error_with_status(response, 429, "rate_limited").await;
}

/// Asserts another endpoint's refusal: a 429 problem with `Retry-After`.
async fn expect_limited_problem(response: Response, case: &str) {
    assert_eq!(response.status(), 429, "{case}");
    retry_after(&response, case);
    expect_problem(response, 429).await;
}

/// The access token of a successful password grant.
async fn access_token_of(response: Response, case: &str) -> String {
    assert_eq!(response.status(), 200, "{case}");
    let grant: Value = response.json().await.expect("token json");
    grant["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// `GET /users/me/sessions` with a bearer token; asserts 200.
async fn sessions(app: &TestApp, access_token: &str) -> Vec<Value> {
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

/// The `ip` of the session marked `current`.
async fn current_session_ip(app: &TestApp, access_token: &str) -> Value {
    let all = sessions(app, access_token).await;
    let current: Vec<&Value> = all
        .iter()
        .filter(|session| session["current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "exactly one current session in {all:?}");
    current[0]["ip"].clone()
}

#[tokio::test]
async fn past_the_per_user_budget_even_the_right_password_is_refused_for_that_username_only() {
    let app = spawn_limited(PLENTY, 3, None).await;
    create_account(&app, "alice").await;
    create_account(&app, "bob").await;

    for attempt in 1..=3 {
        let response = password_grant(&app, "alice", WRONG_PASSWORD, None).await;
        assert_eq!(response.status(), 400, "wrong password #{attempt}");
        expect_oauth_error(response, "invalid_grant").await;
    }
    let right = password_grant(&app, "alice", GOOD_PASSWORD, None).await;
    expect_limited_oauth(right, "4th check for alice, right password").await;

    // Usernames are compared case-insensitively: the same budget.
    let flipped = password_grant(&app, "ALICE", GOOD_PASSWORD, None).await;
    expect_limited_oauth(flipped, "ALICE shares alice's budget").await;
    let json_login = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "Alice", "password": GOOD_PASSWORD}))
        .send()
        .await
        .expect("request");
    expect_limited_oauth(json_login, "JSON login as Alice").await;
    let basic_me = app
        .client
        .get(app.url("/users/me"))
        .header("authorization", basic("alice", GOOD_PASSWORD))
        .send()
        .await
        .expect("request");
    expect_limited_problem(basic_me, "Basic as alice on /users/me").await;

    // Another username from the same client has its own budget.
    let bob = password_grant(&app, "bob", GOOD_PASSWORD, None).await;
    access_token_of(bob, "bob from the same client").await;
}

#[tokio::test]
async fn the_per_address_budget_counts_attempts_on_every_username() {
    let app = spawn_limited(3, PLENTY, None).await;
    for username in ["bob", "carol", "erin"] {
        create_account(&app, username).await;
    }

    // Two wrong passwords and one unknown user: three checks from one address.
    for (username, password) in [
        ("bob", WRONG_PASSWORD),
        ("ghost", GOOD_PASSWORD),
        ("carol", WRONG_PASSWORD),
    ] {
        let response = password_grant(&app, username, password, None).await;
        expect_oauth_error(response, "invalid_grant").await;
    }
    let fourth = password_grant(&app, "erin", GOOD_PASSWORD, None).await;
    expect_limited_oauth(fourth, "4th check from the address, a fresh username").await;
}

#[tokio::test]
async fn every_kind_of_credential_check_draws_on_the_per_address_budget() {
    let app = spawn_limited(3, PLENTY, None).await;
    create_account(&app, "alice").await;
    // Check 1: a session to call the password-protected account operations with.
    let access = access_token_of(
        password_grant(&app, "alice", GOOD_PASSWORD, None).await,
        "login",
    )
    .await;
    // Checks 2 and 3.
    for username in ["ghost1", "ghost2"] {
        let response = password_grant(&app, username, WRONG_PASSWORD, None).await;
        expect_oauth_error(response, "invalid_grant").await;
    }

    let grant = password_grant(&app, "alice", GOOD_PASSWORD, None).await;
    expect_limited_oauth(grant, "password grant").await;

    let json_login = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "alice", "password": GOOD_PASSWORD}))
        .send()
        .await
        .expect("request");
    expect_limited_oauth(json_login, "JSON login").await;

    let basic_me = app
        .client
        .get(app.url("/users/me"))
        .header("authorization", basic("alice", GOOD_PASSWORD))
        .send()
        .await
        .expect("request");
    expect_limited_problem(basic_me, "Basic on /users/me").await;

    let registration = app
        .register_json(&json!({
            "username": "newcomer",
            "email": "newcomer@example.com",
            "password": GOOD_PASSWORD,
        }))
        .await;
    expect_limited_problem(registration, "registration").await;

    let password_change = app
        .client
        .post(app.url("/users/me/password"))
        .bearer_auth(&access)
        .json(&json!({"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .expect("request");
    expect_limited_problem(password_change, "password change").await;

    let deletion = app
        .client
        .delete(app.url("/users/me"))
        .bearer_auth(&access)
        .json(&json!({"password": GOOD_PASSWORD}))
        .send()
        .await
        .expect("request");
    expect_limited_problem(deletion, "account deletion").await;

    // A bearer token is no password check: it still works, and neither the
    // refused password change nor the refused deletion happened.
    let me = app.me(&access).await;
    assert_eq!(me.status(), 200, "the account is still there");
    let me: Value = me.json().await.expect("user json");
    assert_eq!(me["username"], "alice");
}

#[tokio::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_neither_escapes_the_limit_nor_names_the_client()
 {
    // No trusted proxies at all, and trusted proxies that do not include the
    // test client (127.0.0.1): either way its X-Forwarded-For is ignored.
    for trusted in [None, Some("10.0.0.0/8, 192.0.2.1")] {
        let app = spawn_limited(3, PLENTY, trusted).await;
        create_account(&app, "alice").await;
        let access = access_token_of(
            password_grant(&app, "alice", GOOD_PASSWORD, Some("198.51.100.1")).await,
            "login with a forged X-Forwarded-For",
        )
        .await;
        for (username, forged) in [("ghost1", "198.51.100.2"), ("ghost2", "198.51.100.3")] {
            let response = password_grant(&app, username, WRONG_PASSWORD, Some(forged)).await;
            expect_oauth_error(response, "invalid_grant").await;
        }
        let fourth = password_grant(&app, "ghost3", WRONG_PASSWORD, Some("198.51.100.4")).await;
        expect_limited_oauth(
            fourth,
            &format!("a rotated X-Forwarded-For with trusted proxies {trusted:?}"),
        )
        .await;

        assert_eq!(
            current_session_ip(&app, &access).await,
            "127.0.0.1",
            "the session records the socket peer, not the forged header (trusted {trusted:?})"
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_address_has_its_own_budget() {
    let app = spawn_limited(3, PLENTY, Some("127.0.0.1")).await;

    // Four checks through the proxy for four different clients: none limited.
    for (n, client) in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
        .into_iter()
        .enumerate()
    {
        let response =
            password_grant(&app, &format!("ghost{n}"), WRONG_PASSWORD, Some(client)).await;
        assert_eq!(response.status(), 400, "client {client} is not limited");
        expect_oauth_error(response, "invalid_grant").await;
    }

    // One forwarded client is limited after its own three checks.
    for n in 1..=3 {
        let response = password_grant(
            &app,
            &format!("same{n}"),
            WRONG_PASSWORD,
            Some("203.0.113.50"),
        )
        .await;
        expect_oauth_error(response, "invalid_grant").await;
    }
    let fourth = password_grant(&app, "same4", WRONG_PASSWORD, Some("203.0.113.50")).await;
    expect_limited_oauth(fourth, "the 4th check of one forwarded client").await;

    // The proxy's own address (no header) is yet another client.
    let direct = password_grant(&app, "direct", WRONG_PASSWORD, None).await;
    expect_oauth_error(direct, "invalid_grant").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_ipv6_clients_share_a_budget_per_slash_64() {
    let app = spawn_limited(3, PLENTY, Some("127.0.0.1")).await;
    for (n, client) in ["2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::c"]
        .into_iter()
        .enumerate()
    {
        let response = password_grant(&app, &format!("six{n}"), WRONG_PASSWORD, Some(client)).await;
        expect_oauth_error(response, "invalid_grant").await;
    }
    let same_network =
        password_grant(&app, "six3", WRONG_PASSWORD, Some("2001:db8:1:2:1234::d")).await;
    expect_limited_oauth(same_network, "a 4th address in the same /64").await;

    let next_network = password_grant(&app, "six4", WRONG_PASSWORD, Some("2001:db8:1:3::a")).await;
    assert_eq!(next_network.status(), 400, "another /64 has its own budget");
    expect_oauth_error(next_network, "invalid_grant").await;
}

#[tokio::test]
async fn a_session_opened_through_a_trusted_proxy_records_the_forwarded_client_address() {
    let app = spawn_limited(PLENTY, PLENTY, Some("127.0.0.1")).await;
    create_account(&app, "alice").await;

    let access = access_token_of(
        password_grant(&app, "alice", GOOD_PASSWORD, Some("203.0.113.9")).await,
        "login through the proxy",
    )
    .await;
    assert_eq!(current_session_ip(&app, &access).await, "203.0.113.9");

    // Several hops: the rightmost one the trusted proxy did not add is the
    // client; what the client itself wrote to the left is not believed.
    let access = access_token_of(
        password_grant(&app, "alice", GOOD_PASSWORD, Some("6.6.6.6, 198.51.100.7")).await,
        "login through the proxy with two hops",
    )
    .await;
    assert_eq!(current_session_ip(&app, &access).await, "198.51.100.7");

    let all = sessions(&app, &access).await;
    assert!(
        all.iter().all(|session| session["ip"] != "6.6.6.6"),
        "the client-written hop is never recorded: {all:?}"
    );
}

#[tokio::test]
async fn a_registration_past_the_per_username_budget_is_a_429_problem_and_creates_nothing() {
    let app = spawn_limited(PLENTY, 1, None).await;
    // The one check `newcomer` is allowed: a login while the name is free.
    let login = password_grant(&app, "newcomer", GOOD_PASSWORD, None).await;
    expect_oauth_error(login, "invalid_grant").await;

    let registration = app
        .register_json(&json!({
            "username": "NewComer",
            "email": "newcomer@example.com",
            "password": GOOD_PASSWORD,
        }))
        .await;
    expect_limited_problem(registration, "registering `NewComer` past the budget").await;

    // The refused registration created nothing: the name is still free.
    create_account(&app, "newcomer").await;
}
