//! Against the real Portcullis, started in-process with EdDSA keys in its
//! store: discovery, tokens of a user logged in over HTTP, rotation, the
//! refetch rate limit (counted by a relay in front of the real JWKS), and
//! forgeries under the real kids.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Response, Route, Server, get, handler};
use portcullis::Settings;
use portcullis_crypto::JwtAlgorithm;
use portcullis_resource_server::{
    InvalidToken, RemoteVerifier, ResourceServerConfig, VerifiedToken, VerifyError,
};
use portcullis_tests::{TestApp, test_args};
use serde_json::{Value, json};

use crate::support::TestKey;

const AUDIENCE: &str = "portcullis";
const REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// EdDSA keys in the store (no HS256 secret); upkeep every second, so the
/// server picks up a rotation at once and its JWKS max-age is 1 s.
async fn spawn_portcullis() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = test_args(dir.path().join("data"));
    args.jwt_secret = None;
    let mut settings = Settings::resolve(&args).expect("settings");
    settings.key_publish_ahead = Duration::from_secs(2);
    TestApp::spawn_with(dir, settings).await
}

fn header_of(token: &str) -> Value {
    let segment = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().unwrap().to_owned()
}

/// Logs `username` in until the token is signed by a key other than
/// `old_kid`: the server reloads its keys every second.
async fn token_signed_after_rotation(app: &TestApp, username: &str, old_kid: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let token = app.login(username).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        if kid_of(&token) != old_kid {
            return token;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new key in 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn rotate(app: &TestApp) {
    portcullis::build_key_lifecycle(&app.settings)
        .await
        .expect("key lifecycle")
        .rotate_now()
        .await
        .expect("rotate");
}

#[derive(Clone)]
struct Relay {
    upstream: String,
    requests: Arc<AtomicUsize>,
}

/// Relays the real JWKS (body and `Cache-Control`) and counts the fetches.
#[handler]
async fn relay(relay: Data<&Relay>) -> Response {
    relay.requests.fetch_add(1, Ordering::SeqCst);
    let upstream = reqwest::get(&relay.upstream).await.expect("the real JWKS");
    let cache_control = upstream.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = upstream.text().await.unwrap();
    Response::builder()
        .content_type("application/json")
        .header("cache-control", cache_control)
        .body(body)
}

async fn start_relay(upstream: String) -> (String, Arc<AtomicUsize>) {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let app = Route::new().at("/jwks.json", get(relay)).data(Relay {
        upstream,
        requests: requests.clone(),
    });
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{addr}/jwks.json"), requests)
}

#[tokio::test]
async fn tokens_of_the_real_server_verify_through_discovery_across_a_rotation() {
    let app = spawn_portcullis().await;
    // Forced rotations seconds apart promote keys published only seconds
    // before: a verifier finds them once its refetch interval has passed
    // (1 s here, 30 s by default), which the test waits out.
    let verifier = RemoteVerifier::new(
        ResourceServerConfig::new(app.base.clone(), AUDIENCE)
            .with_min_refetch_interval(REFETCH_INTERVAL),
    )
    .await
    .expect("discovery against the real metadata");
    assert_eq!(verifier.jwks_uri(), app.url("/.well-known/jwks.json"));

    let user = app.register("ada").await;
    let before = app.login("ada").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(header_of(&before)["alg"], "EdDSA");
    let verified: VerifiedToken = verifier.verify(&before).await.expect("the token verifies");
    assert_eq!(verified.sub, user["id"].as_str().unwrap());
    assert!(verified.sid.is_some());
    assert!(!verified.scopes.is_empty(), "{:?}", verified.claims);

    rotate(&app).await;
    let after = token_signed_after_rotation(&app, "ada", &kid_of(&before)).await;
    verifier
        .verify(&after)
        .await
        .expect("the new key's token verifies");
    verifier
        .verify(&before)
        .await
        .expect("the retired key's token still verifies");

    // Twice more: the key signing now was made after this verifier's first
    // fetch, so it is found by its kid.
    rotate(&app).await;
    let third = token_signed_after_rotation(&app, "ada", &kid_of(&after)).await;
    rotate(&app).await;
    let fourth = token_signed_after_rotation(&app, "ada", &kid_of(&third)).await;
    tokio::time::sleep(REFETCH_INTERVAL + Duration::from_millis(100)).await;
    verifier
        .verify(&fourth)
        .await
        .expect("a key made since the first fetch");
}

#[tokio::test]
async fn unknown_kids_fetch_the_real_key_set_at_most_once_per_interval() {
    let app = spawn_portcullis().await;
    let (relayed, requests) = start_relay(app.url("/.well-known/jwks.json")).await;
    let verifier = RemoteVerifier::new(
        ResourceServerConfig::new(app.base.clone(), AUDIENCE)
            .with_jwks_uri(relayed)
            .with_min_refetch_interval(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let token = app.access_token_for("grace").await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    let attacker = TestKey::generate(JwtAlgorithm::EdDsa);
    let claims = serde_json::from_slice::<Value>(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    for round in 0..3 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(2100)).await;
        }
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let verifier = verifier.clone();
                let forged = attacker.sign_as(&format!("random-{round}-{n}"), &claims);
                tokio::spawn(async move { verifier.verify(&forged).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(
                task.await.unwrap(),
                Err(VerifyError::Invalid(InvalidToken::UnknownKeyId))
            );
        }
        assert!(
            requests.load(Ordering::SeqCst) <= 1 + round,
            "round {round}: {} fetches",
            requests.load(Ordering::SeqCst)
        );
    }
    assert_eq!(requests.load(Ordering::SeqCst), 3, "one fetch per interval");
}

#[tokio::test]
async fn forgeries_under_the_real_kids_are_refused() {
    let app = spawn_portcullis().await;
    let verifier = RemoteVerifier::new(ResourceServerConfig::new(app.base.clone(), AUDIENCE))
        .await
        .unwrap();
    let token = app.access_token_for("mallory").await;
    let real_kid = kid_of(&token);
    let claims = serde_json::from_slice::<Value>(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    verifier.verify(&token).await.unwrap();

    let attacker = TestKey::generate(JwtAlgorithm::EdDsa);
    assert_eq!(
        verifier.verify(&attacker.sign_as(&real_kid, &claims)).await,
        Err(VerifyError::Invalid(InvalidToken::BadSignature))
    );

    // HS256 keyed with the published public key, as served.
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let published = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == real_kid.as_str())
        .expect("the token's key is published");
    let public_key = URL_SAFE_NO_PAD
        .decode(published["x"].as_str().unwrap())
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(real_kid.clone());
    for secret in [public_key.as_slice(), published.to_string().as_bytes()] {
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
        assert_eq!(
            verifier.verify(&forged).await,
            Err(VerifyError::Invalid(InvalidToken::AlgorithmMismatch))
        );
    }

    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let none = format!(
        "{}.{}.",
        encode(&json!({"typ": "at+jwt", "alg": "none", "kid": real_kid})),
        encode(&claims)
    );
    assert_eq!(
        verifier.verify(&none).await,
        Err(VerifyError::Invalid(InvalidToken::Malformed))
    );
}
