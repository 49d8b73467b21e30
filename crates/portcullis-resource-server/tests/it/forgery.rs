//! Forgeries: another key under a published kid, algorithm confusion,
//! `alg: none`, and headers that try to choose the key.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_crypto::JwtAlgorithm;
use portcullis_resource_server::{AcceptedAlgorithm, InvalidToken, RemoteVerifier, VerifyError};
use serde_json::{Value, json};

use crate::support::{KeyServer, NOW, TestKey, claims};

fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[tokio::test]
async fn an_attackers_key_under_a_published_kid_fails_the_signature() {
    let real = TestKey::generate(JwtAlgorithm::EdDsa);
    let attacker = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&real]).await;
    let verifier = server.verifier(Duration::from_secs(30)).await;
    let forged = attacker.sign_as(real.kid(), &claims(&server.base));
    assert_eq!(
        verifier.verify_at(&forged, NOW).await,
        Err(VerifyError::Invalid(InvalidToken::BadSignature))
    );
}

#[tokio::test]
async fn hs256_with_the_public_key_as_secret_and_alg_none_are_refused() {
    let real = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&real]).await;
    let verifier = server.verifier(Duration::from_secs(30)).await;
    let payload = claims(&server.base);

    // The classic confusion: HS256 keyed with the published public key.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(real.kid().to_owned());
    let public_key = URL_SAFE_NO_PAD
        .decode(real.jwk()["x"].as_str().unwrap())
        .unwrap();
    for secret in [public_key.as_slice(), real.jwk().to_string().as_bytes()] {
        let forged =
            jsonwebtoken::encode(&header, &payload, &EncodingKey::from_secret(secret)).unwrap();
        assert_eq!(
            verifier.verify_at(&forged, NOW).await,
            Err(VerifyError::Invalid(InvalidToken::AlgorithmMismatch))
        );
    }
    assert_eq!(
        server.jwks_requests(),
        0,
        "refused before any key is looked up"
    );

    let none = format!(
        "{}.{}.",
        segment(&json!({"typ": "at+jwt", "alg": "none", "kid": real.kid()})),
        segment(&payload)
    );
    assert_eq!(
        verifier.verify_at(&none, NOW).await,
        Err(VerifyError::Invalid(InvalidToken::Malformed))
    );
}

#[tokio::test]
async fn the_keys_algorithm_decides_not_the_headers() {
    let eddsa = TestKey::generate(JwtAlgorithm::EdDsa);
    let es256 = TestKey::generate(JwtAlgorithm::Es256);
    let server = KeyServer::start(&[&eddsa, &es256]).await;
    let verifier = server.verifier(Duration::from_secs(30)).await;
    // An ES256 signature under the EdDSA key's kid.
    let forged = es256.sign_as(eddsa.kid(), &claims(&server.base));
    assert_eq!(
        verifier.verify_at(&forged, NOW).await,
        Err(VerifyError::Invalid(InvalidToken::AlgorithmMismatch))
    );

    // A verifier that accepts EdDSA only ignores the published ES256 key.
    let eddsa_only = RemoteVerifier::new(
        server
            .config()
            .with_accepted_algorithms([AcceptedAlgorithm::EdDsa]),
    )
    .await
    .unwrap();
    assert_eq!(
        eddsa_only
            .verify_at(&es256.sign(&claims(&server.base)), NOW)
            .await,
        Err(VerifyError::Invalid(InvalidToken::AlgorithmMismatch))
    );
    eddsa_only
        .verify_at(&eddsa.sign(&claims(&server.base)), NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn headers_that_name_or_carry_a_key_are_refused_and_never_followed() {
    let real = TestKey::generate(JwtAlgorithm::EdDsa);
    let attacker = TestKey::generate(JwtAlgorithm::EdDsa);
    let server = KeyServer::start(&[&real]).await;
    let verifier = server.verifier(Duration::from_secs(30)).await;
    let payload = claims(&server.base);
    let elsewhere = format!("{}/attacker/jwks.json", server.base);
    for (member, value, reason) in [
        ("jku", json!(elsewhere), "jku"),
        ("x5u", json!(elsewhere), "x5u"),
        ("jwk", attacker.jwk(), "jwk"),
        ("x5c", json!(["MIIB"]), "x5c"),
    ] {
        let header = json!({"typ": "at+jwt", "alg": "EdDSA", "kid": real.kid(), member: value});
        let message = format!("{}.{}", segment(&header), segment(&payload));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &attacker.encoding_key(),
            Algorithm::EdDSA,
        )
        .unwrap();
        assert_eq!(
            verifier
                .verify_at(&format!("{message}.{signature}"), NOW)
                .await,
            Err(VerifyError::Invalid(InvalidToken::ForbiddenHeader(reason))),
            "{member}"
        );
    }
    assert_eq!(
        server.other_requests(),
        0,
        "nothing but the key set is fetched"
    );
    assert_eq!(server.jwks_requests(), 0);
}
