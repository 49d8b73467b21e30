//! Signer and verifier together: what one signs, the other must accept, and
//! nothing else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::verifier::LEEWAY_SECS;
use super::*;
use crate::error::{CryptoError, JwtError};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const OTHER_SECRET: &[u8] = b"fedcba9876543210fedcba9876543210";
const THIRD_SECRET: &[u8] = b"a third secret, also 32 bytes ok";
const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "portcullis-api";
const NOW: i64 = 1_700_000_000;

fn signer() -> JwtSigner {
    JwtSigner::hs256(SECRET, ISSUER, AUDIENCE).unwrap()
}

fn verifier() -> JwtVerifier {
    JwtVerifier::for_signer(&signer())
}

/// The verifier of a deployment upgraded from before key ids.
fn verifier_with_legacy_key() -> JwtVerifier {
    verifier().with_legacy_hs256_key(&Hs256Key::new(SECRET).unwrap())
}

fn kid(secret: &[u8]) -> String {
    Hs256Key::new(secret).unwrap().kid().to_owned()
}

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
        scope: "openid profile".to_owned(),
    }
}

fn claims_json() -> Value {
    serde_json::to_value(claims()).unwrap()
}

/// Signs arbitrary JSON claims with an arbitrary header, bypassing the signer.
fn sign_raw(header: &Header, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// Signs an arbitrary JSON header and claims with HMAC-SHA-256, whatever
/// `alg` the header names: how an attacker who knows (or guesses) a secret
/// would try to make the verifier use it with another algorithm.
fn sign_raw_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let message = format!("{}.{}", encode(header), encode(claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

/// `{"typ": typ, "alg": alg, "kid": <SECRET's kid>}`.
fn header(alg: Algorithm, typ: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.typ = typ.map(str::to_owned);
    header.kid = Some(kid(SECRET));
    header
}

fn access_token_header() -> Header {
    header(Algorithm::HS256, Some(ACCESS_TOKEN_TYPE))
}

/// A token as issued before key ids: HS256, `typ` `at+jwt`, no `kid`.
fn legacy_token(claims: &Value, secret: &[u8]) -> String {
    let mut header = access_token_header();
    header.kid = None;
    sign_raw(&header, claims, secret)
}

#[test]
fn signed_token_verifies_to_the_same_claims() {
    let token = signer().sign(&claims()).unwrap();
    assert_eq!(verifier().verify(&token, NOW).unwrap(), claims());
}

#[test]
fn header_of_a_signed_token_is_hs256_with_typ_at_jwt_and_the_keys_kid() {
    let token = signer().sign(&claims()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), Some("vfmlgbuANpgHSP__"));
    assert_eq!(header.kid, Some(kid(SECRET)));
}

#[test]
fn header_of_a_signed_token_has_exactly_typ_alg_and_kid() {
    let token = signer().sign(&claims()).unwrap();
    let (header, _) = token.split_once('.').unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"typ": "at+jwt", "alg": "HS256", "kid": "vfmlgbuANpgHSP__"})
    );
}

#[test]
fn sign_overwrites_issuer_and_audience_with_the_signers_own() {
    let mut foreign = claims();
    foreign.iss = "https://evil.example.test".to_owned();
    foreign.aud = "other-api".to_owned();
    let token = signer().sign(&foreign).unwrap();
    let verified = verifier().verify(&token, NOW).unwrap();
    assert_eq!(verified.iss, ISSUER);
    assert_eq!(verified.aud, AUDIENCE);
}

#[test]
fn tampered_signature_is_malformed() {
    let token = signer().sign(&claims()).unwrap();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    signature[0] ^= 1;
    let tampered = format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature));
    assert_eq!(verifier().verify(&tampered, NOW), Err(JwtError::Malformed));
}

#[test]
fn tampered_payload_is_malformed() {
    let token = signer().sign(&claims()).unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut elevated = claims_json();
    elevated["scope"] = json!("admin");
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&elevated).unwrap());
    parts[1] = &payload;
    assert_eq!(
        verifier().verify(&parts.join("."), NOW),
        Err(JwtError::Malformed)
    );
}

#[test]
fn token_signed_by_a_key_outside_the_set_is_malformed() {
    let other = JwtSigner::hs256(OTHER_SECRET, ISSUER, AUDIENCE).unwrap();
    let token = other.sign(&claims()).unwrap();
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
    assert_eq!(
        verifier_with_legacy_key().verify(&token, NOW),
        Err(JwtError::Malformed)
    );
}

#[test]
fn token_naming_a_known_kid_but_signed_with_another_key_is_malformed() {
    // Right kid, wrong secret: the key is found and the signature fails.
    let token = sign_raw(&access_token_header(), &claims_json(), OTHER_SECRET);
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn token_with_an_unknown_kid_is_malformed_even_if_the_legacy_key_signed_it() {
    for unknown in ["unknown-key", "", "vfmlgbuANpgHSP_", "VFMLGBUANPGHSP__"] {
        let mut header = access_token_header();
        header.kid = Some(unknown.to_owned());
        let token = sign_raw(&header, &claims_json(), SECRET);
        assert_eq!(
            verifier_with_legacy_key().verify(&token, NOW),
            Err(JwtError::Malformed),
            "{unknown:?}"
        );
    }
}

#[test]
fn unsigned_alg_none_token_with_a_known_kid_is_malformed() {
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": kid(SECRET)});
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_json()).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
    }
}

#[test]
fn unsigned_alg_none_token_without_kid_is_malformed_even_with_a_legacy_key() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_json()).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_eq!(
            verifier_with_legacy_key().verify(&token, NOW),
            Err(JwtError::Malformed)
        );
    }
}

#[test]
fn other_hmac_algorithms_with_the_right_key_and_kid_are_malformed() {
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = sign_raw(
            &header(alg, Some(ACCESS_TOKEN_TYPE)),
            &claims_json(),
            SECRET,
        );
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(JwtError::Malformed),
            "{alg:?}"
        );
    }
}

#[test]
fn header_alg_other_than_the_keys_is_malformed_even_with_a_valid_hmac() {
    // The HMAC is right for the message: only the header's `alg` differs
    // from the key's. Verifying with the header's algorithm would be the
    // algorithm confusion of RFC 8725 section 2.1.
    for alg in ["RS256", "ES256", "EdDSA", "PS256", "HS384"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid(SECRET)});
        let token = sign_raw_hs256(&header, &claims_json(), SECRET);
        assert_eq!(
            verifier_with_legacy_key().verify(&token, NOW),
            Err(JwtError::Malformed),
            "{alg}"
        );
    }
}

#[test]
fn legacy_token_without_kid_verifies_with_the_legacy_key_only() {
    let token = legacy_token(&claims_json(), SECRET);
    assert_eq!(verifier_with_legacy_key().verify(&token, NOW), Ok(claims()));
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn legacy_token_signed_with_another_secret_is_malformed() {
    let token = legacy_token(&claims_json(), OTHER_SECRET);
    assert_eq!(
        verifier_with_legacy_key().verify(&token, NOW),
        Err(JwtError::Malformed)
    );
}

#[test]
fn legacy_token_gets_every_other_check() {
    let verifier = verifier_with_legacy_key();

    let mut header = header(Algorithm::HS512, Some(ACCESS_TOKEN_TYPE));
    header.kid = None;
    let token = sign_raw(&header, &claims_json(), SECRET);
    assert_eq!(
        verifier.verify(&token, NOW),
        Err(JwtError::Malformed),
        "HS512"
    );

    let token = sign_raw(&Header::new(Algorithm::HS256), &claims_json(), SECRET);
    assert_eq!(
        verifier.verify(&token, NOW),
        Err(JwtError::Malformed),
        "typ JWT"
    );

    let mut raw = claims_json();
    raw["aud"] = json!("other-api");
    let token = legacy_token(&raw, SECRET);
    assert_eq!(
        verifier.verify(&token, NOW),
        Err(JwtError::WrongIssuerOrAudience)
    );

    let token = legacy_token(&claims_json(), SECRET);
    assert_eq!(verifier.verify(&token, NOW + 3600), Err(JwtError::Expired));
}

#[test]
fn verifier_with_two_keys_verifies_tokens_from_both_and_nothing_else() {
    let current = JwtSigner::hs256(SECRET, ISSUER, AUDIENCE).unwrap();
    let previous = JwtSigner::hs256(OTHER_SECRET, ISSUER, AUDIENCE).unwrap();
    let verifier = JwtVerifier::new(
        [
            current.signing_key().verification_key().clone(),
            previous.signing_key().verification_key().clone(),
        ],
        ISSUER,
        AUDIENCE,
    )
    .unwrap();
    for signer in [&current, &previous] {
        let token = signer.sign(&claims()).unwrap();
        assert_eq!(verifier.verify(&token, NOW), Ok(claims()), "{signer:?}");
    }

    let stranger = JwtSigner::hs256(THIRD_SECRET, ISSUER, AUDIENCE).unwrap();
    let token = stranger.sign(&claims()).unwrap();
    assert_eq!(verifier.verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn each_key_verifies_only_tokens_naming_its_own_kid() {
    // Signed with the previous key but naming the current one: the current
    // key is tried, and fails. No key is tried for another key's id.
    let verifier = JwtVerifier::new(
        [
            JwtVerificationKey::hs256(&Hs256Key::new(SECRET).unwrap()),
            JwtVerificationKey::hs256(&Hs256Key::new(OTHER_SECRET).unwrap()),
        ],
        ISSUER,
        AUDIENCE,
    )
    .unwrap();
    let token = sign_raw(&access_token_header(), &claims_json(), OTHER_SECRET);
    assert_eq!(verifier.verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn two_verification_keys_with_one_kid_are_refused() {
    let key = Hs256Key::new(SECRET).unwrap();
    let result = JwtVerifier::new(
        [
            JwtVerificationKey::hs256(&key),
            JwtVerificationKey::hs256(&key),
        ],
        ISSUER,
        AUDIENCE,
    );
    assert!(
        matches!(&result, Err(CryptoError::DuplicateKeyId(kid)) if kid == key.kid()),
        "{result:?}"
    );
}

#[test]
fn verifier_without_keys_accepts_nothing() {
    let verifier = JwtVerifier::new([], ISSUER, AUDIENCE).unwrap();
    let token = signer().sign(&claims()).unwrap();
    assert_eq!(verifier.verify(&token, NOW), Err(JwtError::Malformed));
    let token = legacy_token(&claims_json(), SECRET);
    assert_eq!(verifier.verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn hs256_token_with_typ_jwt_is_malformed() {
    let token = sign_raw(
        &header(Algorithm::HS256, Some("JWT")),
        &claims_json(),
        SECRET,
    );
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn hs256_token_without_typ_is_malformed() {
    let token = sign_raw(&header(Algorithm::HS256, None), &claims_json(), SECRET);
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn typ_is_compared_case_insensitively_and_may_be_the_full_media_type() {
    for typ in ["AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
        let token = sign_raw(&header(Algorithm::HS256, Some(typ)), &claims_json(), SECRET);
        assert_eq!(verifier().verify(&token, NOW), Ok(claims()), "{typ}");
    }
}

#[test]
fn token_with_a_crit_header_is_malformed() {
    let mut header = access_token_header();
    header.crit = Some(vec!["exp".to_owned()]);
    let token = sign_raw(&header, &claims_json(), SECRET);
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn wrong_issuer_is_rejected() {
    let other = JwtSigner::hs256(SECRET, "https://other.example.test", AUDIENCE).unwrap();
    let token = other.sign(&claims()).unwrap();
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(JwtError::WrongIssuerOrAudience)
    );
}

#[test]
fn wrong_audience_is_rejected() {
    let other = JwtSigner::hs256(SECRET, ISSUER, "other-api").unwrap();
    let token = other.sign(&claims()).unwrap();
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(JwtError::WrongIssuerOrAudience)
    );
}

#[test]
fn audience_as_a_one_element_array_is_accepted() {
    let mut raw = claims_json();
    raw["aud"] = json!([AUDIENCE]);
    let token = sign_raw(&access_token_header(), &raw, SECRET);
    assert_eq!(verifier().verify(&token, NOW), Ok(claims()));
}

#[test]
fn audience_array_with_a_foreign_element_is_rejected() {
    let mut raw = claims_json();
    raw["aud"] = json!(["other-api"]);
    let token = sign_raw(&access_token_header(), &raw, SECRET);
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(JwtError::WrongIssuerOrAudience)
    );

    raw["aud"] = json!([AUDIENCE, "other-api"]);
    let token = sign_raw(&access_token_header(), &raw, SECRET);
    assert!(verifier().verify(&token, NOW).is_err());
}

#[test]
fn token_expired_beyond_the_leeway_is_expired() {
    let signer = signer();
    let mut expired = claims();
    expired.exp = NOW - LEEWAY_SECS - 1;
    expired.nbf = NOW - 900;
    let token = signer.sign(&expired).unwrap();
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Expired));

    expired.exp = NOW - LEEWAY_SECS;
    let token = signer.sign(&expired).unwrap();
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Expired));
}

#[test]
fn token_expired_within_the_leeway_is_accepted() {
    let mut recent = claims();
    recent.exp = NOW - LEEWAY_SECS + 1;
    recent.nbf = NOW - 900;
    let token = signer().sign(&recent).unwrap();
    assert_eq!(verifier().verify(&token, NOW), Ok(recent));
}

#[test]
fn token_not_yet_valid_beyond_the_leeway_is_expired() {
    let signer = signer();
    let mut future = claims();
    future.nbf = NOW + LEEWAY_SECS + 1;
    let token = signer.sign(&future).unwrap();
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Expired));

    future.nbf = NOW + LEEWAY_SECS;
    let token = signer.sign(&future).unwrap();
    assert_eq!(verifier().verify(&token, NOW), Ok(future));
}

#[test]
fn verify_uses_the_given_time_not_the_system_clock() {
    // These claims are decades in the past for the system clock.
    let mut old = claims();
    old.nbf = 1_000;
    old.iat = 1_000;
    old.exp = 2_000;
    let token = signer().sign(&old).unwrap();
    assert_eq!(verifier().verify(&token, 1_500), Ok(old));
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Expired));
}

#[test]
fn missing_sid_claim_is_malformed() {
    let mut raw = claims_json();
    raw.as_object_mut().unwrap().remove("sid");
    let token = sign_raw(&access_token_header(), &raw, SECRET);
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn any_missing_claim_is_malformed() {
    for claim in [
        "iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "scope",
    ] {
        let mut raw = claims_json();
        raw.as_object_mut().unwrap().remove(claim);
        let token = sign_raw(&access_token_header(), &raw, SECRET);
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(JwtError::Malformed),
            "{claim}"
        );
    }
}

#[test]
fn claim_of_the_wrong_type_is_malformed() {
    let mut raw = claims_json();
    raw["exp"] = json!("tomorrow");
    let token = sign_raw(&access_token_header(), &raw, SECRET);
    assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Malformed));
}

#[test]
fn garbage_is_malformed() {
    for token in ["", "a", "a.b", "a.b.c", "a.b.c.d", "...", "ey.ey.ey"] {
        assert_eq!(
            verifier_with_legacy_key().verify(token, NOW),
            Err(JwtError::Malformed),
            "{token}"
        );
    }
}

#[test]
fn secret_of_31_bytes_is_too_short() {
    assert!(matches!(
        JwtSigner::hs256(&[7; 31], ISSUER, AUDIENCE),
        Err(CryptoError::KeyTooShort)
    ));
    assert!(JwtSigner::hs256(&[7; 32], ISSUER, AUDIENCE).is_ok());
    assert_eq!(MIN_HS256_SECRET_BYTES, 32);
}

#[test]
fn signer_reports_its_key_issuer_and_audience() {
    let signer = signer();
    assert_eq!(signer.issuer(), ISSUER);
    assert_eq!(signer.audience(), AUDIENCE);
    assert_eq!(signer.signing_key().kid(), kid(SECRET));
    assert_eq!(signer.signing_key().algorithm(), JwtAlgorithm::Hs256);
}

#[test]
fn debug_of_signer_and_verifier_contains_no_key_material() {
    let secret = [0xAB_u8; 32];
    let signer = JwtSigner::hs256(&secret, ISSUER, AUDIENCE).unwrap();
    let verifier =
        JwtVerifier::for_signer(&signer).with_legacy_hs256_key(&Hs256Key::new(&secret).unwrap());
    for debug in [format!("{signer:?}"), format!("{verifier:?}")] {
        assert!(debug.contains(ISSUER), "{debug}");
        assert!(debug.contains(signer.signing_key().kid()), "{debug}");
        for needle in [
            "171",
            "0xab",
            "0xAB",
            "ab, ab",
            "abababab",
            "ABABABAB",
            &URL_SAFE_NO_PAD.encode(secret)[..8],
        ] {
            assert!(!debug.contains(needle), "{needle} in {debug}");
        }
    }
}
