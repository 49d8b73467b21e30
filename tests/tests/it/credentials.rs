//! The three credentials of "user" routes: bearer access tokens, API keys
//! (`X-API-Key`) and HTTP Basic; exactly one at a time; API key lifecycle and
//! scopes; what disabling and deleting an account does to them; and secrets
//! at rest.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_tests::{GOOD_PASSWORD, TestApp};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::{
    BEARER_CHALLENGE, Credential, INVALID_TOKEN_CHALLENGE, PROBLEM_JSON, admin_token_for,
    api_key_of, basic_authorization, call, error_fields, expect_admin_scope_missing,
    expect_problem, expect_unauthorized, header, make_admin, media_type, new_api_key,
    spawn_unthrottled,
};

/// The members of a `NewApiKey`, `key` included.
const NEW_API_KEY_MEMBERS: [&str; 8] = [
    "id",
    "name",
    "prefix",
    "scopes",
    "created_at",
    "last_used_at",
    "expires_at",
    "key",
];

/// Registers `username` and logs in: a bearer credential.
async fn bearer_for(app: &TestApp, username: &str) -> Credential {
    Credential::Bearer(app.access_token_for(username).await)
}

/// `GET /users/me` with `credential`.
async fn me_with(app: &TestApp, credential: &Credential) -> Response {
    call(app, Method::GET, "/users/me", Some(credential), None).await
}

/// Asserts `GET /users/me` with `credential` answers 200 for `username`.
async fn expect_me(app: &TestApp, credential: &Credential, username: &str, case: &str) {
    let response = me_with(app, credential).await;
    assert_eq!(response.status(), 200, "{case}");
    let me: Value = response.json().await.expect("user json");
    assert_eq!(me["username"], username, "{case}: {me}");
}

/// Asserts `GET /users/me` with `credential` is a 401 `invalid_token`.
async fn expect_refused(app: &TestApp, credential: &Credential, case: &str) {
    expect_unauthorized(
        me_with(app, credential).await,
        INVALID_TOKEN_CHALLENGE,
        case,
    )
    .await;
}

/// `POST /users/me/api-keys`, answer unchecked.
async fn create_key(app: &TestApp, credential: &Credential, body: &Value) -> Response {
    call(
        app,
        Method::POST,
        "/users/me/api-keys",
        Some(credential),
        Some(body),
    )
    .await
}

/// `GET /users/me/api-keys`, asserting 200; returns the raw body text.
async fn list_keys_text(app: &TestApp, credential: &Credential) -> String {
    let response = call(
        app,
        Method::GET,
        "/users/me/api-keys",
        Some(credential),
        None,
    )
    .await;
    assert_eq!(response.status(), 200, "listing API keys");
    response.text().await.expect("body")
}

/// `DELETE /users/me/api-keys/{id}`.
async fn revoke_key(app: &TestApp, credential: &Credential, id: &str) -> Response {
    call(
        app,
        Method::DELETE,
        &format!("/users/me/api-keys/{id}"),
        Some(credential),
        None,
    )
    .await
}

/// The user id of `username`, read through `credential`.
async fn user_id(app: &TestApp, credential: &Credential) -> String {
    let response = me_with(app, credential).await;
    assert_eq!(response.status(), 200, "reading the user id");
    let me: Value = response.json().await.expect("user json");
    me["id"].as_str().expect("id").to_owned()
}

/// Whether `key` has the documented shape: `pcl_` and 43 base64url characters.
fn is_portcullis_key(key: &str) -> bool {
    key.strip_prefix("pcl_").is_some_and(|secret| {
        secret.len() == 43
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

// --- each credential kind -------------------------------------------------------

#[tokio::test]
async fn a_bearer_token_an_api_key_and_basic_each_authenticate_get_users_me() {
    let app = spawn_unthrottled().await;
    let bearer = bearer_for(&app, "trio").await;
    expect_me(&app, &bearer, "trio", "bearer").await;

    let key = new_api_key(&app, &bearer, &json!({"name": "laptop"})).await;
    let api_key = Credential::ApiKey(api_key_of(&key));
    expect_me(&app, &api_key, "trio", "API key").await;

    expect_me(
        &app,
        &Credential::basic("trio", GOOD_PASSWORD),
        "trio",
        "Basic",
    )
    .await;
    expect_me(
        &app,
        &Credential::basic("TrIo", GOOD_PASSWORD),
        "trio",
        "Basic with the username in another case",
    )
    .await;
}

#[tokio::test]
async fn basic_works_with_a_password_that_contains_colons() {
    let app = spawn_unthrottled().await;
    let password = "colon:inside:this passphrase";
    let response = app
        .register_json(&json!({
            "username": "colonel",
            "email": "colonel@example.com",
            "password": password,
        }))
        .await;
    assert_eq!(response.status(), 201);

    // RFC 7617: the user-id ends at the first colon; the rest is the password.
    expect_me(
        &app,
        &Credential::basic("colonel", password),
        "colonel",
        "Basic with colons in the password",
    )
    .await;
    expect_refused(
        &app,
        &Credential::basic("colonel", "colon"),
        "only the part before the password's first colon",
    )
    .await;
}

// --- API key lifecycle ---------------------------------------------------------------

#[tokio::test]
async fn an_api_key_is_shown_once_listed_without_the_key_records_its_use_and_can_be_revoked() {
    let app = spawn_unthrottled().await;
    let owner = bearer_for(&app, "keyholder").await;

    let response = create_key(&app, &owner, &json!({"name": "ci deploy"})).await;
    assert_eq!(response.status(), 201);
    assert_eq!(media_type(response.headers()), "application/json");
    let created: Value = response.json().await.unwrap();
    let members: Vec<&String> = created.as_object().unwrap().keys().collect();
    for member in NEW_API_KEY_MEMBERS {
        assert!(
            created.get(member).is_some(),
            "`{member}` in NewApiKey {members:?}"
        );
    }
    assert_eq!(created["name"], "ci deploy");
    assert_eq!(
        created["scopes"],
        json!(["profile"]),
        "default: the creator's"
    );
    assert!(created["created_at"].is_string(), "{created}");
    assert_eq!(created["last_used_at"], Value::Null, "{created}");
    assert_eq!(
        created["expires_at"],
        Value::Null,
        "no expiry asked: {created}"
    );
    let key = api_key_of(&created);
    assert!(
        is_portcullis_key(&key),
        "the key's shape: {} chars",
        key.len()
    );
    let prefix = created["prefix"].as_str().unwrap();
    assert_eq!(prefix, &key[..12], "prefix is the first 12 characters");
    let id = created["id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&id).expect("the key id is a UUID");

    // Listed, but never with the key.
    let text = list_keys_text(&app, &owner).await;
    assert!(!text.contains(&key), "the list contains the key");
    let listed: Value = serde_json::from_str(&text).unwrap();
    let listed = listed.as_array().expect("a JSON array");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["prefix"], prefix);
    assert_eq!(listed[0]["name"], "ci deploy");
    assert!(listed[0].get("key").is_none(), "{}", listed[0]);
    assert_eq!(listed[0]["last_used_at"], Value::Null, "not used yet");

    // The first use is recorded.
    let api_key = Credential::ApiKey(key.clone());
    expect_me(&app, &api_key, "keyholder", "the new key").await;
    let text = list_keys_text(&app, &owner).await;
    assert!(!text.contains(&key), "the list contains the key after use");
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert!(
        listed[0]["last_used_at"].is_string(),
        "last_used_at after the first use: {listed}"
    );

    // Revoked: dead at once, and gone from the list.
    assert_eq!(revoke_key(&app, &owner, &id).await.status(), 204);
    expect_refused(&app, &api_key, "a revoked key").await;
    let listed: Value = serde_json::from_str(&list_keys_text(&app, &owner).await).unwrap();
    assert_eq!(listed, json!([]), "no revoked key listed");
    expect_problem(revoke_key(&app, &owner, &id).await, 404).await;
}

#[tokio::test]
async fn another_users_api_key_cannot_be_revoked() {
    let app = spawn_unthrottled().await;
    let alice = bearer_for(&app, "alice").await;
    let mallory = bearer_for(&app, "mallory").await;
    let created = new_api_key(&app, &alice, &json!({"name": "alice's"})).await;
    let id = created["id"].as_str().unwrap();

    expect_problem(revoke_key(&app, &mallory, id).await, 404).await;
    expect_me(
        &app,
        &Credential::ApiKey(api_key_of(&created)),
        "alice",
        "alice's key after mallory's attempt",
    )
    .await;
    // Unknown and malformed ids are 404 too.
    let random = uuid::Uuid::new_v4().to_string();
    expect_problem(revoke_key(&app, &alice, &random).await, 404).await;
    expect_problem(revoke_key(&app, &alice, "not-a-uuid").await, 404).await;
}

#[tokio::test]
async fn an_api_key_with_an_expiry_reports_it() {
    let app = spawn_unthrottled().await;
    let owner = bearer_for(&app, "expiring").await;
    let created = new_api_key(
        &app,
        &owner,
        &json!({"name": "short-lived", "expires_in_days": 30}),
    )
    .await;
    let parse = |member: &str| {
        time::OffsetDateTime::parse(
            created[member]
                .as_str()
                .unwrap_or_else(|| panic!("{member}")),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or_else(|e| panic!("{member} is RFC 3339: {e}"))
    };
    let lifetime = parse("expires_at") - parse("created_at");
    assert_eq!(lifetime.whole_days(), 30, "{created}");
    expect_me(
        &app,
        &Credential::ApiKey(api_key_of(&created)),
        "expiring",
        "a key that has not expired yet",
    )
    .await;
}

// --- API key scopes -------------------------------------------------------------------

#[tokio::test]
async fn an_admins_profile_only_api_key_cannot_use_the_admin_api() {
    let app = spawn_unthrottled().await;
    let admin = Credential::Bearer(admin_token_for(&app, "keyadmin").await);
    let created = new_api_key(
        &app,
        &admin,
        &json!({"name": "profile only", "scopes": ["profile"]}),
    )
    .await;
    assert_eq!(created["scopes"], json!(["profile"]), "{created}");
    let key = Credential::ApiKey(api_key_of(&created));

    let response = call(&app, Method::GET, "/admin/users", Some(&key), None).await;
    expect_admin_scope_missing(response, "a profile-only key on /admin/users").await;
    expect_me(&app, &key, "keyadmin", "a profile-only key on /users/me").await;

    // The admin's default key carries every admin scope and does reach the admin API.
    let full = new_api_key(&app, &admin, &json!({"name": "everything"})).await;
    let mut scopes: Vec<String> = serde_json::from_value(full["scopes"].clone()).unwrap();
    scopes.sort();
    assert_eq!(scopes, ["admin", "introspect", "profile"], "{full}");
    let full = Credential::ApiKey(api_key_of(&full));
    let response = call(&app, Method::GET, "/admin/users", Some(&full), None).await;
    assert_eq!(response.status(), 200, "an admin key on /admin/users");
}

#[tokio::test]
async fn an_api_key_cannot_carry_more_than_the_credential_that_creates_it() {
    let app = spawn_unthrottled().await;
    let user = bearer_for(&app, "ordinary").await;
    let problem = expect_problem(
        create_key(
            &app,
            &user,
            &json!({"name": "wishful", "scopes": ["admin"]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&problem), ["scopes"], "{problem}");

    // An admin whose token was narrowed to `profile` cannot mint an admin key.
    app.register("narrowed").await;
    make_admin(&app, "narrowed").await;
    let response = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "narrowed"),
            ("password", GOOD_PASSWORD),
            ("scope", "profile"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let grant: Value = response.json().await.unwrap();
    assert_eq!(grant["scope"], "profile", "{grant}");
    let narrowed = Credential::Bearer(grant["access_token"].as_str().unwrap().to_owned());
    for scopes in [json!(["admin"]), json!(["profile", "admin"])] {
        let problem = expect_problem(
            create_key(
                &app,
                &narrowed,
                &json!({"name": "escalation", "scopes": scopes}),
            )
            .await,
            422,
        )
        .await;
        assert_eq!(error_fields(&problem), ["scopes"], "{scopes}: {problem}");
    }
    // Its default key has only what the token has.
    let default = new_api_key(&app, &narrowed, &json!({"name": "default"})).await;
    assert_eq!(default["scopes"], json!(["profile"]), "{default}");
    let text = list_keys_text(&app, &narrowed).await;
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "nothing else created");
}

#[tokio::test]
async fn invalid_api_key_requests_are_422_on_the_offending_field() {
    let app = spawn_unthrottled().await;
    let owner = bearer_for(&app, "picky").await;
    let cases = [
        (
            json!({"name": "zero days", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"name": "ten years plus", "expires_in_days": 4000}),
            "expires_in_days",
        ),
        (json!({"name": ""}), "name"),
        (json!({"name": "rooted", "scopes": ["root"]}), "scopes"),
    ];
    for (body, field) in cases {
        let problem = expect_problem(create_key(&app, &owner, &body).await, 422).await;
        assert_eq!(error_fields(&problem), [field], "{body}: {problem}");
    }
    let listed: Value = serde_json::from_str(&list_keys_text(&app, &owner).await).unwrap();
    assert_eq!(listed, json!([]), "no key was created");
}

#[tokio::test]
async fn malformed_api_keys_are_401_invalid_token() {
    let app = spawn_unthrottled().await;
    let random = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let unprefixed = &random[..48];
    // A well-formed key that was never issued.
    let unknown = format!("pcl_{}", &random[..43]);
    for key in ["nope", "pcl_short", unprefixed, unknown.as_str()] {
        expect_refused(&app, &Credential::ApiKey(key.to_owned()), key).await;
    }
}

// --- disabling and deleting the owner ---------------------------------------------

#[tokio::test]
async fn disabling_a_user_kills_its_keys_and_tokens_at_once_and_re_enabling_does_not_revive_them() {
    let app = spawn_unthrottled().await;
    let admin = Credential::Bearer(admin_token_for(&app, "warden").await);
    let token = bearer_for(&app, "inmate").await;
    let key = Credential::ApiKey(api_key_of(
        &new_api_key(&app, &token, &json!({"name": "escape"})).await,
    ));
    expect_me(&app, &key, "inmate", "the key before").await;
    expect_me(&app, &token, "inmate", "the token before").await;
    let id = user_id(&app, &token).await;
    let path = format!("/admin/users/{id}");

    let response = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(response.status(), 200, "disabling");
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["disabled"], true, "{user}");
    expect_refused(&app, &key, "the key of a disabled user").await;
    expect_refused(&app, &token, "the token of a disabled user").await;
    expect_unauthorized(
        me_with(&app, &Credential::basic("inmate", GOOD_PASSWORD)).await,
        INVALID_TOKEN_CHALLENGE,
        "Basic for a disabled user",
    )
    .await;

    let response = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(&json!({"disabled": false})),
    )
    .await;
    assert_eq!(response.status(), 200, "re-enabling");
    expect_refused(&app, &key, "the key after re-enabling").await;
    expect_refused(&app, &token, "the token after re-enabling").await;
    let fresh = Credential::Bearer(
        app.login("inmate").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    expect_me(&app, &fresh, "inmate", "a new login after re-enabling").await;
}

#[tokio::test]
async fn deleting_a_user_kills_its_api_keys() {
    let app = spawn_unthrottled().await;
    let admin = Credential::Bearer(admin_token_for(&app, "reaper").await);
    let token = bearer_for(&app, "doomed").await;
    let key = Credential::ApiKey(api_key_of(
        &new_api_key(&app, &token, &json!({"name": "last words"})).await,
    ));
    expect_me(&app, &key, "doomed", "the key before").await;
    let id = user_id(&app, &token).await;

    let response = call(
        &app,
        Method::DELETE,
        &format!("/admin/users/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    expect_refused(&app, &key, "the key of a deleted user").await;
    expect_refused(&app, &token, "the token of a deleted user").await;

    // A new account of the same name does not inherit the key.
    app.register("doomed").await;
    expect_refused(&app, &key, "the old key, new account of the same name").await;
}

// --- Basic failures ---------------------------------------------------------------------

#[tokio::test]
async fn basic_with_a_wrong_password_or_an_unknown_user_is_401_invalid_token_with_a_bearer_challenge()
 {
    let app = spawn_unthrottled().await;
    app.register("basher").await;
    for (username, password, case) in [
        ("basher", "definitely not the password", "a wrong password"),
        ("nobody-here", GOOD_PASSWORD, "an unknown user"),
        ("basher", "", "an empty password"),
    ] {
        expect_unauthorized(
            me_with(&app, &Credential::basic(username, password)).await,
            INVALID_TOKEN_CHALLENGE,
            case,
        )
        .await;
    }
}

#[tokio::test]
async fn a_malformed_basic_value_is_401() {
    let app = spawn_unthrottled().await;
    app.register("mangled").await;
    // Valid base64, but of a value without the colon separating the password.
    let no_colon = format!(
        "Basic {}",
        STANDARD.encode(format!("mangled{GOOD_PASSWORD}"))
    );
    for value in [
        "Basic !!!not-base64!!!".to_owned(),
        "Basic bm90IGJhc2U2NA===".to_owned(),
        no_colon,
    ] {
        let response = app
            .client
            .get(app.url("/users/me"))
            .header("authorization", &value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{value}");
        let challenge = header(response.headers(), "www-authenticate")
            .unwrap_or_default()
            .to_owned();
        assert!(
            challenge.starts_with(BEARER_CHALLENGE),
            "{value}: {challenge:?}"
        );
        assert!(
            !challenge.to_ascii_lowercase().contains("basic"),
            "{value}: {challenge:?}"
        );
        expect_problem(response, 401).await;
    }
}

// --- exactly one credential ---------------------------------------------------------

#[tokio::test]
async fn two_credentials_at_once_are_a_400_problem() {
    let app = spawn_unthrottled().await;
    let token = app.access_token_for("doubler").await;
    let key = api_key_of(
        &new_api_key(
            &app,
            &Credential::Bearer(token.clone()),
            &json!({"name": "second"}),
        )
        .await,
    );
    let cases = [
        ("bearer and API key", format!("Bearer {token}")),
        (
            "Basic and API key",
            basic_authorization("doubler", GOOD_PASSWORD),
        ),
    ];
    for (case, authorization) in cases {
        let response = app
            .client
            .get(app.url("/users/me"))
            .header("authorization", authorization)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{case}");
        assert_eq!(media_type(response.headers()), PROBLEM_JSON, "{case}");
        let body = expect_problem(response, 400).await;
        let text = body.to_string();
        assert!(!text.contains(&key), "{case}: the key is echoed: {text}");
        assert!(
            !text.contains(&token),
            "{case}: the token is echoed: {text}"
        );
    }
    // Each alone still works.
    expect_me(
        &app,
        &Credential::Bearer(token),
        "doubler",
        "the token alone",
    )
    .await;
    expect_me(&app, &Credential::ApiKey(key), "doubler", "the key alone").await;
}

#[tokio::test]
async fn two_authorization_headers_or_two_api_key_headers_are_a_400_problem() {
    let app = spawn_unthrottled().await;
    let token = app.access_token_for("twinned").await;
    let key = api_key_of(
        &new_api_key(
            &app,
            &Credential::Bearer(token.clone()),
            &json!({"name": "twin"}),
        )
        .await,
    );
    let bearer = format!("Bearer {token}");
    let basic = basic_authorization("twinned", GOOD_PASSWORD);
    let cases: [(&str, &str, [&str; 2]); 5] = [
        (
            "a bearer token and Basic",
            "authorization",
            [&bearer, &basic],
        ),
        (
            "Basic and a bearer token",
            "authorization",
            [&basic, &bearer],
        ),
        (
            "a good and a junk bearer token",
            "authorization",
            [&bearer, "Bearer junk"],
        ),
        (
            "a junk and a good bearer token",
            "authorization",
            ["Bearer junk", &bearer],
        ),
        ("a good and a junk API key", "x-api-key", [&key, "pcl_junk"]),
    ];
    let mut wrong = Vec::new();
    for (case, name, values) in cases {
        // `RequestBuilder::header` appends: two field lines of the same name.
        let response = app
            .client
            .get(app.url("/users/me"))
            .header(name, values[0])
            .header(name, values[1])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 400 {
            expect_problem(response, 400).await;
        } else {
            wrong.push(format!("two `{name}` lines carrying {case}: {status}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "exactly one credential is allowed, so these should be 400:\n  {}",
        wrong.join("\n  ")
    );
}

// --- secrets at rest ------------------------------------------------------------------

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

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn no_password_token_or_api_key_is_stored_in_the_clear() {
    let mut app = spawn_unthrottled().await;
    let password = "api key storage sentinel passphrase";
    let response = app
        .register_json(&json!({
            "username": "vault",
            "email": "vault.sentinel@example.com",
            "password": password,
        }))
        .await;
    assert_eq!(response.status(), 201);
    let grant: Value = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "vault"),
            ("password", password),
        ])
        .await
        .json()
        .await
        .unwrap();
    let access = grant["access_token"].as_str().unwrap().to_owned();
    let refresh = grant["refresh_token"].as_str().unwrap().to_owned();
    let created = new_api_key(
        &app,
        &Credential::Bearer(access.clone()),
        &json!({"name": "sentinel key"}),
    )
    .await;
    let key = api_key_of(&created);
    // Use it, so its bookkeeping is written too.
    expect_me(&app, &Credential::ApiKey(key.clone()), "vault", "the key").await;
    let secrets = [
        ("password", password),
        ("refresh token", refresh.as_str()),
        ("access token", access.as_str()),
        ("API key", key.as_str()),
        // The part of the key after the shown prefix must not be there either.
        ("API key secret part", &key[12..]),
    ];

    let db = app.database_path();
    let check = |files: &[PathBuf], moment: &str| {
        assert!(
            files.iter().any(|f| f == &db),
            "{moment}: the database file exists: {files:?}"
        );
        let all: Vec<u8> = files
            .iter()
            .flat_map(|f| std::fs::read(f).expect("readable"))
            .collect();
        // The scan reads the right files: the email is stored in plain text.
        assert!(
            contains(&all, "vault.sentinel@example.com"),
            "{moment}: the scan sees the data"
        );
        for file in files {
            let bytes = std::fs::read(file).expect("readable");
            for (name, secret) in &secrets {
                assert!(
                    !contains(&bytes, secret),
                    "{moment}: the {name} appears in {}",
                    file.display()
                );
            }
        }
    };
    check(&database_files(&app), "while running");
    app.shutdown().await;
    check(&database_files(&app), "after shutdown");
}

#[tokio::test]
async fn no_credential_is_401_with_the_plain_bearer_challenge() {
    let app = spawn_unthrottled().await;
    let response = app.client.get(app.url("/users/me")).send().await.unwrap();
    expect_unauthorized(response, BEARER_CHALLENGE, "no credential").await;
    // An empty X-API-Key is a presented but unusable credential.
    let response = app
        .client
        .get(app.url("/users/me"))
        .header("x-api-key", "")
        .send()
        .await
        .unwrap();
    expect_unauthorized(response, INVALID_TOKEN_CHALLENGE, "an empty X-API-Key").await;
}
