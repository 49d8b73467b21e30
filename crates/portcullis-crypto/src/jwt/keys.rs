//! Keys, their algorithms and their ids.
//!
//! A key is always bound to one algorithm: the verifier takes the algorithm
//! from the key it looked up, never from the token header (RFC 8725 section
//! 3.1), so a token cannot talk the verifier into using a key the wrong way.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};

use super::MIN_HS256_SECRET_BYTES;
use super::asymmetric::PublicJwk;
use crate::error::CryptoError;

/// A signature algorithm a key is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// Ed25519 (RFC 8037): asymmetric; the public key is published.
    EdDsa,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 section 3.4): asymmetric, for
    /// resource servers whose libraries lack Ed25519.
    Es256,
    /// HMAC with SHA-256 (RFC 7518 section 3.2): one shared secret both
    /// signs and verifies.
    Hs256,
}

impl JwtAlgorithm {
    /// The `alg` header value this algorithm signs with and requires.
    pub(super) fn header_algorithm(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Hs256 => Algorithm::HS256,
        }
    }

    /// The JWS `alg` name: `EdDSA`, `ES256` or `HS256`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Hs256 => "HS256",
        }
    }
}

/// An HS256 secret of at least [`MIN_HS256_SECRET_BYTES`] bytes, with its key
/// id.
///
/// The key id is derived from the secret (see [`Hs256Key::kid`]), so every
/// node and every restart given the same secret agrees on it without storing
/// anything. The secret is zeroed when the key is dropped, and `Debug` prints
/// only the key id.
#[derive(Clone)]
pub struct Hs256Key {
    kid: String,
    secret: SecretSlice<u8>,
}

impl Hs256Key {
    /// Checks the length of `secret` and derives its key id.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyTooShort`] if `secret` is shorter than
    /// [`MIN_HS256_SECRET_BYTES`].
    pub fn new(secret: &[u8]) -> Result<Self, CryptoError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(CryptoError::KeyTooShort);
        }
        Ok(Self {
            kid: hs256_kid(secret),
            secret: SecretSlice::from(secret.to_vec()),
        })
    }

    /// The key id: base64url (no padding, 16 characters) of the first 12
    /// bytes of SHA-256 over `"portcullis hs256 kid v1\0"` followed by the
    /// secret.
    ///
    /// A one-way digest of a secret with at least 256 bits reveals nothing
    /// usable about it; the prefix keeps this digest from equalling any other
    /// digest of the same secret, and its version lets the derivation change
    /// without colliding with old ids. 96 bits keep ids of different secrets
    /// apart with certainty in practice.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

impl fmt::Debug for Hs256Key {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Hs256Key")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A key that signs access tokens: its id, its algorithm and the private
/// material, with the matching [`JwtVerificationKey`].
///
/// Cheap to clone. `Debug` prints the key id and algorithm only.
#[derive(Clone)]
pub struct JwtSigningKey {
    algorithm: JwtAlgorithm,
    encoding_key: EncodingKey,
    verification_key: JwtVerificationKey,
}

impl JwtSigningKey {
    pub(super) fn from_parts(
        algorithm: JwtAlgorithm,
        encoding_key: EncodingKey,
        verification_key: JwtVerificationKey,
    ) -> Self {
        Self {
            algorithm,
            encoding_key,
            verification_key,
        }
    }

    /// Signs with HS256 and `key`'s secret, under `key`'s id.
    #[must_use]
    pub fn hs256(key: &Hs256Key) -> Self {
        Self {
            algorithm: JwtAlgorithm::Hs256,
            encoding_key: EncodingKey::from_secret(key.secret.expose_secret()),
            verification_key: JwtVerificationKey::hs256(key),
        }
    }

    /// The id written into the `kid` header of every token this key signs.
    #[must_use]
    pub fn kid(&self) -> &str {
        self.verification_key.kid()
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// The key that verifies what this key signs (for HS256 the same
    /// secret), under the same id.
    #[must_use]
    pub fn verification_key(&self) -> &JwtVerificationKey {
        &self.verification_key
    }

    pub(super) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding_key
    }
}

impl fmt::Debug for JwtSigningKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("JwtSigningKey")
            .field("kid", &self.kid())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A key that verifies access tokens: its id, the one algorithm it accepts,
/// and the verifying material.
///
/// Cheap to clone. `Debug` prints the key id and algorithm only.
#[derive(Clone)]
pub struct JwtVerificationKey {
    kid: String,
    algorithm: JwtAlgorithm,
    decoding_key: DecodingKey,
    public_jwk: Option<PublicJwk>,
}

impl JwtVerificationKey {
    pub(super) fn from_parts(
        kid: String,
        algorithm: JwtAlgorithm,
        decoding_key: DecodingKey,
        public_jwk: Option<PublicJwk>,
    ) -> Self {
        Self {
            kid,
            algorithm,
            decoding_key,
            public_jwk,
        }
    }

    /// The public key as a JWK's key members, for publication; `None` for
    /// HS256, whose secret is never published.
    #[must_use]
    pub fn public_jwk(&self) -> Option<&PublicJwk> {
        self.public_jwk.as_ref()
    }

    /// Verifies HS256 tokens with `key`'s secret, under `key`'s id.
    #[must_use]
    pub fn hs256(key: &Hs256Key) -> Self {
        Self {
            kid: key.kid.clone(),
            algorithm: JwtAlgorithm::Hs256,
            decoding_key: DecodingKey::from_secret(key.secret.expose_secret()),
            public_jwk: None,
        }
    }

    /// The `kid` header value of the tokens this key verifies.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The only algorithm this key verifies with.
    #[must_use]
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding_key
    }
}

impl fmt::Debug for JwtVerificationKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("JwtVerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Domain separation for [`Hs256Key::kid`]: the version changes whenever the
/// derivation does.
const HS256_KID_CONTEXT: &[u8] = b"portcullis hs256 kid v1\0";

/// How many digest bytes a key id keeps.
const KID_DIGEST_BYTES: usize = 12;

fn hs256_kid(secret: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(HS256_KID_CONTEXT)
        .chain_update(secret)
        .finalize();
    URL_SAFE_NO_PAD.encode(&digest[..KID_DIGEST_BYTES])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn kid_is_sixteen_base64url_characters_of_a_pinned_derivation() {
        // Pinned: changing the derivation changes every deployment's key ids,
        // so tokens signed before an upgrade would stop verifying after it.
        // Computed independently (Python hashlib) from the documented recipe.
        assert_eq!(Hs256Key::new(SECRET).unwrap().kid(), "vfmlgbuANpgHSP__");
        assert_eq!(Hs256Key::new(&[7; 32]).unwrap().kid(), "XIeBHc2NBF9aJypO");
    }

    #[test]
    fn kid_is_the_same_for_the_same_secret_and_differs_between_secrets() {
        let first = Hs256Key::new(SECRET).unwrap();
        let again = Hs256Key::new(SECRET).unwrap();
        let other = Hs256Key::new(b"fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(first.kid(), again.kid());
        assert_ne!(first.kid(), other.kid());
    }

    #[test]
    fn kid_is_not_a_plain_digest_of_the_secret() {
        let plain = URL_SAFE_NO_PAD.encode(&Sha256::digest(SECRET)[..KID_DIGEST_BYTES]);
        assert_ne!(Hs256Key::new(SECRET).unwrap().kid(), plain);
    }

    #[test]
    fn secret_of_31_bytes_is_too_short() {
        assert!(matches!(
            Hs256Key::new(&[7; MIN_HS256_SECRET_BYTES - 1]),
            Err(CryptoError::KeyTooShort)
        ));
        assert!(Hs256Key::new(&[7; MIN_HS256_SECRET_BYTES]).is_ok());
    }

    #[test]
    fn signing_and_verification_keys_share_the_kid_and_algorithm() {
        let key = Hs256Key::new(SECRET).unwrap();
        let signing = JwtSigningKey::hs256(&key);
        assert_eq!(signing.kid(), key.kid());
        assert_eq!(signing.algorithm(), JwtAlgorithm::Hs256);
        assert_eq!(signing.verification_key().kid(), key.kid());
        assert_eq!(signing.verification_key().algorithm(), JwtAlgorithm::Hs256);
    }

    #[test]
    fn debug_of_keys_shows_the_kid_and_no_key_material() {
        let secret = [0xAB_u8; 32];
        let key = Hs256Key::new(&secret).unwrap();
        let signing = JwtSigningKey::hs256(&key);
        for debug in [
            format!("{key:?}"),
            format!("{signing:?}"),
            format!("{:?}", signing.verification_key()),
        ] {
            assert!(debug.contains(key.kid()), "{debug}");
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
}
