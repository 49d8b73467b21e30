//! Stored, rotating signing keys (contract section 4): EdDSA by default,
//! ES256 on request, rotation by schedule, by another process and across a
//! restart, and the upgrade of a v1 (HS256) data directory.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::Settings;
use portcullis_domain::ports::SigningKeyStore;
use portcullis_domain::{KeyState, StoredSigningKey};
use portcullis_sqlite::SqliteStore;
use portcullis_tests::{TestApp, test_args};
use serde_json::Value;

use crate::support::{jwt_claims, jwt_segment, mint};

/// Test settings without the HS256 secret: the v2 default, EdDSA, or
/// `algorithm`.
fn settings(data_dir: &tempfile::TempDir, algorithm: Option<&str>) -> Settings {
    let mut args = test_args(data_dir.path().join("data"));
    args.jwt_secret = None;
    args.jwt_alg = algorithm.map(str::to_owned);
    Settings::resolve(&args).expect("valid settings")
}

async fn stored_keys(app: &TestApp) -> Vec<StoredSigningKey> {
    SqliteStore::open(&app.database_path())
        .expect("open the store")
        .signing_keys()
        .await
        .expect("keys")
}

async fn key_in_state(app: &TestApp, state: KeyState) -> StoredSigningKey {
    stored_keys(app)
        .await
        .into_iter()
        .find(|key| key.state == state)
        .unwrap_or_else(|| panic!("a {state} key"))
}

fn kid_of(token: &str) -> String {
    jwt_segment(token, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

/// Verifies `token` with the stored public key its kid names, outside
/// Portcullis (jsonwebtoken, the algorithm pinned to the key's).
async fn verify_outside(app: &TestApp, token: &str) -> Value {
    let kid = kid_of(token);
    let key = stored_keys(app)
        .await
        .into_iter()
        .find(|key| key.kid.as_str() == kid)
        .expect("the kid names a stored key");
    let (algorithm, decoding_key) = match key.algorithm.as_str() {
        "EdDSA" => (Algorithm::EdDSA, DecodingKey::from_ed_der(&key.public_key)),
        "ES256" => (Algorithm::ES256, DecodingKey::from_ec_der(&key.public_key)),
        other => panic!("not an asymmetric key: {other}"),
    };
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&["portcullis"]);
    validation.set_issuer(&[app.base.as_str()]);
    jsonwebtoken::decode::<Value>(token, &decoding_key, &validation)
        .expect("the signature verifies with the published key")
        .claims
}

#[tokio::test]
async fn by_default_tokens_are_eddsa_signed_by_the_current_stored_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(&dir, None);
    let app = TestApp::spawn_with(dir, settings).await;
    let token = app.access_token_for("edward").await;
    let header = jwt_segment(&token, 0);
    assert_eq!(header["alg"], "EdDSA", "{header}");
    assert_eq!(header["typ"], "at+jwt", "{header}");
    let current = key_in_state(&app, KeyState::Current).await;
    assert_eq!(kid_of(&token), current.kid.as_str());
    assert_eq!(current.kid.as_str().len(), 43, "an RFC 7638 thumbprint");
    let claims = verify_outside(&app, &token).await;
    assert_eq!(claims, jwt_claims(&token));
    assert_eq!(app.me(&token).await.status(), 200);

    let next = key_in_state(&app, KeyState::Next).await;
    assert!(
        next.signs_from >= current.signs_from + Duration::from_secs(3600),
        "the next key waits for the publish-ahead time"
    );
    let master_key = app.settings.master_key_file.clone();
    assert!(master_key.is_file(), "the master key was generated");
    let sealed = &current.sealed_private_key;
    assert!(
        sealed.as_bytes().len() > 48,
        "the private key is stored sealed, not empty"
    );
}

#[tokio::test]
async fn es256_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(&dir, Some("ES256"));
    let app = TestApp::spawn_with(dir, settings).await;
    let token = app.access_token_for("elliptic").await;
    assert_eq!(jwt_segment(&token, 0)["alg"], "ES256");
    verify_outside(&app, &token).await;
    assert_eq!(app.me(&token).await.status(), 200);
}

#[tokio::test]
async fn a_rotation_by_another_process_is_picked_up_and_old_tokens_keep_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir, None);
    // Upkeep every second (a quarter of the publish-ahead time, at least 1 s).
    settings.key_publish_ahead = Duration::from_secs(2);
    let app = TestApp::spawn_with(dir, settings).await;
    let before = app.access_token_for("rotor").await;
    let first = key_in_state(&app, KeyState::Current).await;
    let next = key_in_state(&app, KeyState::Next).await;

    // What `portcullis keys rotate` does, from outside the server.
    portcullis::build_key_lifecycle(&app.settings)
        .await
        .expect("key lifecycle")
        .rotate_now()
        .await
        .expect("rotate");
    assert_eq!(key_in_state(&app, KeyState::Current).await.kid, next.kid);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let after = loop {
        let token = app.login("rotor").await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        if kid_of(&token) == next.kid.as_str() {
            break token;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server still signs with {} after 10 s",
            first.kid
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        app.me(&before).await.status(),
        200,
        "the retired key verifies"
    );
    assert_eq!(app.me(&after).await.status(), 200);
    verify_outside(&app, &after).await;
}

#[tokio::test]
async fn the_schedule_rotates_with_second_timings_and_survives_a_restart_mid_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir, None);
    settings.key_publish_ahead = Duration::from_secs(1);
    settings.key_rotation = Duration::from_secs(2);
    let app = TestApp::spawn_with(dir, settings).await;
    let first_token = app.access_token_for("sched").await;
    let first_kid = kid_of(&first_token);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut app = app;
    let mut restarted = false;
    loop {
        let token = app.login("sched").await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        if kid_of(&token) != first_kid {
            break;
        }
        if !restarted {
            // Stop and start again while the schedule runs.
            app = app.restart().await;
            restarted = true;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rotation in 15 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(restarted);
    assert_eq!(
        app.me(&first_token).await.status(),
        200,
        "a token of the retired key verifies until it expires"
    );
    let keys = stored_keys(&app).await;
    assert_eq!(
        keys.iter()
            .filter(|key| key.state == KeyState::Current)
            .count(),
        1
    );
    assert_eq!(
        keys.iter()
            .filter(|key| key.state == KeyState::Next)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_v1_data_directory_upgrades_in_place_and_its_tokens_keep_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = settings(&dir, Some("HS256"));
    let key_file = v1.key_path();
    let app = TestApp::spawn_with(dir, v1).await;
    let v1_token = app.access_token_for("veteran").await;
    assert_eq!(jwt_segment(&v1_token, 0)["alg"], "HS256");
    // A first-wave token: no kid at all.
    let secret = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(std::fs::read_to_string(&key_file).expect("key file").trim())
            .expect("base64url key")
    };
    let kidless = mint(&jwt_claims(&v1_token), Some("at+jwt"), &secret);

    // The same data directory, now with the v2 default.
    let app = app
        .restart_with(|settings| {
            settings.jwt_algorithm = portcullis_domain::SigningAlgorithm::EdDsa;
        })
        .await;

    assert_eq!(app.me(&v1_token).await.status(), 200, "a v1 token verifies");
    assert_eq!(
        app.me(&kidless).await.status(),
        200,
        "a kid-less v1 token too"
    );
    let retired = key_in_state(&app, KeyState::Retired).await;
    assert_eq!(retired.algorithm.as_str(), "HS256");
    assert_eq!(kid_of(&v1_token), retired.kid.as_str());
    assert!(retired.public_key.is_empty());
    let new_token = app.login("veteran").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(jwt_segment(&new_token, 0)["alg"], "EdDSA");
    assert_eq!(app.me(&new_token).await.status(), 200);
}

async fn get_json(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut request = client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.expect("json"))
}

#[tokio::test]
async fn the_jwks_publishes_every_asymmetric_key_and_the_metadata_names_the_tokens_issuer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir, None);
    settings.key_publish_ahead = Duration::from_secs(120);
    let app = TestApp::spawn_with(dir, settings).await;
    let token = app.access_token_for("publisher").await;

    let (status, headers, metadata) =
        get_json(&app, "/.well-known/oauth-authorization-server", None).await;
    assert_eq!(status, 200);
    assert_eq!(metadata["issuer"], jwt_claims(&token)["iss"], "{metadata}");
    assert_eq!(metadata["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert!(headers.get("cache-control").is_some());

    let (status, headers, jwks) = get_json(&app, "/.well-known/jwks.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("public, max-age=60"),
        "half the publish-ahead time"
    );
    let stored = stored_keys(&app).await;
    let mut published: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| {
            let members: Vec<&str> = key
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                members,
                ["alg", "crv", "kid", "kty", "use", "x"],
                "exactly the public members: {key}"
            );
            assert_eq!(key["alg"], "EdDSA");
            assert_eq!(key["kty"], "OKP");
            assert_eq!(key["crv"], "Ed25519");
            assert_eq!(key["use"], "sig");
            key["kid"].as_str().expect("kid").to_owned()
        })
        .collect();
    published.sort();
    let mut kids: Vec<String> = stored.iter().map(|key| key.kid.to_string()).collect();
    kids.sort();
    assert_eq!(published, kids, "the current and the next key");
    assert!(published.contains(&kid_of(&token)));
}

#[tokio::test]
async fn the_admin_api_lists_and_rotates_and_the_server_signs_with_the_new_key_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(&dir, None);
    let app = TestApp::spawn_with(dir, settings).await;
    let admin = crate::support::admin_token_for(&app, "keymaster").await;

    let (status, _, listing) = get_json(&app, "/admin/keys", Some(&admin)).await;
    assert_eq!(status, 200, "{listing}");
    let states: Vec<&str> = listing
        .as_array()
        .expect("a list")
        .iter()
        .map(|key| key["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["current", "next"], "{listing}");
    for key in listing.as_array().expect("list") {
        let members: Vec<&str> = key
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members,
            [
                "alg",
                "created_at",
                "kid",
                "retires_at",
                "signs_from",
                "state"
            ],
            "never key material: {key}"
        );
    }
    let next_kid = listing[1]["kid"].as_str().expect("kid").to_owned();
    let old_token = app.access_token_for("before-rotation").await;

    let response = reqwest::Client::new()
        .post(app.url("/admin/keys/rotate"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("rotate");
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.expect("json");
    let state_of = |kid: &str| {
        rotated
            .as_array()
            .expect("list")
            .iter()
            .find(|key| key["kid"] == kid)
            .map(|key| key["state"].clone())
    };
    assert_eq!(
        state_of(&next_kid),
        Some(Value::from("current")),
        "{rotated}"
    );
    assert_eq!(
        state_of(&kid_of(&old_token)),
        Some(Value::from("retired")),
        "{rotated}"
    );

    // No wait: the rotating node reloads its keys before answering.
    let new_token = app.login("before-rotation").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(kid_of(&new_token), next_kid);
    assert_eq!(
        app.me(&old_token).await.status(),
        200,
        "the retired key verifies"
    );
    let (_, _, jwks) = get_json(&app, "/.well-known/jwks.json", None).await;
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(published.len(), 3, "retired, current and next: {jwks}");
    assert!(published.contains(&kid_of(&old_token).as_str()));
}

/// Every forgery the key set invites, against a server with EdDSA keys,
/// with claims copied from a real token (so only the signature or header
/// is wrong): 401 `invalid_token`, and the server fetches nothing.
#[tokio::test]
async fn forged_tokens_of_every_kind_are_invalid_token() {
    use jsonwebtoken::{EncodingKey, Header};
    use portcullis_crypto::JwtAlgorithm;
    use secrecy::ExposeSecret;

    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(&dir, None);
    let app = TestApp::spawn_with(dir, settings).await;
    let genuine = app.access_token_for("forged").await;
    assert_eq!(app.me(&genuine).await.status(), 200);
    let claims = jwt_claims(&genuine);
    let real_kid = kid_of(&genuine);
    let real = key_in_state(&app, KeyState::Current).await;

    let attacker_ed = JwtAlgorithm::EdDsa.generate_key_pair().expect("key");
    let attacker_ec = JwtAlgorithm::Es256.generate_key_pair().expect("key");
    let header = |algorithm: Algorithm, kid: &str| {
        let mut header = Header::new(algorithm);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(kid.to_owned());
        header
    };
    let sign = |header: &Header, key: &EncodingKey| {
        jsonwebtoken::encode(header, &claims, key).expect("sign")
    };
    let segment = |value: &Value| crate::support::jwt_encode_segment(value);
    let payload = segment(&claims);
    let unsigned = |header: Value| format!("{}.{payload}.", segment(&header));

    let forgeries = [
        (
            "an attacker's Ed25519 key under the real kid",
            sign(
                &header(Algorithm::EdDSA, &real_kid),
                &EncodingKey::from_ed_der(attacker_ed.private_key_pkcs8.expose_secret()),
            ),
        ),
        (
            "an unknown kid",
            sign(
                &header(Algorithm::EdDSA, &attacker_ed.kid),
                &EncodingKey::from_ed_der(attacker_ed.private_key_pkcs8.expose_secret()),
            ),
        ),
        (
            "HS256 keyed with the published public key",
            sign(
                &header(Algorithm::HS256, &real_kid),
                &EncodingKey::from_secret(&real.public_key),
            ),
        ),
        (
            "ES256 under the EdDSA key's kid",
            sign(
                &header(Algorithm::ES256, &real_kid),
                &EncodingKey::from_ec_der(attacker_ec.private_key_pkcs8.expose_secret()),
            ),
        ),
        (
            "alg none",
            unsigned(serde_json::json!({"typ": "at+jwt", "alg": "none", "kid": real_kid})),
        ),
    ];
    for (case, token) in forgeries {
        let response = app.me(&token).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(crate::support::INVALID_TOKEN_CHALLENGE),
            "{case}"
        );
    }

    // Headers pointing at other keys change nothing and are never fetched:
    // the URLs name a listener that counts connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let trap = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let attacker_jwk =
        portcullis_crypto::PublicJwk::from_public_key(JwtAlgorithm::EdDsa, &attacker_ed.public_key)
            .expect("jwk");
    for (name, value) in [
        ("jku", Value::from(trap.clone())),
        ("x5u", Value::from(trap.clone())),
        (
            "jwk",
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": attacker_jwk.x}),
        ),
    ] {
        let mut header = header(Algorithm::EdDSA, &real_kid);
        match name {
            "jku" => header.jku = Some(trap.clone()),
            "x5u" => header.x5u = Some(trap.clone()),
            _ => header.jwk = Some(serde_json::from_value(value).expect("jwk")),
        }
        let token = sign(
            &header,
            &EncodingKey::from_ed_der(attacker_ed.private_key_pkcs8.expose_secret()),
        );
        assert_eq!(app.me(&token).await.status(), 401, "{name}");
    }
    let fetched = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(
        fetched.is_err(),
        "the server connected to a URL from a token header"
    );
}

/// With every timing in seconds: a retired key verifies its tokens until
/// they expire (plus the 30 s leeway), then leaves the JWKS and the store.
#[tokio::test]
async fn a_retired_key_leaves_the_jwks_once_every_token_it_signed_has_expired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir, None);
    settings.access_token_ttl = Duration::from_secs(1);
    settings.key_publish_ahead = Duration::from_secs(1);
    let app = TestApp::spawn_with(dir, settings).await;
    let token = app.access_token_for("shortlived").await;
    let retired_kid = kid_of(&token);
    portcullis::build_key_lifecycle(&app.settings)
        .await
        .expect("key lifecycle")
        .rotate_now()
        .await
        .expect("rotate");

    let published = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|key| key["kid"].as_str().expect("kid").to_owned())
            .collect()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, _, jwks) = get_json(&app, "/.well-known/jwks.json", None).await;
    assert!(
        published(&jwks).contains(&retired_kid),
        "still published while its tokens may be valid (ttl + leeway)"
    );
    // 1 s of lifetime + 30 s of leeway after the rotation, plus upkeep.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let (_, _, jwks) = get_json(&app, "/.well-known/jwks.json", None).await;
        if !published(&jwks).contains(&retired_kid) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retired key is still published: {jwks}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        stored_keys(&app)
            .await
            .iter()
            .all(|key| key.kid.as_str() != retired_kid),
        "and deleted from the store"
    );
    assert_eq!(
        app.me(&token).await.status(),
        401,
        "its token is long expired"
    );
}
