//! Access-token verification (`portcullis_crypto::JwtVerifier::verify`).
//!
//! The verifier is built as a server after a v1 upgrade holds it: an HS256
//! key (also the legacy key for tokens without `kid`), an EdDSA and an ES256
//! key, each found by `kid` and bound to its algorithm. Two inputs per run:
//! the fuzz input itself as a token (lossy UTF-8), and a genuine token of one
//! of the three keys (the first byte picks which) with the rest of the fuzz
//! input XOR-ed into it (the next two bytes pick the offset). Properties: never panics; a token that verifies carries the
//! verifier's issuer and audience and is within its time window; and a
//! mutated genuine token is accepted only if the mutation changed nothing.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_crypto::{
    Hs256Key, JwtAccessClaims, JwtAlgorithm, JwtSigner, JwtSigningKey, JwtVerifier,
    MAX_LEEWAY_SECS,
};
use secrecy::ExposeSecret;

const KEY: [u8; 32] = [7; 32];
const ISSUER: &str = "portcullis";
const AUDIENCE: &str = "portcullis";
/// The time every token is checked at. The seed tokens in
/// `corpus/jwt_verify/` (`valid-token*`, with and without `kid`) are valid at
/// this time with this key.
const NOW: i64 = 1_700_000_000;

fn asymmetric_signer(algorithm: JwtAlgorithm) -> JwtSigner {
    let pair = algorithm.generate_key_pair().expect("key pair");
    let key = JwtSigningKey::from_pkcs8(algorithm, pair.private_key_pkcs8.expose_secret())
        .expect("generated key");
    JwtSigner::new(key, ISSUER, AUDIENCE)
}

/// HS256, EdDSA and ES256, in that order.
static SIGNERS: LazyLock<[JwtSigner; 3]> = LazyLock::new(|| {
    [
        JwtSigner::hs256(&KEY, ISSUER, AUDIENCE).expect("32-byte key"),
        asymmetric_signer(JwtAlgorithm::EdDsa),
        asymmetric_signer(JwtAlgorithm::Es256),
    ]
});

static VERIFIER: LazyLock<JwtVerifier> = LazyLock::new(|| {
    JwtVerifier::new(
        SIGNERS
            .iter()
            .map(|signer| signer.signing_key().verification_key().clone()),
        ISSUER,
        AUDIENCE,
    )
    .expect("distinct kids")
    .with_legacy_hs256_key(&Hs256Key::new(&KEY).expect("32-byte key"))
});

static GENUINE: LazyLock<[String; 3]> = LazyLock::new(|| {
    let claims = JwtAccessClaims {
        iss: String::new(),
        aud: String::new(),
        sub: "0190f1c2-7a3b-7c4d-8e5f-000000000001".to_owned(),
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "fuzz-jti".to_owned(),
        sid: "fuzz-session".to_owned(),
        scope: "profile".to_owned(),
    };
    SIGNERS
        .each_ref()
        .map(|signer| signer.sign(&claims).expect("signing works"))
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

    let (genuine, offset, mask) = match data {
        [which, high, low, mask @ ..] => (
            &GENUINE[usize::from(*which) % 3],
            usize::from(*high) << 8 | usize::from(*low),
            mask,
        ),
        _ => return,
    };
    let genuine = genuine.as_bytes();
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
            mutated.as_bytes(),
            genuine,
            "a changed token was accepted: {claims:?}"
        );
    }
});
