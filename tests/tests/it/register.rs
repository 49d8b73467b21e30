//! `POST /auth/register`.

use portcullis_tests::{GOOD_PASSWORD, TestApp};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{error_fields, expect_problem};

/// Fifteen accented letters, each a single precomposed code point (two
/// bytes in UTF-8).
const FIFTEEN_ACCENTED: &str =
    "\u{e9}\u{e8}\u{ea}\u{eb}\u{e0}\u{e2}\u{e4}\u{ee}\u{ef}\u{f4}\u{f6}\u{f9}\u{fb}\u{fc}\u{e7}";

fn registration(username: &str, email: &str, password: &str) -> Value {
    json!({"username": username, "email": email, "password": password})
}

/// Posts `body` with an explicit content type.
async fn post_raw(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url("/auth/register"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

/// Asserts a 422 naming `field`, whose raw body contains none of `secrets`.
async fn expect_invalid(response: reqwest::Response, field: &str, secrets: &[&str]) {
    let problem = expect_problem(response, 422).await;
    let fields = error_fields(&problem);
    assert!(
        fields.iter().any(|f| f == field),
        "`{field}` is among the invalid fields {fields:?}"
    );
    let text = problem.to_string();
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "the 422 body echoes the submitted value {secret:?}: {text}"
        );
    }
}

#[tokio::test]
async fn registration_answers_201_with_the_user_shape() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&json!({
            "username": "Alice_01",
            "email": "alice@example.com",
            "full_name": "Alice Example",
            "password": GOOD_PASSWORD,
        }))
        .await;
    assert_eq!(response.status(), 201);
    assert!(
        crate::support::media_type(response.headers()).ends_with("json"),
        "a JSON body"
    );
    let user: Value = response.json().await.unwrap();
    let mut keys: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "disabled",
            "email",
            "full_name",
            "id",
            "roles",
            "username"
        ],
        "exactly the User members: {user}"
    );
    uuid::Uuid::parse_str(user["id"].as_str().unwrap()).expect("id is a UUID");
    assert_eq!(user["username"], "alice_01", "stored lower-case");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["full_name"], "Alice Example");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["disabled"], false);
    let created_at = OffsetDateTime::parse(user["created_at"].as_str().unwrap(), &Rfc3339)
        .expect("created_at is RFC 3339");
    assert!(created_at.offset().is_utc(), "created_at is UTC: {user}");
    let age = OffsetDateTime::now_utc() - created_at;
    assert!(
        age.whole_seconds().abs() < 3600,
        "created_at is about now: {created_at}"
    );
}

#[tokio::test]
async fn the_registration_response_contains_no_password_or_hash() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&registration(
            "plainbody",
            "plainbody@example.com",
            GOOD_PASSWORD,
        ))
        .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap().to_lowercase();
    for forbidden in [GOOD_PASSWORD, "password", "hash", "argon2", "$argon"] {
        assert!(!text.contains(forbidden), "{forbidden:?} appears in {text}");
    }
}

#[tokio::test]
async fn registration_ignores_roles_and_disabled_fields() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&json!({
            "username": "mallory",
            "email": "mallory@example.com",
            "password": GOOD_PASSWORD,
            "roles": ["admin"],
            "disabled": true,
            "is_admin": true,
        }))
        .await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["disabled"], false);
    // The account really is an enabled ordinary user.
    let grant = app.login("mallory").await;
    assert_eq!(grant["scope"], "profile");
}

#[tokio::test]
async fn a_username_differing_only_in_case_is_a_409_conflict() {
    let app = TestApp::spawn().await;
    app.register("bob").await;
    let response = app
        .register_json(&registration("BOB", "other-bob@example.com", GOOD_PASSWORD))
        .await;
    let problem = expect_problem(response, 409).await;
    assert_eq!(error_fields(&problem), ["username"]);
}

#[tokio::test]
async fn an_email_differing_only_in_case_is_a_409_conflict() {
    let app = TestApp::spawn().await;
    app.register_json(&registration("carol", "carol@example.com", GOOD_PASSWORD))
        .await
        .error_for_status()
        .unwrap();
    let response = app
        .register_json(&registration("carol2", "CAROL@Example.COM", GOOD_PASSWORD))
        .await;
    let problem = expect_problem(response, 409).await;
    assert_eq!(error_fields(&problem), ["email"]);
}

#[tokio::test]
async fn a_too_short_username_is_422() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&registration("zq", "zq@example.com", GOOD_PASSWORD))
        .await;
    expect_invalid(response, "username", &[GOOD_PASSWORD]).await;
}

#[tokio::test]
async fn a_username_with_forbidden_characters_is_422_without_echoing_it() {
    let app = TestApp::spawn().await;
    for username in ["zq$weird%name", "zq weird name", "zq\u{e9}weird"] {
        let response = app
            .register_json(&registration(username, "weird@example.com", GOOD_PASSWORD))
            .await;
        expect_invalid(response, "username", &[username, GOOD_PASSWORD]).await;
    }
}

#[tokio::test]
async fn a_username_with_a_colon_is_422() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&registration(
            "zq:colon",
            "colon@example.com",
            GOOD_PASSWORD,
        ))
        .await;
    expect_invalid(response, "username", &["zq:colon", GOOD_PASSWORD]).await;
}

#[tokio::test]
async fn an_invalid_email_is_422_without_echoing_it() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&registration("emily", "not-an-email-zqx", GOOD_PASSWORD))
        .await;
    expect_invalid(response, "email", &["not-an-email-zqx", GOOD_PASSWORD]).await;
}

#[tokio::test]
async fn a_too_short_password_is_422_without_echoing_it() {
    let app = TestApp::spawn().await;
    let password = "Zq7shortpass99"; // 14 characters
    let response = app
        .register_json(&registration("shorty", "shorty@example.com", password))
        .await;
    expect_invalid(response, "password", &[password]).await;
}

#[tokio::test]
async fn fourteen_accented_characters_are_too_short_and_fifteen_are_enough() {
    let app = TestApp::spawn().await;
    let fourteen: String = FIFTEEN_ACCENTED.chars().take(14).collect();
    assert_eq!(fourteen.chars().count(), 14);
    assert!(fourteen.len() > 15, "more than 15 bytes, fewer code points");
    let response = app
        .register_json(&registration("accents", "accents@example.com", &fourteen))
        .await;
    expect_invalid(response, "password", &[&fourteen]).await;

    assert_eq!(FIFTEEN_ACCENTED.chars().count(), 15);
    let response = app
        .register_json(&registration(
            "accents",
            "accents@example.com",
            FIFTEEN_ACCENTED,
        ))
        .await;
    assert_eq!(response.status(), 201, "15 code points are enough");
    let grant = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "accents"),
            ("password", FIFTEEN_ACCENTED),
        ])
        .await;
    assert_eq!(grant.status(), 200, "the accented password logs in");
}

#[tokio::test]
async fn a_password_containing_the_username_is_422_without_echoing_it() {
    let app = TestApp::spawn().await;
    let password = "my zqdave password is long enough";
    let response = app
        .register_json(&registration("ZqDave", "dave@example.com", password))
        .await;
    expect_invalid(response, "password", &[password, "my zqdave"]).await;
}

#[tokio::test]
async fn a_missing_field_is_422_naming_it() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&json!({"username": "nomail", "password": GOOD_PASSWORD}))
        .await;
    expect_invalid(response, "email", &[GOOD_PASSWORD]).await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let response = post_raw(&app, "application/json", r#"{"username": "x", "#).await;
    expect_problem(response, 400).await;
}

#[tokio::test]
async fn a_json_array_body_is_400() {
    let app = TestApp::spawn().await;
    let body = json!([{"username": "arr", "email": "arr@example.com", "password": GOOD_PASSWORD}]);
    let response = post_raw(&app, "application/json", body.to_string()).await;
    expect_problem(response, 400).await;
}

#[tokio::test]
async fn a_text_plain_body_is_415() {
    let app = TestApp::spawn().await;
    let body = registration("plain", "plain@example.com", GOOD_PASSWORD);
    let response = post_raw(&app, "text/plain", body.to_string()).await;
    expect_problem(response, 415).await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let body = json!({
        "username": "huge",
        "email": "huge@example.com",
        "password": GOOD_PASSWORD,
        "full_name": "x".repeat(64 * 1024),
    });
    let response = post_raw(&app, "application/json", body.to_string()).await;
    expect_problem(response, 413).await;
}

#[tokio::test]
async fn two_concurrent_registrations_of_one_name_give_one_201_and_one_409() {
    let app = TestApp::spawn().await;
    let first_body = registration("racer", "racer1@example.com", GOOD_PASSWORD);
    let second_body = registration("racer", "racer2@example.com", GOOD_PASSWORD);
    let (first, second) = tokio::join!(
        app.register_json(&first_body),
        app.register_json(&second_body),
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&registration("zq", "not-an-email-zqy", "short"))
        .await;
    let problem = expect_problem(response, 422).await;
    let fields = error_fields(&problem);
    assert!(fields.iter().any(|f| f == "username"), "{fields:?}");
    assert!(fields.iter().any(|f| f == "email"), "{fields:?}");
    assert!(
        !problem.to_string().contains("not-an-email-zqy"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_422_naming_it_without_echoing_it() {
    let app = TestApp::spawn().await;
    let response = app
        .register_json(&json!({
            "username": "typed",
            "email": "typed@example.com",
            "password": 987_654_321_987_654_u64,
        }))
        .await;
    expect_invalid(response, "password", &["987654321987654"]).await;
}

#[tokio::test]
async fn a_json_content_type_with_a_charset_is_accepted() {
    let app = TestApp::spawn().await;
    let body = registration("charset", "charset@example.com", GOOD_PASSWORD);
    let response = post_raw(&app, "application/json; charset=utf-8", body.to_string()).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_username_of_33_characters_is_422_and_32_is_accepted() {
    let app = TestApp::spawn().await;
    let long = "u".repeat(33);
    let response = app
        .register_json(&registration(&long, "long@example.com", GOOD_PASSWORD))
        .await;
    expect_invalid(response, "username", &[&long]).await;
    let response = app
        .register_json(&registration(
            &long[..32],
            "long@example.com",
            GOOD_PASSWORD,
        ))
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_full_name_over_100_characters_is_422() {
    let app = TestApp::spawn().await;
    let name = "N".repeat(101);
    let response = app
        .register_json(&json!({
            "username": "named",
            "email": "named@example.com",
            "password": GOOD_PASSWORD,
            "full_name": name,
        }))
        .await;
    expect_invalid(response, "full_name", &[&name]).await;
}

#[tokio::test]
async fn a_password_over_256_characters_is_422_and_256_is_accepted() {
    let app = TestApp::spawn().await;
    let long = "horse battery ".repeat(19); // 266 characters
    let response = app
        .register_json(&registration(
            "verbose",
            "verbose@example.com",
            &long[..257],
        ))
        .await;
    expect_invalid(response, "password", &[&long[..40]]).await;
    let response = app
        .register_json(&registration(
            "verbose",
            "verbose@example.com",
            &long[..256],
        ))
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_password_containing_the_email_local_part_is_422() {
    let app = TestApp::spawn().await;
    let password = "my mailbox zqfrank is secret";
    let response = app
        .register_json(&registration("frank", "zqfrank@example.com", password))
        .await;
    expect_invalid(response, "password", &[password]).await;
}

#[tokio::test]
async fn a_common_password_is_422() {
    // With the minimum lowered to 8 (the floor), passwords that head every
    // common-password list can be submitted; the bundled list must refuse them.
    let data_dir = tempfile::tempdir().unwrap();
    let mut args = portcullis_tests::test_args(data_dir.path().join("data"));
    args.password_min_length = Some(8);
    let settings = portcullis::Settings::resolve(&args).unwrap();
    let app = TestApp::spawn_with(data_dir, settings).await;
    for (index, password) in ["12345678", "password1", "iloveyou"]
        .into_iter()
        .enumerate()
    {
        let response = app
            .register_json(&registration(
                &format!("common{index}"),
                &format!("common{index}@example.com"),
                password,
            ))
            .await;
        assert_eq!(response.status(), 422, "{password:?} is a common password");
        expect_invalid(response, "password", &[password]).await;
    }
}

#[tokio::test]
async fn a_long_password_is_verified_whole() {
    let app = TestApp::spawn().await;
    let password = format!("{}tail", "long enough prefix ".repeat(6)); // 118 characters
    let response = app
        .register_json(&registration("whole", "whole@example.com", &password))
        .await;
    assert_eq!(response.status(), 201);
    let truncated = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "whole"),
            ("password", &password[..72]),
        ])
        .await;
    assert_eq!(
        truncated.status(),
        400,
        "a 72-byte prefix is not the password"
    );
    let full = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", "whole"),
            ("password", &password),
        ])
        .await;
    assert_eq!(full.status(), 200);
}
