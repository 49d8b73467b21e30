//! The audit log over HTTP (CONTRACT §8): every security event of a flow
//! is in `GET /admin/audit` with its actor, subject, client and request id,
//! at once (a refused login before its answer); filters and cursors page
//! exactly; `GET /users/me/events` is the caller's own activity, newest
//! first; no secret ever reaches the log; and several nodes on one
//! PostgreSQL database write one chain that verifies.

use std::collections::HashSet;

use futures_util::future::join_all;
use portcullis_tests::cluster::Cluster;
use portcullis_tests::{GOOD_PASSWORD, TestApp};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::{
    Credential, admin_token_for, call, expect_problem, header, new_api_key, spawn_unthrottled,
};

const USER_AGENT: &str = "audit-test/1.0";

/// `GET {path}` with `credential`, asserting 200; the JSON body.
async fn get_json(app: &TestApp, credential: &Credential, path: &str) -> Value {
    let response = call(app, Method::GET, path, Some(credential), None).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("json")
}

/// Every event of `GET /admin/audit{query}` (following the cursors),
/// newest first.
async fn all_events(app: &TestApp, admin: &Credential, query: &str) -> Vec<Value> {
    let separator = if query.is_empty() { "?" } else { "&" };
    let mut events = Vec::new();
    let mut path = format!("/admin/audit{query}");
    loop {
        let page = get_json(app, admin, &path).await;
        events.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/audit{query}{separator}cursor={cursor}"),
            None => return events,
        }
    }
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["event"].as_str().expect("event name"))
        .collect()
}

/// A request with this test's user agent and request id.
fn with_request_id(app: &TestApp, method: Method, path: &str, id: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("user-agent", USER_AGENT)
        .header("x-request-id", id)
}

async fn send(request: reqwest::RequestBuilder) -> Response {
    request.send().await.expect("request")
}

fn password_grant(username: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "password".to_owned()),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
    ]
}

#[tokio::test]
async fn every_event_of_a_flow_is_logged_with_its_actor_subject_and_request() {
    let app = spawn_unthrottled().await;
    let admin = Credential::Bearer(admin_token_for(&app, "auditor").await);

    let registered = send(
        with_request_id(&app, Method::POST, "/auth/register", "req-register").json(&json!({
            "username": "alice",
            "email": "alice@example.com",
            "password": GOOD_PASSWORD,
        })),
    )
    .await;
    assert_eq!(registered.status(), 201);
    let alice: Value = registered.json().await.expect("user");
    let alice_id = alice["id"].as_str().expect("id").to_owned();

    let wrong_password = "not the password at all, clearly";
    let refused = send(
        with_request_id(&app, Method::POST, "/auth/token", "req-wrong")
            .form(&password_grant("alice", wrong_password)),
    )
    .await;
    assert_eq!(refused.status(), 400, "invalid_grant");
    // Refused: already in the log when the answer arrives.
    let failures = all_events(&app, &admin, "?event=login.failed").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["subject_id"], alice_id.as_str());
    assert_eq!(failures[0]["details"]["reason"], "wrong_password");
    assert_eq!(failures[0]["request_id"], "req-wrong");

    let unknown = send(
        with_request_id(&app, Method::POST, "/auth/token", "req-unknown")
            .form(&password_grant("nobody-here", GOOD_PASSWORD)),
    )
    .await;
    assert_eq!(unknown.status(), 400);

    let login = send(
        with_request_id(&app, Method::POST, "/auth/token", "req-login")
            .form(&password_grant("alice", GOOD_PASSWORD)),
    )
    .await;
    assert_eq!(login.status(), 200);
    let tokens: Value = login.json().await.expect("tokens");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let first_refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let bearer = Credential::Bearer(access.clone());

    let refreshed = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
        ])
        .await;
    assert_eq!(refreshed.status(), 200);
    let replayed = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
        ])
        .await;
    assert_eq!(replayed.status(), 400, "reuse is invalid_grant");

    // The reuse ended that session: a new one for the rest.
    let tokens = app.login("alice").await;
    let bearer_2 = Credential::Bearer(tokens["access_token"].as_str().expect("access").to_owned());
    let key = new_api_key(&app, &bearer_2, &json!({"name": "ci"})).await;
    let key_text = key["key"].as_str().expect("key").to_owned();
    let key_id = key["id"].as_str().expect("id").to_owned();
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/users/me/api-keys/{key_id}"),
        Some(&bearer_2),
        None,
    )
    .await;
    assert_eq!(revoked.status(), 204);
    let new_password = "quiet lanterns drift over the harbour";
    let changed = call(
        &app,
        Method::POST,
        "/users/me/password",
        Some(&bearer_2),
        Some(&json!({"current_password": GOOD_PASSWORD, "new_password": new_password})),
    )
    .await;
    assert_eq!(changed.status(), 204);
    let logout = send(
        with_request_id(
            &app,
            Method::POST,
            "/auth/logout?scope=global",
            "req-logout",
        )
        .bearer_auth(tokens["access_token"].as_str().expect("access")),
    )
    .await;
    assert_eq!(logout.status(), 204);
    let disabled = call(
        &app,
        Method::PATCH,
        &format!("/admin/users/{alice_id}"),
        Some(&admin),
        Some(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(disabled.status(), 200);

    let mut about_alice = all_events(&app, &admin, &format!("?user={alice_id}")).await;
    about_alice.reverse();
    assert_eq!(
        names(&about_alice),
        [
            "user.registered",
            "login.failed",
            "login.succeeded",
            "refresh_token.reused",
            "login.succeeded",
            "api_key.created",
            "api_key.revoked",
            "password.changed",
            "sessions.ended",
            "user.updated_by_admin",
        ],
        "{about_alice:#?}"
    );
    let seqs: Vec<u64> = about_alice
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
    let by_name = |name: &str| -> &Value {
        about_alice
            .iter()
            .find(|event| event["event"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let registration = by_name("user.registered");
    assert_eq!(registration["details"]["username"], "alice");
    assert_eq!(registration["request_id"], "req-register");
    assert_eq!(registration["user_agent"], USER_AGENT);
    assert_eq!(registration["ip"], "127.0.0.1");
    let login = by_name("login.succeeded");
    assert_eq!(login["actor_id"], alice_id.as_str());
    assert_eq!(login["request_id"], "req-login");
    assert!(login["details"]["session_id"].is_string());
    assert_eq!(
        by_name("api_key.created")["details"]["key_id"],
        key_id.as_str()
    );
    assert_eq!(by_name("sessions.ended")["request_id"], "req-logout");
    let admin_change = by_name("user.updated_by_admin");
    assert_eq!(admin_change["details"]["disabled"], true);
    assert_ne!(
        admin_change["actor_id"],
        alice_id.as_str(),
        "the admin acted"
    );
    assert!(admin_change["actor_id"].is_string());
    for event in &about_alice {
        let at = event["at"].as_str().expect("at");
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| panic!("RFC 3339 at: {at}"));
    }

    // The unknown user's attempt: no subject, and its typed name is not kept.
    let unknown = all_events(&app, &admin, "?event=login.failed").await;
    let unknown = unknown
        .iter()
        .find(|event| event["request_id"] == "req-unknown")
        .expect("the unknown user's attempt");
    assert_eq!(unknown["subject_id"], Value::Null);
    assert_eq!(unknown["details"]["reason"], "unknown_user");

    // No secret reaches the log.
    let whole = serde_json::to_string(&all_events(&app, &admin, "").await).expect("json");
    for secret in [
        GOOD_PASSWORD,
        wrong_password,
        new_password,
        &first_refresh,
        &access,
        &key_text,
    ] {
        assert!(!whole.contains(secret), "a secret is in the audit log");
    }
    drop(bearer);
}

#[tokio::test]
async fn the_admin_log_filters_pages_exactly_and_refuses_bad_queries() {
    let app = spawn_unthrottled().await;
    let admin = Credential::Bearer(admin_token_for(&app, "auditor").await);
    for n in 0..4 {
        let username = format!("pager-{n}");
        app.register(&username).await;
        app.login(&username).await;
    }
    let everything = all_events(&app, &admin, "").await;
    let seqs: Vec<u64> = everything
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).rev().collect();
    assert_eq!(seqs, expected, "newest first, gapless");

    // Pages of 3 cover everything exactly once.
    let paged = all_events(&app, &admin, "?limit=3").await;
    assert_eq!(paged, everything);

    let logins = all_events(&app, &admin, "?event=login.succeeded").await;
    assert_eq!(logins.len(), 5, "four users and the auditor");
    assert!(
        logins
            .iter()
            .all(|event| event["event"] == "login.succeeded")
    );

    let newest_at = everything[0]["at"].as_str().expect("at").to_owned();
    let since = all_events(&app, &admin, &format!("?since={newest_at}")).await;
    assert!(!since.is_empty() && since.iter().all(|e| e["at"].as_str() >= Some(&newest_at)));
    let until = all_events(&app, &admin, "?until=2000-01-01T00:00:00Z").await;
    assert!(until.is_empty(), "nothing before 2000");
    let future = all_events(&app, &admin, "?since=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());

    for (query, case) in [
        ("?event=login.guessed", "unknown event name"),
        (
            "?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            "since after until",
        ),
        ("?cursor=bm9wZQ", "a cursor the store did not make"),
        ("?limit=0", "limit below 1"),
        ("?user=not-a-uuid", "user not an id"),
        ("?since=yesterday", "since not RFC 3339"),
    ] {
        let response = call(
            &app,
            Method::GET,
            &format!("/admin/audit{query}"),
            Some(&admin),
            None,
        )
        .await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 422, "{case}: {status}");
        expect_problem(response, status).await;
    }

    let user = Credential::Bearer(app.access_token_for("plain").await);
    let refused = call(&app, Method::GET, "/admin/audit", Some(&user), None).await;
    assert_eq!(refused.status(), 403, "the admin scope");
    let anonymous = call(&app, Method::GET, "/admin/audit", None, None).await;
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn users_see_their_own_activity_newest_first_and_nothing_of_others() {
    let app = spawn_unthrottled().await;
    app.register("carol").await;
    app.register("dave").await;
    let refused = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "carol"),
            ("password", "wrong wrong wrong wrong"),
        ])
        .await;
    assert_eq!(refused.status(), 400);
    app.login("dave").await;
    let carol = Credential::Bearer(
        app.login("carol").await["access_token"]
            .as_str()
            .expect("access")
            .to_owned(),
    );
    let dave = Credential::Bearer(
        app.login("dave").await["access_token"]
            .as_str()
            .expect("access")
            .to_owned(),
    );
    let carol_id = get_json(&app, &carol, "/users/me").await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let events = get_json(&app, &carol, "/users/me/events").await;
    let events = events.as_array().expect("array").clone();
    assert_eq!(
        names(&events),
        ["login.succeeded", "login.failed"],
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|event| event["subject_id"] == carol_id.as_str())
    );

    // One at a time through the Link header, newest first.
    let first = call(
        &app,
        Method::GET,
        "/users/me/events?limit=1",
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(first.status(), 200);
    let link = header(first.headers(), "link")
        .expect("a Link to the next page")
        .to_owned();
    let page: Value = first.json().await.expect("json");
    assert_eq!(names(page.as_array().expect("array")), ["login.succeeded"]);
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("a target")
        .to_owned();
    let second = call(&app, Method::GET, &next, Some(&carol), None).await;
    assert_eq!(second.status(), 200);
    assert!(header(second.headers(), "link").is_none(), "the last page");
    let page: Value = second.json().await.expect("json");
    assert_eq!(names(page.as_array().expect("array")), ["login.failed"]);

    let daves = get_json(&app, &dave, "/users/me/events").await;
    let daves: HashSet<&str> = names(daves.as_array().expect("array"))
        .into_iter()
        .collect();
    assert_eq!(
        daves,
        HashSet::from(["login.succeeded"]),
        "two logins, no failure of carol's"
    );
}

/// Several nodes on one PostgreSQL database append to one chain: logins
/// spread over two nodes at once give gapless `seq`s, and the chain
/// verifies with the deployment's master key (`portcullis audit verify`'s
/// check, run in-process).
#[tokio::test]
async fn two_nodes_write_one_chain_that_verifies() {
    let cluster = Cluster::start(2).await;
    let users: Vec<String> = (0..6).map(|n| format!("node-user-{n}")).collect();
    join_all(users.iter().enumerate().map(|(n, username)| {
        let node = cluster.node(n % 2);
        async move {
            node.register(username).await;
        }
    }))
    .await;
    join_all((0..24).map(|n| {
        let node = cluster.node(n % 2);
        let username = users[n % users.len()].clone();
        async move {
            node.login(&username).await;
        }
    }))
    .await;

    let report = portcullis::verify_audit_log(&cluster.node(1).settings)
        .await
        .expect("the audit log reads")
        .expect("the chain is whole");
    let head = report.head.expect("events were written");
    // Six registrations and 24 logins, and the key installation of the
    // first start.
    assert!(report.events >= 30, "{report:?}");
    assert_eq!(head.seq, report.events, "gapless from 1");
}

/// Key rotations (`signing_keys.installed` at the first start,
/// `signing_key.rotated` by `POST /admin/keys/rotate`), the session cap
/// ending the least recently used session, and an admin's deletion of an
/// account are logged, with the admin as actor where one acted.
#[tokio::test]
async fn key_rotations_the_session_cap_and_deletions_are_logged() {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = portcullis_tests::test_args(data_dir.path().join("data"));
    args.jwt_secret = None;
    args.jwt_alg = Some("EdDSA".to_owned());
    args.max_sessions_per_user = Some(1);
    args.login_per_ip_per_min = Some(10_000);
    args.login_per_user_per_min = Some(10_000);
    let settings = portcullis::Settings::resolve(&args).expect("settings");
    let app = TestApp::spawn_with(data_dir, settings).await;
    let admin = Credential::Bearer(admin_token_for(&app, "keeper").await);

    let installed = all_events(&app, &admin, "?event=signing_keys.installed").await;
    assert_eq!(installed.len(), 1, "{installed:?}");
    assert_eq!(installed[0]["actor_id"], Value::Null, "the service itself");
    let kids = installed[0]["details"]["kids"].as_array().expect("kids");
    assert!(kids.len() >= 2, "current and next: {kids:?}");

    let rotated = call(&app, Method::POST, "/admin/keys/rotate", Some(&admin), None).await;
    assert_eq!(rotated.status(), 200);
    let rotations = all_events(&app, &admin, "?event=signing_key.rotated").await;
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    let details = &rotations[0]["details"];
    assert!(kids.contains(&details["retired_kid"]), "{details}");
    assert!(
        kids.contains(&details["current_kid"]),
        "the next key signs now: {details}"
    );
    assert!(details["next_kid"].is_string());
    let admin_id = get_json(&app, &admin, "/users/me").await["id"].clone();
    assert_eq!(rotations[0]["actor_id"], admin_id, "the admin who rotated");

    let registered = app.register("capped").await;
    let capped_id = registered["id"].as_str().expect("id").to_owned();
    let first = app.login("capped").await;
    let first_session = jwt_segment_claim(first["access_token"].as_str().expect("access"), "sid");
    app.login("capped").await;
    let ended = all_events(
        &app,
        &admin,
        &format!("?user={capped_id}&event=session.ended"),
    )
    .await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["details"]["reason"], "session_cap");
    assert_eq!(ended[0]["details"]["session_id"], first_session.as_str());

    let deleted = call(
        &app,
        Method::DELETE,
        &format!("/admin/users/{capped_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(deleted.status(), 204);
    let deletions = all_events(&app, &admin, "?event=account.deleted").await;
    assert_eq!(deletions.len(), 1);
    assert_eq!(deletions[0]["subject_id"], capped_id.as_str());
    assert_eq!(deletions[0]["actor_id"], admin_id);
    // The deleted account's events stay.
    let kept = all_events(&app, &admin, &format!("?user={capped_id}")).await;
    assert!(names(&kept).contains(&"user.registered"), "{kept:?}");
}

/// A claim of a JWT's payload, as text.
fn jwt_segment_claim(token: &str, claim: &str) -> String {
    crate::support::jwt_claims(token)[claim]
        .as_str()
        .unwrap_or_else(|| panic!("{claim} in the token"))
        .to_owned()
}

/// A login refused by the limiter is logged before its 429 is answered;
/// RFC 7009 revocation, a local logout and ending one's own session are
/// logged as `session.ended` with their reasons.
#[tokio::test]
async fn refused_logins_and_every_way_a_session_ends_are_logged() {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = portcullis_tests::test_args(data_dir.path().join("data"));
    // Registration spends one attempt of the username's budget too: eve
    // has 4 login attempts left, frank exactly his 4 logins.
    args.login_per_user_per_min = Some(5);
    args.login_per_ip_per_min = Some(10_000);
    let settings = portcullis::Settings::resolve(&args).expect("settings");
    let app = TestApp::spawn_with(data_dir, settings).await;
    // The admin logs in once: within its own budget.
    let admin = Credential::Bearer(admin_token_for(&app, "watcher").await);

    app.register("eve").await;
    let mut answers = Vec::new();
    for n in 0..8 {
        let response = send(
            with_request_id(&app, Method::POST, "/auth/token", &format!("req-flood-{n}"))
                .form(&password_grant("eve", "wrong wrong wrong wrong")),
        )
        .await;
        answers.push(response.status().as_u16());
    }
    assert!(answers.contains(&429), "the limiter refuses: {answers:?}");
    let refused = all_events(&app, &admin, "?event=login.rate_limited").await;
    let refused_ids: HashSet<&str> = refused
        .iter()
        .map(|event| event["request_id"].as_str().expect("request id"))
        .collect();
    let answered_429 = answers.iter().filter(|&&status| status == 429).count();
    assert_eq!(
        refused.len(),
        answered_429,
        "one event per 429: {refused:?}"
    );
    assert!(
        refused
            .iter()
            .all(|e| e["details"]["credential"] == "password")
    );
    assert!(refused.iter().all(|e| e["subject_id"].is_null()));
    assert!(refused_ids.iter().all(|id| id.starts_with("req-flood-")));

    app.register("frank").await;
    let reason_of = |events: &[Value], session: &str| -> String {
        events
            .iter()
            .find(|event| event["details"]["session_id"] == session)
            .and_then(|event| event["details"]["reason"].as_str())
            .unwrap_or_else(|| panic!("no session.ended for {session}: {events:?}"))
            .to_owned()
    };
    let sid =
        |tokens: &Value| jwt_segment_claim(tokens["access_token"].as_str().expect("access"), "sid");

    let revoked = app.login("frank").await;
    let response = app
        .client
        .post(app.url("/auth/revoke"))
        .form(&[("token", revoked["refresh_token"].as_str().expect("refresh"))])
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);

    let logged_out = app.login("frank").await;
    let response = call(
        &app,
        Method::POST,
        "/auth/logout",
        Some(&Credential::Bearer(
            logged_out["access_token"]
                .as_str()
                .expect("access")
                .to_owned(),
        )),
        None,
    )
    .await;
    assert_eq!(response.status(), 204);

    let ended = app.login("frank").await;
    let current = Credential::Bearer(
        app.login("frank").await["access_token"]
            .as_str()
            .expect("access")
            .to_owned(),
    );
    let response = call(
        &app,
        Method::DELETE,
        &format!("/users/me/sessions/{}", sid(&ended)),
        Some(&current),
        None,
    )
    .await;
    assert_eq!(response.status(), 204);

    let events = all_events(&app, &admin, "?event=session.ended").await;
    assert_eq!(reason_of(&events, &sid(&revoked)), "revoked");
    assert_eq!(reason_of(&events, &sid(&logged_out)), "logout");
    assert_eq!(reason_of(&events, &sid(&ended)), "ended_by_user");
}
