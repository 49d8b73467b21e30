//! EdDSA and ES256: generation, signing, verification, thumbprints, and the
//! forgeries asymmetric keys invite (algorithm confusion, a foreign key
//! under a real kid).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::*;
use crate::error::{CryptoError, JwtError};

const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "portcullis-api";
const NOW: i64 = 1_700_000_000;

fn claims() -> JwtAccessClaims {
    JwtAccessClaims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: "user-1".to_owned(),
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "token-1".to_owned(),
        sid: "session-1".to_owned(),
        scope: "profile".to_owned(),
    }
}

fn signing_key(algorithm: JwtAlgorithm) -> JwtSigningKey {
    let pair = algorithm.generate_key_pair().unwrap();
    JwtSigningKey::from_pkcs8(algorithm, pair.private_key_pkcs8.expose_secret()).unwrap()
}

fn verifier_of(keys: &[&JwtSigningKey]) -> JwtVerifier {
    JwtVerifier::new(
        keys.iter().map(|key| key.verification_key().clone()),
        ISSUER,
        AUDIENCE,
    )
    .unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[test]
fn eddsa_and_es256_tokens_verify_with_their_public_keys_only() {
    for algorithm in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256] {
        let key = signing_key(algorithm);
        let token = JwtSigner::new(key.clone(), ISSUER, AUDIENCE)
            .sign(&claims())
            .unwrap();
        assert_eq!(
            header_of(&token),
            json!({"typ": "at+jwt", "alg": algorithm.name(), "kid": key.kid()})
        );
        // A verifier built from the published public key alone.
        let public = JwtVerificationKey::from_public_key(
            algorithm,
            &public_key_bytes(key.verification_key()),
        )
        .unwrap();
        assert_eq!(public.kid(), key.kid());
        let verifier = JwtVerifier::new([public], ISSUER, AUDIENCE).unwrap();
        assert_eq!(verifier.verify(&token, NOW + 60).unwrap(), claims());
        assert_eq!(verifier.verify(&token, NOW + 3600), Err(JwtError::Expired));
    }
}

/// The raw public key back from the JWK members.
fn public_key_bytes(key: &JwtVerificationKey) -> Vec<u8> {
    let jwk = key.public_jwk().unwrap();
    let x = URL_SAFE_NO_PAD.decode(&jwk.x).unwrap();
    match &jwk.y {
        None => x,
        Some(y) => [vec![0x04], x, URL_SAFE_NO_PAD.decode(y).unwrap()].concat(),
    }
}

#[test]
fn one_verifier_holds_keys_of_every_algorithm() {
    let eddsa = signing_key(JwtAlgorithm::EdDsa);
    let es256 = signing_key(JwtAlgorithm::Es256);
    let hs256 = JwtSigningKey::hs256(&Hs256Key::new(&[9; 32]).unwrap());
    let verifier = verifier_of(&[&eddsa, &es256, &hs256]);
    for key in [eddsa, es256, hs256] {
        let token = JwtSigner::new(key, ISSUER, AUDIENCE)
            .sign(&claims())
            .unwrap();
        assert!(verifier.verify(&token, NOW).is_ok());
    }
}

#[test]
fn the_kid_is_the_rfc_7638_thumbprint() {
    // RFC 8037 appendix A.3: the thumbprint of the appendix A.2 public key.
    let jwk = PublicJwk {
        kty: "OKP",
        crv: "Ed25519",
        x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".to_owned(),
        y: None,
    };
    assert_eq!(
        jwk.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let raw = URL_SAFE_NO_PAD.decode(&jwk.x).unwrap();
    assert_eq!(
        JwtVerificationKey::from_public_key(JwtAlgorithm::EdDsa, &raw)
            .unwrap()
            .kid(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );

    let pair = JwtAlgorithm::Es256.generate_key_pair().unwrap();
    let jwk = PublicJwk::from_public_key(JwtAlgorithm::Es256, &pair.public_key).unwrap();
    assert_eq!((jwk.kty, jwk.crv), ("EC", "P-256"));
    assert_eq!(jwk.x.len(), 43);
    assert_eq!(jwk.y.as_deref().map(str::len), Some(43));
    assert_eq!(pair.kid, jwk.thumbprint());
    assert_eq!(pair.kid.len(), 43);
}

#[test]
fn every_generated_key_is_new() {
    let first = JwtAlgorithm::EdDsa.generate_key_pair().unwrap();
    let second = JwtAlgorithm::EdDsa.generate_key_pair().unwrap();
    assert_ne!(first.kid, second.kid);
    assert_ne!(first.public_key, second.public_key);
}

#[test]
fn a_foreign_key_under_a_real_kid_is_refused() {
    let real = signing_key(JwtAlgorithm::EdDsa);
    let attacker = JwtAlgorithm::EdDsa.generate_key_pair().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(real.kid().to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_ed_der(attacker.private_key_pkcs8.expose_secret()),
    )
    .unwrap();
    assert_eq!(
        verifier_of(&[&real]).verify(&forged, NOW),
        Err(JwtError::Malformed)
    );
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // The classic confusion: the public key (which everyone has) used as an
    // HMAC secret, under the asymmetric key's kid.
    for algorithm in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256] {
        let real = signing_key(algorithm);
        let public = public_key_bytes(real.verification_key());
        let jwk_x = real.verification_key().public_jwk().unwrap().x.clone();
        for secret in [public.clone(), jwk_x.into_bytes()] {
            let mut header = Header::new(Algorithm::HS256);
            header.typ = Some("at+jwt".to_owned());
            header.kid = Some(real.kid().to_owned());
            let forged =
                jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret))
                    .unwrap();
            assert_eq!(
                verifier_of(&[&real]).verify(&forged, NOW),
                Err(JwtError::Malformed),
                "{algorithm:?}"
            );
        }
    }
}

#[test]
fn a_token_of_one_asymmetric_algorithm_under_the_other_kind_of_key_is_refused() {
    let eddsa = signing_key(JwtAlgorithm::EdDsa);
    let es256 = signing_key(JwtAlgorithm::Es256);
    let verifier = verifier_of(&[&eddsa]);
    // ES256 signed by a real ES256 key, but naming the EdDSA key.
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(eddsa.kid().to_owned());
    let token = jsonwebtoken::encode(&header, &claims(), es256.encoding_key()).unwrap();
    assert_eq!(verifier.verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn alg_none_and_embedded_key_headers_are_refused() {
    let real = signing_key(JwtAlgorithm::EdDsa);
    let verifier = verifier_of(&[&real]);
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let payload = encode(&serde_json::to_value(claims()).unwrap());
    let none = format!(
        "{}.{payload}.",
        encode(&json!({"typ": "at+jwt", "alg": "none", "kid": real.kid()}))
    );
    assert_eq!(verifier.verify(&none, NOW), Err(JwtError::Malformed));

    // A header that carries its own key (jwk) or points at one (jku, x5u)
    // changes nothing: the key is the one the kid names, and a token
    // signed by another key fails.
    let attacker = JwtAlgorithm::EdDsa.generate_key_pair().unwrap();
    let attacker_jwk =
        PublicJwk::from_public_key(JwtAlgorithm::EdDsa, &attacker.public_key).unwrap();
    for (name, value) in [
        (
            "jwk",
            json!({"kty": "OKP", "crv": "Ed25519", "x": attacker_jwk.x}),
        ),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
    ] {
        let header = json!({"typ": "at+jwt", "alg": "EdDSA", "kid": real.kid(), name: value});
        let message = format!("{}.{payload}", encode(&header));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_ed_der(attacker.private_key_pkcs8.expose_secret()),
            Algorithm::EdDSA,
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&format!("{message}.{signature}"), NOW),
            Err(JwtError::Malformed),
            "{name}"
        );
    }
}

#[test]
fn key_material_of_the_wrong_shape_is_refused() {
    let eddsa = JwtAlgorithm::EdDsa.generate_key_pair().unwrap();
    let es256 = JwtAlgorithm::Es256.generate_key_pair().unwrap();
    let refused = |result: Result<JwtSigningKey, CryptoError>| {
        matches!(result, Err(CryptoError::InvalidKey(_)))
    };
    assert!(refused(JwtSigningKey::from_pkcs8(
        JwtAlgorithm::Es256,
        eddsa.private_key_pkcs8.expose_secret()
    )));
    assert!(refused(JwtSigningKey::from_pkcs8(
        JwtAlgorithm::EdDsa,
        es256.private_key_pkcs8.expose_secret()
    )));
    assert!(refused(JwtSigningKey::from_pkcs8(
        JwtAlgorithm::EdDsa,
        b"garbage"
    )));
    assert!(refused(JwtSigningKey::from_pkcs8(
        JwtAlgorithm::Hs256,
        b"x"
    )));
    assert!(JwtVerificationKey::from_public_key(JwtAlgorithm::EdDsa, &es256.public_key).is_err());
    assert!(JwtVerificationKey::from_public_key(JwtAlgorithm::Es256, &eddsa.public_key).is_err());
    assert!(JwtAlgorithm::Hs256.generate_key_pair().is_err());
}

#[test]
fn debug_shows_no_private_material() {
    let pair = JwtAlgorithm::EdDsa.generate_key_pair().unwrap();
    let debug = format!("{pair:?}");
    assert!(debug.contains(&pair.kid));
    let private = URL_SAFE_NO_PAD.encode(pair.private_key_pkcs8.expose_secret());
    assert!(!debug.contains(&private[..12]));
    assert!(!debug.contains("pkcs8: ["));
}
