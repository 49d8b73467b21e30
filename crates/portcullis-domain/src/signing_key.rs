//! Access-token signing keys as the store keeps them, and their life:
//! `next` (published, not yet signing) → `current` (signs; exactly one) →
//! `retired` (verifies only, until every token it signed has expired) →
//! deleted.
//!
//! The domain sees keys as records: the public key in the raw form its
//! algorithm defines and the private key sealed by the application's master
//! key. Generating, sealing and using them is the adapters' business.

use std::fmt;

use time::OffsetDateTime;

use crate::error::FieldError;

/// The longest key id accepted: an RFC 7638 SHA-256 thumbprint is 43
/// characters; room is left for other schemes.
const MAX_KEY_ID_CHARS: usize = 64;

/// A JWS algorithm Portcullis signs access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// Ed25519 (RFC 8037), the default.
    EdDsa,
    /// ECDSA on P-256 with SHA-256, for resource servers without Ed25519.
    Es256,
    /// HMAC-SHA-256 with a shared secret: v1 installs only; never published.
    Hs256,
}

impl SigningAlgorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Hs256 => "HS256",
        }
    }

    /// The algorithm named exactly as JWS names it (`EdDSA`, `ES256`,
    /// `HS256`).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::EdDsa, Self::Es256, Self::Hs256]
            .into_iter()
            .find(|algorithm| algorithm.as_str() == name)
    }

    /// Whether resource servers can verify it from a published public key.
    pub fn is_asymmetric(self) -> bool {
        !matches!(self, Self::Hs256)
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key id (`kid`): 1–64 characters of the base64url alphabet, so it is
/// safe in a JWS header, a URL and a log line alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Checks the shape; the value is whatever the key's scheme derived.
    pub fn parse(kid: &str) -> Result<Self, FieldError> {
        let well_formed = !kid.is_empty()
            && kid.len() <= MAX_KEY_ID_CHARS
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if well_formed {
            Ok(Self(kid.to_owned()))
        } else {
            Err(FieldError::new(
                "kid",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
            ))
        }
    }

    /// The id as it appears in token headers and the JWKS.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published so that resource servers know it before it signs.
    Next,
    /// Signs every new access token. Exactly one key is current.
    Current,
    /// No longer signs; verifies until `retires_at`, then is deleted.
    Retired,
}

impl KeyState {
    /// The name used in listings and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Retired => "retired",
        }
    }

    /// The state named by [`KeyState::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Next, Self::Current, Self::Retired]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private key sealed by the master key: opaque bytes to everything but
/// the adapter that sealed them. `Debug` prints their length only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPrivateKey(Vec<u8>);

impl SealedPrivateKey {
    /// Wraps what the sealing adapter produced.
    pub fn from_sealed(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The sealed bytes, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SealedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedPrivateKey({} bytes)", self.0.len())
    }
}

/// One signing key as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// Its id, in every token it signs.
    pub kid: KeyId,
    /// What it signs with; a verifier pins it, whatever a token's header says.
    pub algorithm: SigningAlgorithm,
    /// Where it is in its life.
    pub state: KeyState,
    /// When it was made (and, for an asymmetric key, first published).
    pub created_at: OffsetDateTime,
    /// When it began signing (current, retired), or the earliest time it
    /// may (next: its creation plus the publish-ahead time).
    pub signs_from: OffsetDateTime,
    /// For a retired key, when every token it signed has expired: it stops
    /// verifying and is deleted then. `None` for a key that still signs or
    /// will.
    pub retires_at: Option<OffsetDateTime>,
    /// The public key in its algorithm's raw form (Ed25519: 32 bytes;
    /// P-256: the 65-byte uncompressed point); empty for HS256.
    pub public_key: Vec<u8>,
    /// The private key (or HS256 secret), sealed.
    pub sealed_private_key: SealedPrivateKey,
}

/// One rotation: `current` retires, the `next` key starts signing, and
/// `new_next` is published in its place.
#[derive(Debug, Clone)]
pub struct KeyRotation {
    /// The key the caller saw as current. The rotation happens only if it
    /// still is, so that of several nodes rotating at once one does.
    pub current: KeyId,
    /// The key published next, in state [`KeyState::Next`].
    pub new_next: StoredSigningKey,
    /// When the rotation happens: the promoted key signs from then.
    pub now: OffsetDateTime,
    /// When the retiring key stops verifying: `now` plus the access-token
    /// lifetime and the verification leeway.
    pub retires_at: OffsetDateTime,
}

/// What [`SigningKeyStore::rotate_signing_keys`](crate::ports::SigningKeyStore::rotate_signing_keys)
/// did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationOutcome {
    /// This call rotated.
    Rotated,
    /// The expected key was no longer current (another caller rotated
    /// first); nothing changed.
    Superseded,
}

/// A public key as a JWKS publishes it (RFC 7517, RFC 8037): the key
/// members, already base64url where the RFCs say so. Never private
/// material, never an HS256 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// `kid`.
    pub kid: KeyId,
    /// `alg`: EdDSA or ES256.
    pub algorithm: SigningAlgorithm,
    /// `kty`: `OKP` or `EC`.
    pub kty: String,
    /// `crv`: `Ed25519` or `P-256`.
    pub crv: String,
    /// `x`.
    pub x: String,
    /// `y` (EC only).
    pub y: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_and_states_round_trip_through_their_names() {
        for algorithm in [
            SigningAlgorithm::EdDsa,
            SigningAlgorithm::Es256,
            SigningAlgorithm::Hs256,
        ] {
            assert_eq!(SigningAlgorithm::parse(algorithm.as_str()), Some(algorithm));
        }
        assert_eq!(SigningAlgorithm::parse("eddsa"), None);
        assert_eq!(SigningAlgorithm::parse("none"), None);
        assert!(!SigningAlgorithm::Hs256.is_asymmetric());
        for state in [KeyState::Next, KeyState::Current, KeyState::Retired] {
            assert_eq!(KeyState::parse(state.as_str()), Some(state));
        }
        assert_eq!(KeyState::parse("deleted"), None);
    }

    #[test]
    fn a_key_id_is_base64url_and_at_most_64_characters() {
        assert!(KeyId::parse("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs").is_ok());
        assert!(KeyId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "kid\n", "é", &"a".repeat(65)] {
            assert!(KeyId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_sealed_key_debug_shows_only_its_length() {
        let sealed = SealedPrivateKey::from_sealed(b"ciphertext".to_vec());
        assert_eq!(format!("{sealed:?}"), "SealedPrivateKey(10 bytes)");
    }
}
