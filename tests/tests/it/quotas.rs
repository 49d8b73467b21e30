//! The findings of the outside attack review (issue 18): an email oracle
//! behind re-authentication, bounded API keys and sessions with paginated
//! listings, demotion that narrows stored grants, deleted accounts erased
//! from the database files, and a held write lock answered with 503.

use std::collections::BTreeSet;
use std::path::PathBuf;

use portcullis_tests::{GOOD_PASSWORD, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Credential, admin_token_for, call, expect_problem};

// --- finding 18: a deleted account leaves no email or hash on disk -----------

/// The database file and its write-ahead log, where present.
fn database_files(app: &TestApp) -> Vec<PathBuf> {
    let db = app.database_path();
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    [db, PathBuf::from(wal)]
        .into_iter()
        .filter(|path| path.exists())
        .collect()
}

/// The bytes of the database file and its log, concatenated.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    database_files(app)
        .iter()
        .flat_map(|file| std::fs::read(file).expect("database file is readable"))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Every distinct argon2id PHC string in `bytes`. SQLite stores a row's
/// columns back to back, so the run of PHC characters may continue into the
/// next column; the digest (32 bytes, 43 base64 characters) is cut there.
fn argon2_hashes(bytes: &[u8]) -> BTreeSet<String> {
    let marker = b"$argon2id$";
    let phc = |byte: u8| byte.is_ascii_alphanumeric() || b"$=,+/".contains(&byte);
    (0..bytes.len().saturating_sub(marker.len()))
        .filter(|&start| bytes[start..].starts_with(marker))
        .map(|start| {
            let end = bytes[start..]
                .iter()
                .position(|&byte| !phc(byte))
                .map_or(bytes.len(), |length| start + length);
            let run = String::from_utf8_lossy(&bytes[start..end]).into_owned();
            let mut parts: Vec<&str> = run.splitn(6, '$').collect();
            if let Some(digest) = parts.get_mut(5) {
                *digest = &digest[..digest.len().min(43)];
            }
            parts.join("$")
        })
        .collect()
}

/// Registers `username` with `email` and the good password; returns its id.
async fn register_with_email(app: &TestApp, username: &str, email: &str) -> String {
    let response = app
        .register_json(&json!({
            "username": username,
            "email": email,
            "password": GOOD_PASSWORD,
        }))
        .await;
    assert_eq!(response.status(), 201, "registering {username}");
    let user: Value = response.json().await.expect("user json");
    user["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_self_deleted_account_leaves_neither_its_email_nor_a_hash_in_the_database_files() {
    let app = TestApp::spawn().await;
    let email = "erasure-sentinel-7f3a@example.com";
    register_with_email(&app, "erasure", email).await;
    let token = app.login("erasure").await["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let before = database_bytes(&app);
    assert!(contains(&before, email), "the email is stored before");
    assert_eq!(argon2_hashes(&before).len(), 1, "one account, one hash");

    let response = app
        .client
        .delete(app.url("/users/me"))
        .bearer_auth(&token)
        .json(&json!({ "password": GOOD_PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);

    let after = database_bytes(&app);
    assert!(!contains(&after, email), "the email is gone");
    assert!(
        !contains(&after, "$argon2id$"),
        "no password hash is left: {:?}",
        argon2_hashes(&after)
    );
}

#[tokio::test]
async fn an_account_deleted_by_an_admin_leaves_neither_its_email_nor_its_hash_in_the_database_files()
 {
    let app = TestApp::spawn().await;
    let admin = admin_token_for(&app, "eraser").await;
    let admins_hashes = argon2_hashes(&database_bytes(&app));
    assert_eq!(admins_hashes.len(), 1, "the admin's hash alone");
    let email = "erasure-sentinel-91c4@example.com";
    let id = register_with_email(&app, "erased", email).await;
    app.login("erased").await;
    let before = database_bytes(&app);
    assert!(contains(&before, email), "the email is stored before");
    assert_eq!(
        argon2_hashes(&before).len(),
        2,
        "the victim's hash is stored"
    );

    let response = call(
        &app,
        Method::DELETE,
        &format!("/admin/users/{id}"),
        Some(&Credential::Bearer(admin)),
        None,
    )
    .await;
    assert_eq!(response.status(), 204);

    let after = database_bytes(&app);
    assert!(!contains(&after, email), "the email is gone");
    assert_eq!(
        argon2_hashes(&after),
        admins_hashes,
        "only the admin's own hash is left"
    );
}

// --- finding 7: demotion narrows stored grants for good -----------------------

/// Logs `username` in (an admin) and makes an API key with both scopes;
/// returns the access token and the key.
async fn admin_token_and_key(app: &TestApp, username: &str) -> (String, String) {
    let token = admin_token_for(app, username).await;
    let created = crate::support::new_api_key(
        app,
        &Credential::Bearer(token.clone()),
        &json!({ "name": "ops", "scopes": ["profile", "admin"] }),
    )
    .await;
    assert_eq!(created["scopes"], json!(["profile", "admin"]));
    (token, crate::support::api_key_of(&created))
}

/// After a demotion and a re-promotion: both old credentials still work for
/// `profile`, neither has `admin`, and the key listing shows only `profile`.
async fn assert_old_grants_stay_narrowed(app: &TestApp, token: &str, key: &str) {
    for credential in [
        Credential::Bearer(token.to_owned()),
        Credential::ApiKey(key.to_owned()),
    ] {
        let response = call(app, Method::GET, "/admin/users", Some(&credential), None).await;
        crate::support::expect_admin_scope_missing(response, &format!("{credential:?}")).await;
        let response = call(app, Method::GET, "/users/me", Some(&credential), None).await;
        assert_eq!(response.status(), 200, "{credential:?} keeps profile");
    }
    let response = call(
        app,
        Method::GET,
        "/users/me/api-keys",
        Some(&Credential::Bearer(token.to_owned())),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let keys: Value = response.json().await.expect("keys");
    assert_eq!(keys[0]["scopes"], json!(["profile"]), "{keys}");
}

#[tokio::test]
async fn a_demoted_and_re_promoted_admin_gets_no_admin_scope_back_on_old_grants_via_the_cli() {
    let app = TestApp::spawn().await;
    let (token, key) = admin_token_and_key(&app, "demotee").await;
    let cli = portcullis::build_auth_service(&app.settings)
        .await
        .expect("auth service");

    cli.set_role(
        "demotee",
        portcullis_domain::Role::User,
        &portcullis_domain::Initiator::command_line(),
    )
    .await
    .expect("demote");
    cli.set_role(
        "demotee",
        portcullis_domain::Role::Admin,
        &portcullis_domain::Initiator::command_line(),
    )
    .await
    .expect("promote again");

    assert_old_grants_stay_narrowed(&app, &token, &key).await;
}

#[tokio::test]
async fn a_demoted_and_re_promoted_admin_gets_no_admin_scope_back_on_old_grants_via_the_api() {
    let app = TestApp::spawn().await;
    let boss = Credential::Bearer(admin_token_for(&app, "boss").await);
    let (token, key) = admin_token_and_key(&app, "demotee").await;
    let me: Value = app.me(&token).await.json().await.expect("me");
    let path = format!("/admin/users/{}", me["id"].as_str().expect("id"));

    for roles in [json!(["user"]), json!(["admin"])] {
        let body = json!({ "roles": roles });
        let response = call(&app, Method::PATCH, &path, Some(&boss), Some(&body)).await;
        assert_eq!(response.status(), 200, "setting roles {roles}");
    }

    assert_old_grants_stay_narrowed(&app, &token, &key).await;
}

// --- finding 4: changing the email re-authenticates ---------------------------

/// Starts an app whose per-username credential-check budget is `per_user`
/// a minute (the address budget stays out of the way).
async fn spawn_with_user_budget(per_user: u32) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = portcullis_tests::test_args(data_dir.path().join("data"));
    args.login_per_user_per_min = Some(per_user);
    let settings = portcullis::Settings::resolve(&args).expect("valid settings");
    TestApp::spawn_with(data_dir, settings).await
}

async fn patch_me(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    call(
        app,
        Method::PATCH,
        "/users/me",
        Some(&Credential::Bearer(token.to_owned())),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn changing_the_email_without_the_current_password_is_422_on_current_password() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("mover").await;

    let response = patch_me(&app, &token, &json!({ "email": "moved@example.com" })).await;

    let problem = expect_problem(response, 422).await;
    assert_eq!(
        problem["errors"],
        json!([{ "field": "current_password", "message": "is required to change the email" }])
    );
    let me: Value = app.me(&token).await.json().await.expect("me");
    assert_eq!(me["email"], "mover@example.com", "unchanged");
}

#[tokio::test]
async fn changing_the_email_with_a_wrong_password_is_422_and_never_echoes_it() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("mover").await;
    let wrong = "definitely-not-the-password-4471";

    let response = patch_me(
        &app,
        &token,
        &json!({ "email": "moved@example.com", "current_password": wrong }),
    )
    .await;

    let problem = expect_problem(response, 422).await;
    assert_eq!(
        problem["errors"],
        json!([{ "field": "current_password", "message": "is incorrect" }])
    );
    assert!(!problem.to_string().contains(wrong), "{problem}");
}

#[tokio::test]
async fn changing_the_email_over_the_attempt_limit_is_429_with_retry_after() {
    // Registration and login spend two of four attempts, two wrong guesses
    // the rest.
    let app = spawn_with_user_budget(4).await;
    let token = app.access_token_for("mover").await;
    for _ in 0..2 {
        let body = json!({ "email": "taken@example.com", "current_password": "guess guess guess" });
        assert_eq!(patch_me(&app, &token, &body).await.status(), 422);
    }

    let body = json!({ "email": "taken@example.com", "current_password": GOOD_PASSWORD });
    let response = patch_me(&app, &token, &body).await;

    assert_eq!(response.status(), 429);
    let retry_after: u64 = crate::support::header(response.headers(), "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(retry_after >= 1);
    expect_problem(response, 429).await;
}

#[tokio::test]
async fn changing_the_email_with_the_right_password_is_200_and_a_name_alone_needs_none() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("mover").await;

    let body = json!({ "email": "moved@example.com", "current_password": GOOD_PASSWORD });
    let response = patch_me(&app, &token, &body).await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.expect("user");
    assert_eq!(user["email"], "moved@example.com");
    assert!(
        !user.to_string().contains(GOOD_PASSWORD),
        "the password is write-only"
    );

    let response = patch_me(&app, &token, &json!({ "full_name": "Mo Ver" })).await;
    assert_eq!(response.status(), 200);
}

// --- finding 19: a held write lock is a 503 before any hash ------------------

/// Asserts a 503 with an integer `Retry-After` of at least 1.
fn assert_retry_later(response: &reqwest::Response, case: &str) {
    assert_eq!(response.status(), 503, "{case}");
    let retry_after: u64 = crate::support::header(response.headers(), "retry-after")
        .unwrap_or_else(|| panic!("{case}: Retry-After"))
        .parse()
        .expect("whole seconds");
    assert!(retry_after >= 1, "{case}");
}

#[tokio::test]
async fn a_held_write_lock_answers_503_with_retry_after_before_any_hash_and_health_says_so() {
    // A deliberately slow hash (well over a second even in release), so
    // that an answer faster than a hash proves none was computed.
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = portcullis_tests::test_args(data_dir.path().join("data"));
    args.argon2_m_kib = Some(65_536);
    args.argon2_t = Some(40);
    let settings = portcullis::Settings::resolve(&args).expect("valid settings");
    let app = TestApp::spawn_with(data_dir, settings).await;
    app.register("locked").await;
    let started = std::time::Instant::now();
    app.login("locked").await;
    let one_hash = started.elapsed();
    assert!(
        one_hash >= std::time::Duration::from_millis(800),
        "the hash must be slow for this proof: {one_hash:?}"
    );

    let lock = portcullis_sqlite::SqliteStore::hold_write_lock_for_tests(&app.database_path())
        .expect("take the write lock");
    let registration = json!({
        "username": "newcomer",
        "email": "newcomer@example.com",
        "password": GOOD_PASSWORD,
    });
    let started = std::time::Instant::now();
    let response = app.register_json(&registration).await;
    let register_took = started.elapsed();
    assert_retry_later(&response, "registration");
    expect_problem(response, 503).await;
    let started = std::time::Instant::now();
    let response = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "locked"),
            ("password", GOOD_PASSWORD),
        ])
        .await;
    let login_took = started.elapsed();
    assert_retry_later(&response, "login");
    let body: Value = response.json().await.expect("OAuth error");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    let response = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 503, "health");
    let health: Value = response.json().await.expect("health body");
    assert_eq!(health["database"], "unavailable", "{health}");
    // The store waits about a second for the lock; a hash computed first
    // would add a whole hash on top of that.
    let limit = std::time::Duration::from_millis(1_300) + one_hash / 2;
    assert!(
        register_took < limit,
        "registration took {register_took:?}, one hash {one_hash:?}"
    );
    assert!(
        login_took < limit,
        "login took {login_took:?}, one hash {one_hash:?}"
    );

    drop(lock);
    assert_eq!(app.register_json(&registration).await.status(), 201);
    app.login("newcomer").await;
    let response = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "healthy again");
}

// --- finding 5: API keys and sessions are bounded, listings paginated --------

async fn create_key(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    call(
        app,
        Method::POST,
        "/users/me/api-keys",
        Some(&Credential::Bearer(token.to_owned())),
        Some(&json!({ "name": name })),
    )
    .await
}

/// The `rel="next"` target of a response's `Link` header, if any.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = crate::support::header(response.headers(), "link")?;
    let target = link
        .strip_prefix('<')
        .and_then(|rest| rest.split_once(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("an RFC 8288 next link: {link}"))
        .0;
    Some(target.to_owned())
}

#[tokio::test]
async fn the_101st_live_api_key_is_409_and_revoking_one_makes_room() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("hoarder").await;
    let mut first_id = None;
    for index in 0..100 {
        let response = create_key(&app, &token, &format!("key {index}")).await;
        assert_eq!(response.status(), 201, "key {index}");
        if first_id.is_none() {
            let created: Value = response.json().await.expect("key");
            first_id = created["id"].as_str().map(str::to_owned);
        }
    }

    let response = create_key(&app, &token, "one too many").await;
    let problem = expect_problem(response, 409).await;
    assert_eq!(problem["type"], "urn:portcullis:problem:api-key-limit");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("revoke a key")),
        "{problem}"
    );
    assert!(!problem.to_string().contains("one too many"), "{problem}");

    let path = format!("/users/me/api-keys/{}", first_id.expect("an id"));
    let credential = Credential::Bearer(token.clone());
    let response = call(&app, Method::DELETE, &path, Some(&credential), None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(create_key(&app, &token, "room again").await.status(), 201);
}

#[tokio::test]
async fn the_11th_api_key_creation_in_a_minute_is_429_with_retry_after() {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = portcullis_tests::test_args(data_dir.path().join("data"));
    args.api_key_creations_per_user_per_min = Some(10);
    let settings = portcullis::Settings::resolve(&args).expect("valid settings");
    let app = TestApp::spawn_with(data_dir, settings).await;
    let token = app.access_token_for("minter").await;
    for index in 0..10 {
        let response = create_key(&app, &token, &format!("key {index}")).await;
        assert_eq!(response.status(), 201, "key {index}");
    }

    let response = create_key(&app, &token, "eleventh").await;

    assert_eq!(response.status(), 429);
    let retry_after: u64 = crate::support::header(response.headers(), "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(retry_after >= 1);
    expect_problem(response, 429).await;
    // Another user has a budget of their own.
    let other = app.access_token_for("bystander").await;
    assert_eq!(create_key(&app, &other, "mine").await.status(), 201);
}

#[tokio::test]
async fn the_101st_login_leaves_100_sessions_and_the_least_recently_used_one_stops_working() {
    let app = TestApp::spawn().await;
    app.register("roamer").await;
    let oldest = app.login("roamer").await;
    // Stored times are whole seconds: make the first session strictly older.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let mut latest = Value::Null;
    for _ in 0..100 {
        latest = app.login("roamer").await;
    }
    let latest_token = latest["access_token"].as_str().expect("token");

    let response = app
        .client
        .get(app.url("/users/me/sessions"))
        .bearer_auth(latest_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(next_link(&response), None, "all fit on the default page");
    let sessions: Value = response.json().await.expect("sessions");
    assert_eq!(sessions.as_array().map(Vec::len), Some(100));

    let oldest_token = oldest["access_token"].as_str().expect("token");
    assert_eq!(app.me(oldest_token).await.status(), 401);
    let refresh = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                oldest["refresh_token"].as_str().expect("refresh"),
            ),
        ])
        .await;
    assert_eq!(refresh.status(), 400);
    assert_eq!(app.me(latest_token).await.status(), 200);
}

#[tokio::test]
async fn key_pages_return_every_key_exactly_once_with_a_link_on_all_but_the_last() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("pager").await;
    for index in 0..25 {
        assert_eq!(
            create_key(&app, &token, &format!("k{index}"))
                .await
                .status(),
            201
        );
    }
    let whole: Value = app
        .client
        .get(app.url("/users/me/api-keys"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("keys");
    let all: Vec<String> = whole
        .as_array()
        .expect("array")
        .iter()
        .map(|key| key["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(all.len(), 25);

    let mut seen = Vec::new();
    let mut links = Vec::new();
    let mut next = Some("/users/me/api-keys?limit=10".to_owned());
    while let Some(path) = next {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
        next = next_link(&response);
        links.push(next.is_some());
        let page: Value = response.json().await.expect("page");
        let page = page.as_array().expect("the body stays a JSON array");
        seen.extend(
            page.iter()
                .map(|key| key["id"].as_str().expect("id").to_owned()),
        );
        if let Some(next) = &next {
            assert!(
                next.starts_with("/users/me/api-keys?limit=10&cursor="),
                "{next}"
            );
        }
    }

    assert_eq!(links, [true, true, false], "Link on all but the last page");
    assert_eq!(seen, all, "every key once, newest first");
}

#[tokio::test]
async fn session_pages_follow_the_link_and_a_garbled_cursor_is_422_on_cursor() {
    let app = TestApp::spawn().await;
    let token = app.access_token_for("sessions").await;
    for _ in 0..2 {
        app.login("sessions").await;
    }
    let get = |path: String| app.client.get(app.url(&path)).bearer_auth(&token).send();

    let first = get("/users/me/sessions?limit=2".to_owned())
        .await
        .expect("request");
    assert_eq!(first.status(), 200);
    let next = next_link(&first).expect("a second page");
    assert!(
        next.starts_with("/users/me/sessions?limit=2&cursor="),
        "{next}"
    );
    let first: Value = first.json().await.expect("page");
    let second = get(next).await.expect("request");
    assert_eq!(second.status(), 200);
    assert_eq!(next_link(&second), None);
    let second: Value = second.json().await.expect("page");
    let ids: BTreeSet<&str> = [&first, &second]
        .into_iter()
        .flat_map(|page| page.as_array().expect("array"))
        .map(|session| session["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 3, "each of the three sessions once");

    for (path, field) in [
        ("/users/me/sessions?cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("/users/me/api-keys?cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("/users/me/api-keys?cursor=%21%21", "cursor"),
        ("/users/me/sessions?limit=0", "limit"),
        ("/users/me/api-keys?limit=101", "limit"),
    ] {
        let response = get(path.to_owned()).await.expect("request");
        let problem = expect_problem(response, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{path}: {problem}");
    }
}

#[tokio::test]
async fn the_openapi_document_declares_the_link_header_of_both_listings() {
    let app = TestApp::spawn().await;
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("document");
    for path in ["/users/me/api-keys", "/users/me/sessions"] {
        let operation = &document["paths"][path]["get"];
        // poem-openapi writes header names upper-case; HTTP does not care.
        let headers = operation["responses"]["200"]["headers"]
            .as_object()
            .expect("headers");
        assert!(
            headers.keys().any(|name| name.eq_ignore_ascii_case("link")),
            "{path}: {headers:?}"
        );
        let parameters: Vec<&str> = operation["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        assert!(
            parameters.contains(&"limit") && parameters.contains(&"cursor"),
            "{path}: {parameters:?}"
        );
    }
}
