//! Access-token verification (`portcullis_crypto::JwtVerifier::verify`).
//!
//! The verifier is built as the server builds it: the signer's key, found by
//! `kid`, plus the same secret as the legacy key for tokens without `kid`.
//! Two inputs per run: the fuzz input itself as a token (lossy UTF-8), and a
//! genuine token with the fuzz input XOR-ed into it (the first two bytes pick
//! the offset). Properties: never panics; a token that verifies carries the
//! verifier's issuer and audience and is within its time window; and a
//! mutated genuine token is accepted only if the mutation changed nothing.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_crypto::{Hs256Key, JwtAccessClaims, JwtSigner, JwtVerifier, MAX_LEEWAY_SECS};

const KEY: [u8; 32] = [7; 32];
const ISSUER: &str = "portcullis";
const AUDIENCE: &str = "portcullis";
/// The time every token is checked at. The seed tokens in
/// `corpus/jwt_verify/` (`valid-token*`, with and without `kid`) are valid at
/// this time with this key.
const NOW: i64 = 1_700_000_000;

static SIGNER: LazyLock<JwtSigner> =
    LazyLock::new(|| JwtSigner::hs256(&KEY, ISSUER, AUDIENCE).expect("32-byte key"));

static VERIFIER: LazyLock<JwtVerifier> = LazyLock::new(|| {
    JwtVerifier::for_signer(&SIGNER)
        .with_legacy_hs256_key(&Hs256Key::new(&KEY).expect("32-byte key"))
});

static GENUINE: LazyLock<String> = LazyLock::new(|| {
    SIGNER
        .sign(&JwtAccessClaims {
            iss: String::new(),
            aud: String::new(),
            sub: "0190f1c2-7a3b-7c4d-8e5f-000000000001".to_owned(),
            exp: NOW + 900,
            iat: NOW,
            nbf: NOW,
            jti: "fuzz-jti".to_owned(),
            sid: "fuzz-session".to_owned(),
            scope: "profile".to_owned(),
        })
        .expect("signing works")
});

fuzz_target!(|data: &[u8]| {
    let leeway = i64::try_from(MAX_LEEWAY_SECS).expect("small");

    let token = String::from_utf8_lossy(data);
    if let Ok(claims) = VERIFIER.verify(&token, NOW) {
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, AUDIENCE);
        assert!(claims.exp.saturating_add(leeway) > NOW);
        assert!(claims.nbf.saturating_sub(leeway) <= NOW);
    }

    let genuine = GENUINE.as_bytes();
    let (offset, mask) = match data {
        [high, low, mask @ ..] => (usize::from(*high) << 8 | usize::from(*low), mask),
        _ => return,
    };
    let mut mutated = genuine.to_vec();
    for (i, byte) in mask.iter().enumerate() {
        let at = (offset + i) % mutated.len();
        mutated[at] ^= byte;
    }
    let Ok(mutated) = String::from_utf8(mutated) else {
        return;
    };
    if let Ok(claims) = VERIFIER.verify(&mutated, NOW) {
        assert_eq!(
            mutated.as_str(),
            GENUINE.as_str(),
            "a changed token was accepted: {claims:?}"
        );
    }
});
