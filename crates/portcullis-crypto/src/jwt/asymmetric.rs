//! Asymmetric keys (EdDSA with Ed25519, ES256 with P-256): generation from
//! aws-lc-rs, the public half as a JWK, and the RFC 7638 thumbprint that is
//! their key id.
//!
//! A private key travels as PKCS#8 DER (what aws-lc-rs generates and
//! jsonwebtoken signs with); a public key as its algorithm's raw form: 32
//! bytes for Ed25519, the 65-byte uncompressed point `04 || x || y` for
//! P-256.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};

use super::{JwtAlgorithm, JwtSigningKey, JwtVerificationKey};
use crate::error::CryptoError;

/// Bytes of a raw Ed25519 public key.
const ED25519_PUBLIC_KEY_BYTES: usize = 32;
/// Bytes of one P-256 coordinate.
const P256_COORDINATE_BYTES: usize = 32;
/// The prefix of an uncompressed elliptic-curve point (SEC 1).
const UNCOMPRESSED_POINT: u8 = 0x04;

/// The key members of a public JWK (RFC 7517): what resource servers need
/// to verify, and what the thumbprint is computed over. Every value is
/// base64url without padding where the RFCs say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    /// `OKP` (RFC 8037) or `EC`.
    pub kty: &'static str,
    /// `Ed25519` or `P-256`.
    pub crv: &'static str,
    /// The public key (OKP) or its x coordinate (EC).
    pub x: String,
    /// The y coordinate (EC only).
    pub y: Option<String>,
}

impl PublicJwk {
    /// The RFC 7638 thumbprint: SHA-256 over the required members in
    /// lexicographic order with no whitespace, base64url (43 characters).
    /// Stable for a key and collision-free in practice, so it is the key id.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        // The values are base64url and fixed names, so no JSON escaping is
        // ever needed: the canonical form can be written directly.
        let canonical = match &self.y {
            Some(y) => format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
                self.crv, self.kty, self.x, y
            ),
            None => format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
                self.crv, self.kty, self.x
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The JWK of a raw public key of `algorithm`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidKey`] if the bytes are not a public key of
    /// that shape, or `algorithm` is HS256.
    pub fn from_public_key(
        algorithm: JwtAlgorithm,
        public_key: &[u8],
    ) -> Result<Self, CryptoError> {
        match algorithm {
            JwtAlgorithm::EdDsa if public_key.len() == ED25519_PUBLIC_KEY_BYTES => Ok(Self {
                kty: "OKP",
                crv: "Ed25519",
                x: URL_SAFE_NO_PAD.encode(public_key),
                y: None,
            }),
            JwtAlgorithm::Es256
                if public_key.len() == 1 + 2 * P256_COORDINATE_BYTES
                    && public_key[0] == UNCOMPRESSED_POINT =>
            {
                let (x, y) = public_key[1..].split_at(P256_COORDINATE_BYTES);
                Ok(Self {
                    kty: "EC",
                    crv: "P-256",
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: Some(URL_SAFE_NO_PAD.encode(y)),
                })
            }
            _ => Err(CryptoError::InvalidKey(format!(
                "not a raw {} public key",
                algorithm.name()
            ))),
        }
    }
}

/// A new asymmetric key pair: the private key to seal and store, the
/// public key to publish, and the id both go by.
pub struct GeneratedKeyPair {
    /// EdDSA or ES256.
    pub algorithm: JwtAlgorithm,
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The raw public key.
    pub public_key: Vec<u8>,
    /// The private key, PKCS#8 DER; zeroed on drop.
    pub private_key_pkcs8: SecretSlice<u8>,
}

impl std::fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GeneratedKeyPair")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtAlgorithm {
    /// Generates a key pair from the system's random number generator
    /// (aws-lc-rs).
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidKey`] for HS256 (its secrets come from
    /// [`generate_signing_key`](crate::generate_signing_key)), or
    /// [`CryptoError::Signing`] if generation itself fails.
    pub fn generate_key_pair(self) -> Result<GeneratedKeyPair, CryptoError> {
        let random = SystemRandom::new();
        let failed = |_| CryptoError::Signing(format!("generating a {} key failed", self.name()));
        let pkcs8 = match self {
            Self::EdDsa => Ed25519KeyPair::generate_pkcs8(&random).map_err(failed)?,
            Self::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
                .map_err(failed)?,
            Self::Hs256 => {
                return Err(CryptoError::InvalidKey("HS256 has no key pair".to_owned()));
            }
        };
        let private_key_pkcs8 = SecretSlice::from(pkcs8.as_ref().to_vec());
        let public_key = public_key_of(self, private_key_pkcs8.expose_secret())?;
        let kid = PublicJwk::from_public_key(self, &public_key)?.thumbprint();
        Ok(GeneratedKeyPair {
            algorithm: self,
            kid,
            public_key,
            private_key_pkcs8,
        })
    }
}

impl JwtSigningKey {
    /// Signs with `algorithm` (EdDSA or ES256) and the PKCS#8 private key,
    /// under the thumbprint of its public key.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidKey`] if the bytes are not a PKCS#8 key of
    /// `algorithm`, or `algorithm` is HS256.
    pub fn from_pkcs8(algorithm: JwtAlgorithm, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let public_key = public_key_of(algorithm, pkcs8)?;
        let verification_key = JwtVerificationKey::from_public_key(algorithm, &public_key)?;
        let encoding_key = match algorithm {
            JwtAlgorithm::EdDsa => EncodingKey::from_ed_der(pkcs8),
            JwtAlgorithm::Es256 => EncodingKey::from_ec_der(pkcs8),
            JwtAlgorithm::Hs256 => unreachable_hs256()?,
        };
        Ok(Self::from_parts(algorithm, encoding_key, verification_key))
    }
}

impl JwtVerificationKey {
    /// Verifies `algorithm` (EdDSA or ES256) tokens with a raw public key,
    /// under its thumbprint.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidKey`] if the bytes are not a public key of
    /// `algorithm`, or `algorithm` is HS256.
    pub fn from_public_key(
        algorithm: JwtAlgorithm,
        public_key: &[u8],
    ) -> Result<Self, CryptoError> {
        let jwk = PublicJwk::from_public_key(algorithm, public_key)?;
        // jsonwebtoken's aws-lc backend verifies with the raw key for both
        // families (its "DER" constructors take the raw bytes).
        let decoding_key = match algorithm {
            JwtAlgorithm::EdDsa => DecodingKey::from_ed_der(public_key),
            JwtAlgorithm::Es256 => DecodingKey::from_ec_der(public_key),
            JwtAlgorithm::Hs256 => unreachable_hs256()?,
        };
        Ok(Self::from_parts(
            jwk.thumbprint(),
            algorithm,
            decoding_key,
            Some(jwk),
        ))
    }
}

/// The raw public key of a PKCS#8 private key, checked by parsing it.
fn public_key_of(algorithm: JwtAlgorithm, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let rejected =
        |_| CryptoError::InvalidKey(format!("not a PKCS#8 {} private key", algorithm.name()));
    match algorithm {
        JwtAlgorithm::EdDsa => Ok(Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(rejected)?
            .public_key()
            .as_ref()
            .to_vec()),
        JwtAlgorithm::Es256 => Ok(EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
        )
        .map_err(rejected)?
        .public_key()
        .as_ref()
        .to_vec()),
        JwtAlgorithm::Hs256 => unreachable_hs256(),
    }
}

fn unreachable_hs256<T>() -> Result<T, CryptoError> {
    Err(CryptoError::InvalidKey(
        "HS256 keys are secrets, not key pairs".to_owned(),
    ))
}
