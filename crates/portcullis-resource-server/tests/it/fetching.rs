//! Discovery, caching, `max-age`, refetching on an unknown kid, the rate
//! limit, and outages.

use std::time::Duration;

use portcullis_crypto::JwtAlgorithm;
use portcullis_resource_server::{InvalidToken, RemoteVerifier, SetupError, VerifyError};

use crate::support::{KeyServer, NOW, TestKey, claims};

const LONG: Duration = Duration::from_secs(300);
const SHORT: Duration = Duration::from_secs(1);
const PAST_SHORT: Duration = Duration::from_millis(1100);

#[tokio::test]
async fn a_token_verifies_with_the_key_set_found_through_the_metadata() {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&key]).await;
    let verifier = server.verifier(LONG).await;
    assert_eq!(verifier.jwks_uri(), server.jwks_uri());
    assert_eq!(
        server.jwks_requests(),
        0,
        "the key set is fetched by the first token"
    );

    let token = verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
    assert_eq!(token.sub, "0190a1b2-user");
    assert_eq!(token.scopes, ["profile", "notes:read"]);
    assert_eq!(token.sid.as_deref(), Some("session-1"));
    assert_eq!(token.jti, "jti-1");
    assert_eq!((token.iat, token.exp), (NOW, NOW + 900));
    assert_eq!(token.claims["aud"], "notes-api");
    assert!(token.has_scope("profile") && !token.has_scope("admin"));

    for _ in 0..5 {
        verifier
            .verify_at(&key.sign(&claims(&server.base)), NOW)
            .await
            .unwrap();
    }
    assert_eq!(server.jwks_requests(), 1, "cached for its max-age");
}

#[tokio::test]
async fn es256_keys_verify_too() {
    let key = TestKey::generate(JwtAlgorithm::Es256);
    let server = KeyServer::start(&[&key]).await;
    let verifier = server.verifier(LONG).await;
    verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused() {
    let server = KeyServer::start(&[]).await;
    server.claim_issuer("https://evil.example");
    let error = RemoteVerifier::new(server.config()).await.unwrap_err();
    assert!(
        matches!(error, SetupError::IssuerMismatch { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn settings_out_of_range_are_refused() {
    let server = KeyServer::start(&[]).await;
    for config in [
        server.config().with_leeway(Duration::from_secs(31)),
        server
            .config()
            .with_min_refetch_interval(Duration::from_millis(500)),
        server.config().with_max_cached_keys(0),
        server.config().with_accepted_algorithms([]),
        server.config().with_jwks_uri("file:///etc/passwd"),
    ] {
        let error = RemoteVerifier::new(config).await.unwrap_err();
        assert!(matches!(error, SetupError::InvalidConfig { .. }), "{error}");
    }
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_key_set_at_most_once_per_interval() {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let attacker = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&key]).await;
    let verifier = server.verifier(SHORT).await;
    verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
    assert_eq!(server.jwks_requests(), 1);

    let flood = |round: usize| {
        let verifier = verifier.clone();
        let tokens: Vec<String> = (0..100)
            .map(|n| attacker.sign_as(&format!("made-up-{round}-{n}"), &claims(&server.base)))
            .collect();
        async move {
            let tasks: Vec<_> = tokens
                .into_iter()
                .map(|token| {
                    let verifier = verifier.clone();
                    tokio::spawn(async move { verifier.verify_at(&token, NOW).await })
                })
                .collect();
            for task in tasks {
                assert_eq!(
                    task.await.unwrap(),
                    Err(VerifyError::Invalid(InvalidToken::UnknownKeyId))
                );
            }
        }
    };

    // Within the interval of the first fetch: no fetch at all.
    flood(0).await;
    assert_eq!(server.jwks_requests(), 1);
    // After it: one fetch for the whole flood, then none again.
    tokio::time::sleep(PAST_SHORT).await;
    flood(1).await;
    assert_eq!(server.jwks_requests(), 2);
    flood(2).await;
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn a_key_published_after_the_first_fetch_is_found_by_its_kid() {
    let first = TestKey::generate(JwtAlgorithm::EdDsa);
    let second = TestKey::generate(JwtAlgorithm::Es256);
    let server = KeyServer::start(&[&first]).await;
    let verifier = server.verifier(SHORT).await;
    verifier
        .verify_at(&first.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();

    server.publish(&[&first, &second]);
    tokio::time::sleep(PAST_SHORT).await;
    verifier
        .verify_at(&second.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
    verifier
        .verify_at(&first.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn the_key_set_is_fetched_again_when_its_max_age_is_over() {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let withdrawn = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&key, &withdrawn]).await;
    server.set_cache_control("public, max-age=1");
    let verifier = server.verifier(SHORT).await;
    verifier
        .verify_at(&withdrawn.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();

    // The issuer withdraws a key: once the copy is stale, it stops verifying.
    server.publish(&[&key]);
    tokio::time::sleep(PAST_SHORT).await;
    verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
    assert_eq!(
        server.jwks_requests(),
        2,
        "a known kid refreshes a stale set"
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        verifier
            .verify_at(&withdrawn.sign(&claims(&server.base)), NOW)
            .await,
        Err(VerifyError::Invalid(InvalidToken::UnknownKeyId))
    );
}

#[tokio::test]
async fn a_fresh_copy_is_not_fetched_again_for_a_known_kid() {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&key]).await;
    server.set_cache_control("public, max-age=300");
    let verifier = server.verifier(SHORT).await;
    verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
    assert_eq!(server.jwks_requests(), 1);
}

#[tokio::test]
async fn an_unreachable_key_set_is_keys_unavailable_unless_a_cached_key_matches() {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let unknown = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&key]).await;
    server.set_down(true);
    let verifier = server.verifier(SHORT).await;
    let error = verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await;
    assert!(
        matches!(error, Err(VerifyError::KeysUnavailable(_))),
        "{error:?}"
    );

    // Back up: fetched (after the interval), cached with a short max-age.
    server.set_down(false);
    server.set_cache_control("max-age=1");
    tokio::time::sleep(PAST_SHORT).await;
    verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();

    // Down again once the copy is stale: the cached key still verifies, an
    // unknown kid cannot be decided.
    server.set_down(true);
    tokio::time::sleep(PAST_SHORT).await;
    verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
    let error = verifier
        .verify_at(&unknown.sign(&claims(&server.base)), NOW)
        .await;
    assert!(
        matches!(error, Err(VerifyError::KeysUnavailable(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_key_set_that_is_not_one_is_keys_unavailable() {
    let key = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[]).await;
    server.publish_raw(serde_json::json!({"not": "a key set"}));
    let verifier = server.verifier(SHORT).await;
    let error = verifier
        .verify_at(&key.sign(&claims(&server.base)), NOW)
        .await;
    assert!(
        matches!(error, Err(VerifyError::KeysUnavailable(_))),
        "{error:?}"
    );
}
