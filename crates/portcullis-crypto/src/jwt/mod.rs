//! JWT access tokens per RFC 9068 ("JWT Profile for OAuth 2.0 Access Tokens"),
//! hardened per RFC 8725 ("JWT Best Current Practices").
//!
//! Signing and verifying are separate types because they hold different
//! keys: a [`JwtSigner`] signs with exactly one [`JwtSigningKey`], while a
//! [`JwtVerifier`] accepts a set of [`JwtVerificationKey`]s, so that tokens
//! signed with a previous key keep verifying while a new one takes over.
//! Every token header names its key with `kid`; the verifier looks the key up
//! by that id and verifies with the algorithm bound to the key, never the one
//! the header asks for (RFC 8725 section 3.1).
//!
//! Three algorithms: EdDSA and ES256, whose key pairs come from
//! [`JwtAlgorithm::generate_key_pair`] and whose public keys are published
//! as [`PublicJwk`]s under their RFC 7638 thumbprints, and HS256 for
//! installs that keep a shared secret ([`Hs256Key`]).
//! The `typ` header is `at+jwt` so that an access token cannot be confused
//! with any other JWT signed with the same key (for example an ID token), and
//! verification takes the current time as a parameter so callers (and tests)
//! control the clock.

mod asymmetric;
mod claims;
mod keys;
mod signer;
mod verifier;

#[cfg(test)]
mod asymmetric_tests;
#[cfg(test)]
mod tests;

pub use asymmetric::{GeneratedKeyPair, PublicJwk};
pub use claims::JwtAccessClaims;
pub use keys::{Hs256Key, JwtAlgorithm, JwtSigningKey, JwtVerificationKey};
pub use signer::JwtSigner;
pub use verifier::JwtVerifier;

/// The `typ` header of an access token (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Allowed clock skew, in seconds, when checking `exp` and `nbf`.
pub const MAX_LEEWAY_SECS: u64 = 30;

/// Smallest accepted HS256 secret, in bytes: the size of the SHA-256 output
/// (RFC 7518 section 3.2). Shorter secrets are refused with
/// [`CryptoError::KeyTooShort`](crate::CryptoError::KeyTooShort).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
