//! `GET /admin/keys` and `POST /admin/keys/rotate`.

use std::sync::atomic::Ordering;

use portcullis_domain::Role;
use serde_json::Value;

use crate::fakes::{Keys, PRIVATE_MARKER, TestApp, header, json_of};

async fn admin_app(keys: Keys) -> TestApp {
    let app = TestApp::new(keys).await;
    app.user("root", Role::Admin).await;
    app.user("plain", Role::User).await;
    app
}

fn states(listing: &Value) -> Vec<(String, String)> {
    listing
        .as_array()
        .expect("a list")
        .iter()
        .map(|key| {
            (
                key["kid"].as_str().expect("kid").to_owned(),
                key["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(kid, state)| ((*kid).to_owned(), (*state).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_listing_shows_each_keys_life_in_rfc3339_and_no_private_material() {
    let app = admin_app(Keys::Stored).await;
    let (status, _, body) = json_of(
        app.client
            .get("/admin/keys")
            .header("authorization", TestApp::basic("root"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        states(&body),
        pairs(&[("kid-0", "current"), ("kid-1", "next")])
    );
    let current = &body[0];
    let next = &body[1];
    assert_eq!(current["alg"], "EdDSA");
    assert_eq!(current["created_at"], "2027-01-15T08:00:00Z");
    assert_eq!(current["signs_from"], "2027-01-15T08:00:00Z");
    // The current key is due to stop signing after the rotation period.
    assert_eq!(current["retires_at"], "2027-02-14T08:00:00Z");
    // The next key signs no earlier than the publish-ahead time from now.
    assert_eq!(next["signs_from"], "2027-01-15T09:00:00Z");
    assert_eq!(next["retires_at"], Value::Null);
    let mut members: Vec<&str> = current
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(
        members,
        [
            "alg",
            "created_at",
            "kid",
            "retires_at",
            "signs_from",
            "state"
        ]
    );
    assert!(!body.to_string().contains(PRIVATE_MARKER));
}

#[tokio::test]
async fn rotating_promotes_next_retires_current_makes_a_new_next_and_reloads_the_ring() {
    let app = admin_app(Keys::Stored).await;
    let ring = app.ring.clone().expect("a ring");
    let reloads_before = ring.reloads.load(Ordering::SeqCst);
    app.clock.advance(std::time::Duration::from_secs(60));
    let (status, _, body) = json_of(
        app.client
            .post("/admin/keys/rotate")
            .header("authorization", TestApp::basic("root"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        states(&body),
        pairs(&[
            ("kid-0", "retired"),
            ("kid-1", "current"),
            ("kid-2", "next")
        ])
    );
    // Retired at the rotation, verifying for the access TTL plus leeway.
    assert_eq!(body[0]["retires_at"], "2027-01-15T08:16:30Z");
    // The promoted key signs from the rotation, not its planned time.
    assert_eq!(body[1]["signs_from"], "2027-01-15T08:01:00Z");
    assert_eq!(ring.reloads.load(Ordering::SeqCst), reloads_before + 1);

    // The key set shows the new next key at once.
    let (_, _, jwks) = json_of(app.client.get("/.well-known/jwks.json").send().await).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids, ["kid-0", "kid-1", "kid-2"]);

    // And the listing agrees with the answer of the rotation.
    let (_, _, listing) = json_of(
        app.client
            .get("/admin/keys")
            .header("authorization", TestApp::basic("root"))
            .send()
            .await,
    )
    .await;
    assert_eq!(listing, body);
}

#[tokio::test]
async fn keys_fixed_by_an_hs256_secret_list_empty_and_refuse_rotation_with_409() {
    let app = admin_app(Keys::FixedHs256).await;
    let (status, _, body) = json_of(
        app.client
            .get("/admin/keys")
            .header("authorization", TestApp::basic("root"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!([]));

    let (status, headers, body) = json_of(
        app.client
            .post("/admin/keys/rotate")
            .header("authorization", TestApp::basic("root"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    assert_eq!(body["type"], "urn:portcullis:problem:keys-fixed-by-secret");
    assert_eq!(body["status"], 409);
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.contains("PORTCULLIS_JWT_SECRET"), "{detail}");
}

#[tokio::test]
async fn the_key_operations_are_for_admins_only() {
    let app = admin_app(Keys::Stored).await;
    for (method, path) in [("GET", "/admin/keys"), ("POST", "/admin/keys/rotate")] {
        let anonymous = match method {
            "GET" => app.client.get(path),
            _ => app.client.post(path),
        };
        let (status, headers, _) = json_of(anonymous.send().await).await;
        assert_eq!(status, 401, "{method} {path}");
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some(r#"Bearer realm="portcullis""#)
        );
        let as_user = match method {
            "GET" => app.client.get(path),
            _ => app.client.post(path),
        };
        let (status, headers, _) = json_of(
            as_user
                .header("authorization", TestApp::basic("plain"))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 403, "{method} {path}");
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some(r#"Bearer realm="portcullis", error="insufficient_scope", scope="admin""#)
        );
    }
    // Nothing rotated.
    let (_, _, body) = json_of(
        app.client
            .get("/admin/keys")
            .header("authorization", TestApp::basic("root"))
            .send()
            .await,
    )
    .await;
    assert_eq!(body.as_array().map(Vec::len), Some(2));
}
