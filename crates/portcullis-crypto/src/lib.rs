//! The cryptography of Portcullis, in four small pieces:
//!
//! - [`Argon2Hasher`]: password hashing with argon2id under a caller-chosen
//!   [`Argon2Policy`], stored as PHC strings, with rehash-on-login detection
//!   and a dummy verification for unknown users (equal timing);
//! - [`JwtSigner`] and [`JwtVerifier`]: RFC 9068 JWT access tokens, hardened
//!   per RFC 8725. Every token names its key with `kid`; the verifier holds a
//!   set of keys, each bound to its algorithm (HS256 today), and never takes
//!   the algorithm from the token. `typ` is `at+jwt`, issuer and audience are
//!   required, time is passed in by the caller, with at most 30 s of leeway;
//! - [`generate_opaque_token`] and friends: 256-bit random tokens (refresh
//!   tokens, session identifiers) that are stored only as SHA-256 digests;
//! - [`MasterKey`]: secrets the store must read back (private signing keys)
//!   sealed with AES-256-GCM under a key derived from one master key, each
//!   bound to a caller-chosen context.
//!
//! What it is not: it does no I/O (no files, network, environment variables,
//! clock or logging) and depends on no other Portcullis crate. It does not
//! store anything, schedule key rotation, or decide token lifetimes; callers pass in keys,
//! policies and the current time. Its only side effect is reading the operating
//! system's random number generator.
//!
//! # Hashing and verifying a password
//!
//! ```
//! use portcullis_crypto::{Argon2Hasher, Argon2Policy, PasswordCheck};
//!
//! let policy = Argon2Policy::OWASP;
//! policy.validate(false)?; // refuse test-only costs in production
//! let hasher = Argon2Hasher::new(policy)?;
//!
//! let stored = hasher.hash(b"correct horse battery staple")?;
//! assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//! assert_eq!(
//!     hasher.verify(b"correct horse battery staple", &stored)?,
//!     PasswordCheck::Match { needs_rehash: false }
//! );
//! assert_eq!(hasher.verify(b"wrong", &stored)?, PasswordCheck::Mismatch);
//!
//! // For a login with an unknown username, spend the same time anyway.
//! hasher.verify_dummy(b"whatever was typed");
//! # Ok::<(), portcullis_crypto::CryptoError>(())
//! ```
//!
//! # Issuing and verifying an access token
//!
//! ```
//! use portcullis_crypto::{
//!     Hs256Key, JwtAccessClaims, JwtError, JwtSigner, JwtVerifier, generate_opaque_token,
//!     generate_signing_key,
//! };
//!
//! let secret = generate_signing_key(); // in practice: loaded from configuration
//! let signer = JwtSigner::hs256(&secret, "https://auth.example.com", "example-api")?;
//! // Accepts what the signer signs, and tokens from before key ids (no `kid`
//! // header) signed with the same secret.
//! let verifier =
//!     JwtVerifier::for_signer(&signer).with_legacy_hs256_key(&Hs256Key::new(&secret)?);
//!
//! let now = 1_700_000_000; // the caller's clock, in Unix seconds
//! let claims = JwtAccessClaims {
//!     iss: String::new(), // filled in by the signer
//!     aud: String::new(), // filled in by the signer
//!     sub: "user-42".to_owned(),
//!     exp: now + 900,
//!     iat: now,
//!     nbf: now,
//!     jti: generate_opaque_token(""),
//!     sid: "session-7".to_owned(),
//!     scope: "profile".to_owned(),
//! };
//! let token = signer.sign(&claims)?; // header: typ at+jwt, alg HS256, kid
//!
//! let verified = verifier.verify(&token, now + 60).expect("valid token");
//! assert_eq!(verified.sub, "user-42");
//! assert_eq!(verified.iss, "https://auth.example.com");
//! assert_eq!(verifier.verify(&token, now + 3600), Err(JwtError::Expired));
//! # Ok::<(), portcullis_crypto::CryptoError>(())
//! ```

mod error;
mod jwt;
mod password;
mod random;
mod sealing;

pub use error::{CryptoError, JwtError};
pub use jwt::{
    ACCESS_TOKEN_TYPE, GeneratedKeyPair, Hs256Key, JwtAccessClaims, JwtAlgorithm, JwtSigner,
    JwtSigningKey, JwtVerificationKey, JwtVerifier, MAX_LEEWAY_SECS, MIN_HS256_SECRET_BYTES,
    PublicJwk,
};
pub use password::{Argon2Hasher, Argon2Policy, Argon2Workspace, PasswordCheck};
pub use random::{constant_time_eq, generate_opaque_token, generate_signing_key, token_digest};
pub use sealing::{AuditMacKey, MASTER_KEY_BYTES, MasterKey, SealingError};

/// The README's examples, compiled and run as doc tests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
