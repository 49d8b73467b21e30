//! `portcullis db copy --to URL` (CONTRACT §5): a SQLite deployment moved
//! into an empty PostgreSQL database keeps working there: every account
//! logs in with its password, unexpired access tokens, refresh tokens and
//! API keys still work; a non-empty target is refused with nothing written;
//! and the copy goes back to SQLite the same way.

use portcullis::DatabaseLocation;
use portcullis_postgres::testing::TestDatabase;
use portcullis_tests::{GOOD_PASSWORD, TestApp, test_args};
use serde_json::{Value, json};

use crate::support::{Credential, api_key_of, jwt_segment, make_admin, new_api_key};

fn field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` in {value}"))
}

/// A SQLite deployment with stored EdDSA keys and a fixed public URL (the
/// issuer a deployment keeps when it moves).
async fn sqlite_deployment() -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = test_args(data_dir.path().join("data"));
    args.jwt_secret = None;
    args.jwt_alg = Some("EdDSA".to_owned());
    args.public_url = Some("http://portcullis.moving.test".to_owned());
    let settings = portcullis::Settings::resolve(&args).expect("settings");
    TestApp::spawn_with(data_dir, settings).await
}

async fn usernames_in_order(app: &TestApp, admin_token: &str) -> Vec<String> {
    let page: Value = app
        .client
        .get(app.url("/admin/users?limit=100"))
        .bearer_auth(admin_token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|user| field(user, "username").to_owned())
        .collect()
}

#[tokio::test]
async fn a_sqlite_deployment_copied_into_postgresql_keeps_its_accounts_tokens_and_keys() {
    let mut app = sqlite_deployment().await;
    for name in ["zed", "amy", "mover"] {
        app.register(name).await;
    }
    make_admin(&app, "amy").await;
    let admin = field(&app.login("amy").await, "access_token").to_owned();
    let grant = app.login("mover").await;
    let access = field(&grant, "access_token").to_owned();
    let refresh = field(&grant, "refresh_token").to_owned();
    let key = api_key_of(
        &new_api_key(
            &app,
            &Credential::Bearer(access.clone()),
            &json!({ "name": "ci" }),
        )
        .await,
    );
    let order_before = usernames_in_order(&app, &admin).await;
    app.shutdown().await;

    let database = TestDatabase::create().await;
    let target = DatabaseLocation::parse_url(database.url(), None).expect("a postgres URL");
    let copied = portcullis::copy_database(&app.settings, &target)
        .await
        .expect("the copy succeeds");
    assert_eq!(copied.users, 3);
    assert_eq!(copied.api_keys, 1);
    assert!(
        copied.sessions >= 2 && copied.refresh_tokens >= 2,
        "{copied:?}"
    );
    assert!(copied.signing_keys >= 2, "current and next key: {copied:?}");
    let source_chain = portcullis::verify_audit_log(&app.settings)
        .await
        .expect("the source's audit log reads")
        .expect("the source's chain is whole");
    assert!(
        source_chain.events >= 5,
        "registrations and logins: {source_chain:?}"
    );
    assert_eq!(
        u64::try_from(copied.audit_events).expect("a count"),
        source_chain.events,
        "the whole audit log is copied"
    );

    // A second copy into the same, now full, database writes nothing.
    let refused = portcullis::copy_database(&app.settings, &target)
        .await
        .expect_err("a non-empty target is refused");
    assert!(
        format!("{refused:#}").contains("not empty"),
        "the refusal says why: {refused:#}"
    );

    // The same deployment (data directory with its master key, public URL)
    // on PostgreSQL.
    let app = app
        .restart_with(|settings| settings.database = target.clone())
        .await;
    // The copy verifies with the same master key, with the same head.
    let copied_chain = portcullis::verify_audit_log(&app.settings)
        .await
        .expect("the copy's audit log reads")
        .expect("the copy's chain is whole");
    assert_eq!(copied_chain.head, source_chain.head);
    assert_eq!(
        app.me(&access).await.status(),
        200,
        "the access token verifies"
    );
    let key_answer = app
        .client
        .get(app.url("/users/me"))
        .header("X-API-Key", &key)
        .send()
        .await
        .expect("api key");
    assert_eq!(key_answer.status(), 200, "the API key works");
    let refreshed = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(refreshed.status(), 200, "the refresh token rotates");
    for name in ["zed", "amy", "mover"] {
        let login = app
            .token_form(&[
                ("grant_type", "password"),
                ("username", name),
                ("password", GOOD_PASSWORD),
            ])
            .await;
        assert_eq!(login.status(), 200, "{name} logs in with the same password");
    }
    assert_eq!(
        usernames_in_order(&app, &admin).await,
        order_before,
        "listed in the same order"
    );
    let new_token = field(&app.login("mover").await, "access_token").to_owned();
    assert_eq!(
        jwt_segment(&new_token, 0)["kid"],
        jwt_segment(&access, 0)["kid"],
        "the copied current key still signs"
    );
    // The chain goes on from the copied head.
    let continued = portcullis::verify_audit_log(&app.settings)
        .await
        .expect("reads")
        .expect("still whole");
    assert!(continued.events > source_chain.events);
}

#[tokio::test]
async fn a_postgresql_deployment_copies_back_into_a_new_sqlite_file() {
    let database = TestDatabase::create().await;
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut args = test_args(data_dir.path().join("data"));
    args.database_url = Some(database.url().to_owned());
    let settings = portcullis::Settings::resolve(&args).expect("settings");
    let mut app = TestApp::spawn_with(data_dir, settings).await;
    app.register("returner").await;
    let token = app.login("returner").await;
    app.shutdown().await;

    let file = tempfile::tempdir().expect("temporary directory");
    let path = file.path().join("back.db");
    let target = DatabaseLocation::parse_url(&format!("sqlite://{}", path.display()), None)
        .expect("a sqlite URL");
    let copied = portcullis::copy_database(&app.settings, &target)
        .await
        .expect("the copy succeeds");
    assert_eq!(copied.users, 1);

    let app = app
        .restart_with(|settings| settings.database = target.clone())
        .await;
    assert_eq!(
        app.me(field(&token, "access_token")).await.status(),
        200,
        "the token verifies against the SQLite copy"
    );
    assert_eq!(app.login("returner").await["token_type"], "Bearer");
}
