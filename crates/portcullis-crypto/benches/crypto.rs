//! Micro-benchmarks of the crypto crate: what one request costs.
//!
//! `cargo bench -p portcullis-crypto`. The argon2 figure is the unit of the
//! login-throughput limit that `just bench` compares against.

#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation,
    reason = "tests: a failed set-up panics saying what failed, and tests read the real clock and draw ids as the code under test does"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_crypto::{
    Argon2Hasher, Argon2Policy, Hs256Key, JwtAccessClaims, JwtAlgorithm, JwtSigner, JwtSigningKey,
    JwtVerifier, constant_time_eq, generate_opaque_token, token_digest,
};
use secrecy::ExposeSecret;

const NOW: i64 = 1_800_000_000;

fn claims() -> JwtAccessClaims {
    JwtAccessClaims {
        iss: "portcullis".to_owned(),
        aud: "portcullis".to_owned(),
        sub: "0a048462-a858-4d2c-86f2-510189371ba4".to_owned(),
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "3cc6891a-73d7-4d44-82a0-0296404fb423".to_owned(),
        sid: "1789e2a6-7b1f-48e7-b3dd-60e6ce217c26".to_owned(),
        scope: "profile admin".to_owned(),
    }
}

fn jwt(c: &mut Criterion) {
    let secret = [7; 32];
    let signer = JwtSigner::hs256(&secret, "portcullis", "portcullis").expect("signer");
    // As the server builds it: with the legacy key for tokens without `kid`.
    let verifier = JwtVerifier::for_signer(&signer)
        .with_legacy_hs256_key(&Hs256Key::new(&secret).expect("32-byte key"));
    let claims = claims();
    let token = signer.sign(&claims).expect("token");
    c.bench_function("jwt_issue", |b| b.iter(|| signer.sign(black_box(&claims))));
    c.bench_function("jwt_verify", |b| {
        b.iter(|| verifier.verify(black_box(&token), NOW))
    });
}

/// EdDSA and ES256 next to HS256: sign, and verify against a verifier that
/// holds the public key only.
fn jwt_asymmetric(c: &mut Criterion) {
    let claims = claims();
    for (name, algorithm) in [
        ("eddsa", JwtAlgorithm::EdDsa),
        ("es256", JwtAlgorithm::Es256),
    ] {
        let pair = algorithm.generate_key_pair().expect("key pair");
        let key = JwtSigningKey::from_pkcs8(algorithm, pair.private_key_pkcs8.expose_secret())
            .expect("key");
        let signer = JwtSigner::new(key, "portcullis", "portcullis");
        let verifier = JwtVerifier::for_signer(&signer);
        let token = signer.sign(&claims).expect("token");
        c.bench_function(&format!("jwt_issue_{name}"), |b| {
            b.iter(|| signer.sign(black_box(&claims)))
        });
        c.bench_function(&format!("jwt_verify_{name}"), |b| {
            b.iter(|| verifier.verify(black_box(&token), NOW))
        });
    }
}

fn api_key(c: &mut Criterion) {
    // What verifying an API key costs before the database lookup: the digest
    // of the presented key (stored digests are compared by the index).
    let key = generate_opaque_token("pcl_");
    let stored = token_digest(&key);
    c.bench_function("api_key_verify", |b| {
        b.iter(|| constant_time_eq(&token_digest(black_box(&key)), &stored))
    });
}

fn argon2(c: &mut Criterion) {
    let hasher = Argon2Hasher::new(Argon2Policy::OWASP).expect("policy");
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(10);
    group.bench_function("hash_owasp_m19456_t2_p1", |b| {
        b.iter(|| hasher.hash(black_box(b"correct horse battery staple")))
    });
    group.finish();
}

criterion_group!(benches, jwt, jwt_asymmetric, api_key, argon2);
criterion_main!(benches);
