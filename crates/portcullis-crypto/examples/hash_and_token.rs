//! Hashes and verifies a password, then issues and verifies an access token.
//!
//! Run with `cargo run -p portcullis-crypto --example hash_and_token`.

#![allow(clippy::print_stdout)]

use std::error::Error;

use portcullis_crypto::{
    Argon2Hasher, Argon2Policy, JwtAccessClaims, JwtError, JwtSigner, JwtVerifier, PasswordCheck,
    constant_time_eq, generate_opaque_token, generate_signing_key, token_digest,
};

fn main() -> Result<(), Box<dyn Error>> {
    // Passwords: argon2id with the OWASP parameters.
    let policy = Argon2Policy::OWASP;
    policy.validate(false)?;
    let hasher = Argon2Hasher::new(policy)?;

    let stored = hasher.hash(b"correct horse battery staple")?;
    println!("stored hash:      {stored}");

    let right = hasher.verify(b"correct horse battery staple", &stored)?;
    let wrong = hasher.verify(b"tr0ub4dor&3", &stored)?;
    println!("right password:   {right:?}");
    println!("wrong password:   {wrong:?}");
    assert_eq!(
        right,
        PasswordCheck::Match {
            needs_rehash: false
        }
    );
    assert_eq!(wrong, PasswordCheck::Mismatch);

    // An operator who raises the cost later gets told to rehash on login.
    let stronger = Argon2Hasher::new(Argon2Policy {
        iterations: 3,
        ..policy
    })?;
    println!(
        "after raising t:  {:?}",
        stronger.verify(b"correct horse battery staple", &stored)?
    );

    // Access tokens: HS256, typ at+jwt, the key's id in `kid`, time passed
    // in by the caller.
    let secret = generate_signing_key();
    let signer = JwtSigner::hs256(&secret, "https://auth.example.com", "example-api")?;
    let verifier = JwtVerifier::for_signer(&signer);
    println!("signing key:      {:?}", signer.signing_key());
    let now: i64 = 1_700_000_000;
    let claims = JwtAccessClaims {
        iss: String::new(),
        aud: String::new(),
        sub: "user-42".to_owned(),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: generate_opaque_token(""),
        sid: "session-7".to_owned(),
        scope: "profile email".to_owned(),
    };
    let token = signer.sign(&claims)?;
    println!("access token:     {token}");

    let verified = verifier.verify(&token, now + 60);
    println!("verified claims:  {verified:?}");
    assert!(verified.is_ok());

    let late = verifier.verify(&token, now + 3600);
    println!("an hour later:    {late:?}");
    assert_eq!(late, Err(JwtError::Expired));

    // Opaque tokens: hand out the token, store only its digest.
    let refresh_token = generate_opaque_token("pcl_");
    let stored_digest = token_digest(&refresh_token);
    println!("refresh token:    {refresh_token}");
    println!(
        "presented again:  {}",
        constant_time_eq(&stored_digest, &token_digest(&refresh_token))
    );

    Ok(())
}
