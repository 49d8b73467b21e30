//! Error types of this crate.
//!
//! Two enums, because their callers differ: [`CryptoError`] reports a setup or
//! internal failure (a bad policy, a short key, a duplicate key id, a corrupt stored hash), which is
//! the operator's problem; [`JwtError`] reports why a presented access token was
//! refused, which is the client's problem and is deliberately coarse so that a
//! response built from it tells an attacker nothing useful.

/// A failure to configure or perform a cryptographic operation.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The argon2 parameters are rejected by argon2 itself, or are below the
    /// secure minimum and insecure parameters were not explicitly allowed.
    #[error("invalid argon2 parameters: {0}")]
    InvalidPolicy(String),
    /// An HS256 secret shorter than
    /// [`MIN_HS256_SECRET_BYTES`](crate::MIN_HS256_SECRET_BYTES) (32 bytes,
    /// 256 bits) was supplied.
    #[error("signing key must be at least {} bytes", crate::MIN_HS256_SECRET_BYTES)]
    KeyTooShort,
    /// Two verification keys given to one verifier have the same key id.
    #[error("two verification keys have the key id {0:?}")]
    DuplicateKeyId(String),
    /// Computing a password hash failed (for example, out of memory or a failing
    /// random number generator while drawing the salt).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A stored password hash is not a PHC string this crate can verify.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// Signing an access token failed.
    #[error("token signing failed: {0}")]
    Signing(String),
    /// Key material that is not a key of the algorithm it was given for.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// AES-GCM sealing failed (only a failing random number generator does
    /// that).
    #[error("sealing a secret failed")]
    Sealing,
}

/// Why a presented access token was refused.
///
/// The variants are coarse on purpose: callers map all of them to the same
/// `401` response and may log the variant, but nothing finer (such as "the
/// signature was wrong" versus "the header was wrong") is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Bad structure, bad signature, a `kid` naming no known key (or none
    /// where one is required), an `alg` other than that key's, a `typ` header
    /// other than `at+jwt`, or a missing or ill-typed claim.
    #[error("malformed token")]
    Malformed,
    /// The signature is valid but `iss` or `aud` is not the verifier's.
    #[error("wrong issuer or audience")]
    WrongIssuerOrAudience,
    /// `exp` has passed, or `nbf` has not yet come, beyond the allowed leeway.
    #[error("token expired or not yet valid")]
    Expired,
}
