//! The admin API: `/admin/users` listing with cursor pagination and search,
//! reading, changing and deleting accounts, the `admin` scope on every
//! operation, and the last-admin guard.

use std::collections::HashSet;

use portcullis_tests::{GOOD_PASSWORD, TestApp};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::{
    Credential, INVALID_TOKEN_CHALLENGE, admin_token_for, api_key_of, call, error_fields,
    expect_admin_scope_missing, expect_oauth_error, expect_problem, expect_unauthorized,
    jwt_claims, make_admin, new_api_key, spawn_unthrottled,
};

/// The problem type of the last-admin guard.
const LAST_ADMIN: &str = "urn:portcullis:problem:last-admin";

/// An admin's bearer credential: registers `username`, promotes it behind
/// the application's back and logs in.
async fn admin(app: &TestApp, username: &str) -> Credential {
    Credential::Bearer(admin_token_for(app, username).await)
}

/// Registers and logs in an ordinary user; returns its id and bearer
/// credential.
async fn user(app: &TestApp, username: &str) -> (String, Credential) {
    let registered = app.register(username).await;
    let id = registered["id"].as_str().expect("id").to_owned();
    let token = app.login(username).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    (id, Credential::Bearer(token))
}

/// The id of `credential`'s own account.
async fn own_id(app: &TestApp, credential: &Credential) -> String {
    let response = call(app, Method::GET, "/users/me", Some(credential), None).await;
    assert_eq!(response.status(), 200, "GET /users/me");
    let me: Value = response.json().await.expect("user json");
    me["id"].as_str().expect("id").to_owned()
}

/// `GET /admin/users{query}`, answer unchecked.
async fn list(app: &TestApp, credential: &Credential, query: &str) -> Response {
    call(
        app,
        Method::GET,
        &format!("/admin/users{query}"),
        Some(credential),
        None,
    )
    .await
}

/// `GET /admin/users{query}`, asserting 200; returns the page.
async fn page(app: &TestApp, credential: &Credential, query: &str) -> Value {
    let response = list(app, credential, query).await;
    assert_eq!(response.status(), 200, "GET /admin/users{query}");
    let page: Value = response.json().await.expect("page json");
    assert!(page["items"].is_array(), "{page}");
    page
}

/// The usernames of a page's items.
fn usernames(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|user| user["username"].as_str().expect("username").to_owned())
        .collect()
}

/// `GET /admin/users/{id}`.
async fn get_user(app: &TestApp, credential: &Credential, id: &str) -> Response {
    call(
        app,
        Method::GET,
        &format!("/admin/users/{id}"),
        Some(credential),
        None,
    )
    .await
}

/// `PATCH /admin/users/{id}`.
async fn patch_user(app: &TestApp, credential: &Credential, id: &str, body: &Value) -> Response {
    call(
        app,
        Method::PATCH,
        &format!("/admin/users/{id}"),
        Some(credential),
        Some(body),
    )
    .await
}

/// `PATCH /admin/users/{id}`, asserting 200; returns the user.
async fn patched(app: &TestApp, credential: &Credential, id: &str, body: &Value) -> Value {
    let response = patch_user(app, credential, id, body).await;
    assert_eq!(response.status(), 200, "PATCH {id} with {body}");
    response.json().await.expect("user json")
}

/// `DELETE /admin/users/{id}`.
async fn delete_user(app: &TestApp, credential: &Credential, id: &str) -> Response {
    call(
        app,
        Method::DELETE,
        &format!("/admin/users/{id}"),
        Some(credential),
        None,
    )
    .await
}

/// Asserts a 409 last-admin problem.
async fn expect_last_admin(response: Response, case: &str) {
    assert_eq!(response.status(), 409, "{case}");
    let problem = expect_problem(response, 409).await;
    assert_eq!(problem["type"], LAST_ADMIN, "{case}: {problem}");
}

/// Asserts `credential` still reaches the admin API.
async fn expect_admin_alive(app: &TestApp, credential: &Credential, case: &str) {
    assert_eq!(
        list(app, credential, "").await.status(),
        200,
        "{case}: GET /admin/users"
    );
}

// --- the admin scope ---------------------------------------------------------------

#[tokio::test]
async fn every_admin_endpoint_refuses_a_profile_only_credential_and_serves_an_admin() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let (target, target_token) = user(&app, "target").await;
    let (_, plain) = user(&app, "plain").await;
    let plain_key = Credential::ApiKey(api_key_of(
        &new_api_key(&app, &plain, &json!({"name": "k"})).await,
    ));
    let plain_basic = Credential::basic("plain", GOOD_PASSWORD);
    // An admin whose token was narrowed to `profile`.
    app.register("narrow").await;
    make_admin(&app, "narrow").await;
    let grant: Value = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "narrow"),
            ("password", GOOD_PASSWORD),
            ("scope", "profile"),
        ])
        .await
        .json()
        .await
        .unwrap();
    let narrowed = Credential::Bearer(grant["access_token"].as_str().unwrap().to_owned());

    let item = format!("/admin/users/{target}");
    let patch = json!({"full_name": "Changed By Nobody"});
    let operations: [(Method, &str, Option<&Value>); 4] = [
        (Method::GET, "/admin/users", None),
        (Method::GET, &item, None),
        (Method::PATCH, &item, Some(&patch)),
        (Method::DELETE, &item, None),
    ];
    let outsiders = [
        ("a user's bearer token", &plain),
        ("a user's API key", &plain_key),
        ("a user's Basic credential", &plain_basic),
        ("an admin's token narrowed to profile", &narrowed),
    ];
    for (who, credential) in outsiders {
        for (method, path, body) in &operations {
            let response = call(&app, method.clone(), path, Some(credential), *body).await;
            expect_admin_scope_missing(response, &format!("{method} {path} with {who}")).await;
        }
    }
    // Nothing happened to the target.
    let me: Value = call(&app, Method::GET, "/users/me", Some(&target_token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["full_name"], Value::Null, "unchanged: {me}");

    // The admin is served.
    assert_eq!(list(&app, &root, "").await.status(), 200);
    assert_eq!(get_user(&app, &root, &target).await.status(), 200);
    let changed = patched(&app, &root, &target, &patch).await;
    assert_eq!(changed["full_name"], "Changed By Nobody");
    assert_eq!(delete_user(&app, &root, &target).await.status(), 204);
}

// --- listing ------------------------------------------------------------------------

#[tokio::test]
async fn pages_chained_by_next_cursor_cover_everyone_once_even_while_users_register() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let names = ["ann", "bob", "cara", "dave", "erin", "finn", "gus"];
    for name in names {
        app.register(name).await;
    }

    // Without a new user: 3 + 3 + 2.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("?limit=3&cursor={cursor}"),
            None => "?limit=3".to_owned(),
        };
        let page = page(&app, &root, &query).await;
        let items = usernames(&page);
        assert!(items.len() <= 3, "{page}");
        seen.extend(items);
        pages += 1;
        assert!(pages <= 10, "the pages never end: {seen:?}");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert_eq!(page["next_cursor"], Value::Null, "{page}");
                break;
            }
        }
    }
    let mut expected: Vec<String> = std::iter::once("root")
        .chain(names)
        .map(str::to_owned)
        .collect();
    assert_eq!(seen, expected, "oldest first, each exactly once");
    assert_eq!(pages, 3);
    // Every item is a `User`, and nothing more.
    for item in page(&app, &root, "?limit=100").await["items"]
        .as_array()
        .unwrap()
    {
        let mut members: Vec<&String> = item.as_object().unwrap().keys().collect();
        members.sort();
        assert_eq!(
            members,
            [
                "created_at",
                "disabled",
                "email",
                "full_name",
                "id",
                "roles",
                "username"
            ],
            "{item}"
        );
    }

    // A user registering between page 1 and page 2.
    let first = page(&app, &root, "?limit=3").await;
    let mut seen = usernames(&first);
    app.register("latecomer").await;
    expected.push("latecomer".to_owned());
    let mut cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let last = loop {
        let page = page(&app, &root, &format!("?limit=3&cursor={cursor}")).await;
        seen.extend(usernames(&page));
        assert!(seen.len() <= expected.len(), "repeats: {seen:?}");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break page,
        }
    };
    assert_eq!(seen, expected, "no repeat, no skip");
    assert_eq!(
        usernames(&last).last().map(String::as_str),
        Some("latecomer"),
        "the new user is on the last page: {last}"
    );
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "{seen:?}");
}

#[tokio::test]
async fn a_limit_outside_1_to_100_or_a_foreign_cursor_is_422() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=-1",
        "?cursor=garbage",
        "?cursor=%27%3B--",
    ] {
        expect_problem(list(&app, &root, query).await, 422).await;
    }
    for query in ["?limit=1", "?limit=100", ""] {
        let page = page(&app, &root, query).await;
        assert_eq!(usernames(&page), ["root"], "{query}");
        assert_eq!(page["next_cursor"], Value::Null, "{query}: {page}");
    }
    let page = page(&app, &root, "?limit=100").await;
    assert_eq!(page["items"][0]["roles"], json!(["admin"]), "{page}");
}

#[tokio::test]
async fn q_matches_a_substring_of_username_or_email_case_insensitively_and_literally() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    for name in ["erin", "erik", "kate", "snake_case"] {
        app.register(name).await;
    }
    let response = app
        .register_json(&json!({
            "username": "quinn",
            "email": "Quinn.Special@Example.ORG",
            "password": GOOD_PASSWORD,
        }))
        .await;
    assert_eq!(response.status(), 201);

    assert_eq!(
        search(&app, &root, "ERI").await,
        ["erik", "erin"],
        "username, upper-case q"
    );
    assert_eq!(
        search(&app, &root, "special%40example.org").await,
        ["quinn"],
        "email"
    );
    assert_eq!(
        search(&app, &root, "EXAMPLE.org").await,
        ["quinn"],
        "email, mixed case"
    );
    assert_eq!(search(&app, &root, "ate").await, ["kate"]);
    // `%` and `_` mean themselves, not LIKE wildcards.
    assert_eq!(
        search(&app, &root, "%25").await,
        Vec::<String>::new(),
        "q=%"
    );
    assert_eq!(search(&app, &root, "_").await, ["snake_case"], "q=_");
    assert_eq!(
        search(&app, &root, "nobody-matches").await,
        Vec::<String>::new()
    );
    // Combined with paging.
    let first = page(&app, &root, "?q=e&limit=1").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1, "{first}");
    assert!(first["next_cursor"].is_string(), "{first}");
}

/// The sorted usernames `GET /admin/users?q={q}` finds (`q` URL-encoded).
async fn search(app: &TestApp, credential: &Credential, q: &str) -> Vec<String> {
    let mut found = usernames(&page(app, credential, &format!("?q={q}")).await);
    found.sort();
    found
}

// --- reading one ---------------------------------------------------------------------

#[tokio::test]
async fn get_admin_users_id_returns_the_user_and_404_for_unknown_or_malformed_ids() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let registered = app.register("looked-up").await;
    let id = registered["id"].as_str().unwrap();

    let response = get_user(&app, &root, id).await;
    assert_eq!(response.status(), 200);
    let found: Value = response.json().await.unwrap();
    assert_eq!(found, registered, "the same User as at registration");

    let random = uuid::Uuid::new_v4().to_string();
    expect_problem(get_user(&app, &root, &random).await, 404).await;
    expect_problem(get_user(&app, &root, "not-a-uuid").await, 404).await;
    expect_problem(
        patch_user(&app, &root, &random, &json!({"full_name": "x"})).await,
        404,
    )
    .await;
    expect_problem(delete_user(&app, &root, &random).await, 404).await;
}

// --- changing ------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_changes_email_and_full_name_and_null_clears_the_name() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let (id, token) = user(&app, "renamed").await;

    let changed = patched(
        &app,
        &root,
        &id,
        &json!({"email": "new.address@example.net", "full_name": "Renée Named"}),
    )
    .await;
    assert_eq!(changed["email"], "new.address@example.net", "{changed}");
    assert_eq!(changed["full_name"], "Renée Named", "{changed}");
    assert_eq!(changed["id"], id.as_str());
    assert_eq!(changed["roles"], json!(["user"]));
    assert_eq!(changed["disabled"], false);

    // Absent fields are left alone; null clears the name.
    let cleared = patched(&app, &root, &id, &json!({"full_name": null})).await;
    assert_eq!(cleared["full_name"], Value::Null, "{cleared}");
    assert_eq!(cleared["email"], "new.address@example.net", "{cleared}");

    // The user sees the same through its own token.
    let me: Value = call(&app, Method::GET, "/users/me", Some(&token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me, cleared);
    let fetched: Value = get_user(&app, &root, &id).await.json().await.unwrap();
    assert_eq!(fetched, cleared);
}

#[tokio::test]
async fn roles_admin_promotes_and_the_new_login_carries_the_admin_scope() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let (id, old_token) = user(&app, "riser").await;

    let promoted = patched(&app, &root, &id, &json!({"roles": ["admin"]})).await;
    assert_eq!(promoted["roles"], json!(["admin"]), "{promoted}");

    let grant = app.login("riser").await;
    let mut scopes: Vec<&str> = grant["scope"].as_str().unwrap().split(' ').collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["admin", "introspect", "profile"], "{grant}");
    let mut claimed: Vec<String> = jwt_claims(grant["access_token"].as_str().unwrap())["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect();
    claimed.sort();
    assert_eq!(claimed, ["admin", "introspect", "profile"]);
    let new_token = Credential::Bearer(grant["access_token"].as_str().unwrap().to_owned());
    expect_admin_alive(&app, &new_token, "the promoted user's new login").await;

    // A token granted before the promotion keeps its narrower grant.
    expect_admin_scope_missing(
        list(&app, &old_token, "").await,
        "a token from before the promotion",
    )
    .await;
}

#[tokio::test]
async fn roles_user_demotes_and_the_demoted_users_existing_credentials_lose_the_admin_scope_at_once()
 {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let deputy = admin(&app, "deputy").await;
    let deputy_key = Credential::ApiKey(api_key_of(
        &new_api_key(&app, &deputy, &json!({"name": "deputy's"})).await,
    ));
    expect_admin_alive(&app, &deputy, "the deputy's token before").await;
    expect_admin_alive(&app, &deputy_key, "the deputy's key before").await;
    let id = own_id(&app, &deputy).await;

    let demoted = patched(&app, &root, &id, &json!({"roles": ["user"]})).await;
    assert_eq!(demoted["roles"], json!(["user"]), "{demoted}");

    expect_admin_scope_missing(list(&app, &deputy, "").await, "the demoted token").await;
    expect_admin_scope_missing(list(&app, &deputy_key, "").await, "the demoted key").await;
    let basic = Credential::basic("deputy", GOOD_PASSWORD);
    expect_admin_scope_missing(list(&app, &basic, "").await, "the demoted Basic").await;
    // Still a user.
    let me = call(&app, Method::GET, "/users/me", Some(&deputy), None).await;
    assert_eq!(me.status(), 200, "the demoted user's profile");
    // And a new login asks in vain for the admin scope.
    expect_oauth_error(
        app.token_form(&[
            ("grant_type", "password"),
            ("username", "deputy"),
            ("password", GOOD_PASSWORD),
            ("scope", "admin"),
        ])
        .await,
        "invalid_scope",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_role_is_422_and_a_taken_email_is_409() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let (id, _) = user(&app, "changing").await;
    app.register("occupant").await;

    for roles in [json!(["root"]), json!(["admin", "root"])] {
        let problem = expect_problem(
            patch_user(&app, &root, &id, &json!({"roles": roles})).await,
            422,
        )
        .await;
        assert_eq!(error_fields(&problem), ["roles"], "{roles}: {problem}");
    }
    let problem = expect_problem(
        patch_user(&app, &root, &id, &json!({"email": "OCCUPANT@example.com"})).await,
        409,
    )
    .await;
    assert_eq!(error_fields(&problem), ["email"], "{problem}");

    // Nothing changed, not even partly.
    let problem = expect_problem(
        patch_user(
            &app,
            &root,
            &id,
            &json!({"email": "occupant@example.com", "full_name": "Half Done"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(error_fields(&problem), ["email"], "{problem}");
    let user: Value = get_user(&app, &root, &id).await.json().await.unwrap();
    assert_eq!(user["email"], "changing@example.com", "{user}");
    assert_eq!(user["full_name"], Value::Null, "{user}");
    assert_eq!(user["roles"], json!(["user"]), "{user}");
}

// --- the last admin ------------------------------------------------------------------

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_disabled_or_deleted_until_there_is_another() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let id = own_id(&app, &root).await;

    expect_last_admin(
        patch_user(&app, &root, &id, &json!({"roles": ["user"]})).await,
        "demoting the last admin",
    )
    .await;
    expect_last_admin(
        patch_user(&app, &root, &id, &json!({"disabled": true})).await,
        "disabling the last admin",
    )
    .await;
    expect_last_admin(
        delete_user(&app, &root, &id).await,
        "deleting the last admin",
    )
    .await;
    expect_last_admin(
        call(
            &app,
            Method::DELETE,
            "/users/me",
            Some(&root),
            Some(&json!({"password": GOOD_PASSWORD})),
        )
        .await,
        "the last admin deleting its own account",
    )
    .await;
    expect_admin_alive(&app, &root, "the last admin after the refusals").await;
    let unchanged: Value = get_user(&app, &root, &id).await.json().await.unwrap();
    assert_eq!(unchanged["roles"], json!(["admin"]), "{unchanged}");
    assert_eq!(unchanged["disabled"], false, "{unchanged}");

    // A disabled admin does not count as another admin.
    let (dormant, _) = user(&app, "dormant").await;
    patched(
        &app,
        &root,
        &dormant,
        &json!({"roles": ["admin"], "disabled": true}),
    )
    .await;
    expect_last_admin(
        patch_user(&app, &root, &id, &json!({"roles": ["user"]})).await,
        "demoting the last enabled admin",
    )
    .await;

    // With a second enabled admin, the first can step down.
    let (second, _) = user(&app, "second").await;
    patched(&app, &root, &second, &json!({"roles": ["admin"]})).await;
    let demoted = patched(&app, &root, &id, &json!({"roles": ["user"]})).await;
    assert_eq!(demoted["roles"], json!(["user"]), "{demoted}");
    expect_admin_scope_missing(list(&app, &root, "").await, "the stepped-down admin").await;

    // And now the second is the last one.
    let second_token = Credential::Bearer(
        app.login("second").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    expect_last_admin(
        delete_user(&app, &second_token, &second).await,
        "deleting the new last admin",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_or_deleting_each_other_at_once_leave_exactly_one_admin() {
    for round in 0..6 {
        let deleting = round % 2 == 1;
        // A fresh app each round: these two are its only admins.
        let app = spawn_unthrottled().await;
        let a = admin(&app, "left").await;
        let b = admin(&app, "right").await;
        let a_id = own_id(&app, &a).await;
        let b_id = own_id(&app, &b).await;
        let demote = json!({"roles": ["user"]});
        let (first, second) = if deleting {
            tokio::join!(delete_user(&app, &a, &b_id), delete_user(&app, &b, &a_id))
        } else {
            tokio::join!(
                patch_user(&app, &a, &b_id, &demote),
                patch_user(&app, &b, &a_id, &demote)
            )
        };
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        let success = if deleting { 204 } else { 200 };
        // The loser is refused by the last-admin guard, or, when the winner
        // got there first, already lacks the scope (403) or the account (401).
        assert!(
            statuses[0] == success && [401, 403, 409].contains(&statuses[1]),
            "round {round}: {statuses:?}"
        );
        let mut survivors = Vec::new();
        for credential in [&a, &b] {
            if list(&app, credential, "").await.status() == 200 {
                survivors.push(credential);
            }
        }
        assert_eq!(survivors.len(), 1, "round {round}: one admin is left");
        let everyone = page(&app, survivors[0], "").await;
        let admins: Vec<&Value> = everyone["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|user| user["roles"] == json!(["admin"]) && user["disabled"] == false)
            .collect();
        assert_eq!(admins.len(), 1, "round {round}: {everyone}");
    }
}

// --- deleting ------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_user_ends_its_token_its_login_and_its_record() {
    let app = spawn_unthrottled().await;
    let root = admin(&app, "root").await;
    let (id, token) = user(&app, "erased").await;
    let grant = app.login("erased").await;
    let refresh = grant["refresh_token"].as_str().unwrap().to_owned();

    assert_eq!(delete_user(&app, &root, &id).await.status(), 204);
    expect_unauthorized(
        call(&app, Method::GET, "/users/me", Some(&token), None).await,
        INVALID_TOKEN_CHALLENGE,
        "the deleted user's token",
    )
    .await;
    expect_oauth_error(
        app.token_form(&[
            ("grant_type", "password"),
            ("username", "erased"),
            ("password", GOOD_PASSWORD),
        ])
        .await,
        "invalid_grant",
    )
    .await;
    expect_oauth_error(
        app.token_form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .await,
        "invalid_grant",
    )
    .await;
    expect_problem(get_user(&app, &root, &id).await, 404).await;
    expect_problem(delete_user(&app, &root, &id).await, 404).await;
    let page = page(&app, &root, "").await;
    assert_eq!(usernames(&page), ["root"], "{page}");
}
