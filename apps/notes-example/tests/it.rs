//! The example's own operations work with Portcullis credentials, in-process.

#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

use poem::test::TestClient;
use portcullis::{Settings, SettingsArgs};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn settings(dir: &tempfile::TempDir) -> Settings {
    Settings::resolve(&SettingsArgs {
        data_dir: Some(dir.path().join("data")),
        jwt_secret: Some("notes-example-test-secret-0123456789abcdef".to_owned()),
        argon2_m_kib: Some(8),
        argon2_t: Some(1),
        argon2_p: Some(1),
        insecure_test_hashing: Some(true),
        login_per_ip_per_min: Some(1000),
        login_per_user_per_min: Some(1000),
        ..SettingsArgs::default()
    })
    .expect("settings")
}

async fn token(
    client: &TestClient<poem::endpoint::BoxEndpoint<'static>>,
    username: &str,
) -> String {
    client
        .post("/auth/register")
        .body_json(&json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        }))
        .send()
        .await
        .assert_status(poem::http::StatusCode::CREATED);
    let response = client
        .post("/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", PASSWORD),
        ])
        .send()
        .await;
    response.assert_status_is_ok();
    let body: Value = response.json().await.value().deserialize();
    body["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn notes_are_private_to_their_author_and_need_a_credential() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = TestClient::new(notes_example::build(&settings(&dir)).expect("app"));
    let alice = token(&client, "alice").await;
    let bob = token(&client, "bob").await;

    client
        .post("/notes")
        .header("authorization", format!("Bearer {alice}"))
        .body_json(&json!({"text": "buy milk"}))
        .send()
        .await
        .assert_status(poem::http::StatusCode::CREATED);

    let mine: Value = client
        .get("/notes")
        .header("authorization", format!("Bearer {alice}"))
        .send()
        .await
        .json()
        .await
        .value()
        .deserialize();
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(mine[0]["text"], "buy milk");

    let theirs: Value = client
        .get("/notes")
        .header("authorization", format!("Bearer {bob}"))
        .send()
        .await
        .json()
        .await
        .value()
        .deserialize();
    assert_eq!(theirs, json!([]));

    let anonymous = client.get("/notes").send().await;
    anonymous.assert_status(poem::http::StatusCode::UNAUTHORIZED);
    anonymous.assert_header("www-authenticate", r#"Bearer realm="portcullis""#);
}

#[tokio::test]
async fn the_example_validates_with_portcullis_error_formats_and_shares_the_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = TestClient::new(notes_example::build(&settings(&dir)).expect("app"));
    let alice = token(&client, "alice").await;
    let empty = client
        .post("/notes")
        .header("authorization", format!("Bearer {alice}"))
        .body_json(&json!({"text": ""}))
        .send()
        .await;
    empty.assert_status(poem::http::StatusCode::UNPROCESSABLE_ENTITY);
    empty.assert_content_type("application/problem+json");

    let spec: Value = client
        .get("/openapi.json")
        .send()
        .await
        .json()
        .await
        .value()
        .deserialize();
    assert!(spec["paths"]["/notes"]["get"]["security"].is_array());
    assert!(spec["paths"]["/auth/token"]["post"].is_object());
    assert!(spec["components"]["securitySchemes"]["OAuth2"].is_object());
}
