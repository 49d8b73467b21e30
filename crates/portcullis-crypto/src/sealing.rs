//! Secrets the store must be able to read back (private signing keys, later
//! TOTP seeds), sealed at rest under one master key.
//!
//! The master key is never used directly: the sealing key is derived from it
//! with HKDF-SHA256 under a fixed label, so later uses of the same master key
//! (the audit log's MAC key) get independent keys. Sealing is AES-256-GCM
//! with a fresh random 96-bit nonce per seal, stored in front of the
//! ciphertext; a few thousand seals per deployment stay far below the 2^32
//! random nonces one GCM key tolerates.
//!
//! Every seal is bound to a *context* (associated data) that the caller
//! chooses, such as `b"signing-key:<kid>"`: a sealed value copied into
//! another row does not open there, so rows cannot be swapped in the
//! database without detection.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretSlice, SecretString};

use crate::CryptoError;

/// Bytes in a master key (256 bits).
pub const MASTER_KEY_BYTES: usize = 32;

/// The first byte of every sealed value: the format, so that a later change
/// of algorithm can still open what this one sealed.
const SEALED_FORMAT_V1: u8 = 1;

/// HKDF label of the sealing key; changing it makes every sealed value
/// unreadable.
const SEALING_KEY_LABEL: &[u8] = b"portcullis sealing key v1";

/// HKDF label of the audit log's MAC key; changing it makes every stored
/// audit chain fail verification.
const AUDIT_MAC_KEY_LABEL: &[u8] = b"portcullis audit-log mac key v1";

/// The key every sealed secret of a deployment depends on. Its `Debug`
/// prints nothing of it.
pub struct MasterKey {
    bytes: SecretBox<[u8; MASTER_KEY_BYTES]>,
}

/// Why a sealed value did not open, or a master key did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealingError {
    /// The master key's text is not 32 bytes in base64url.
    #[error("a master key is 32 bytes, written as 43 characters of base64url")]
    MalformedMasterKey,
    /// Wrong master key, another context, altered bytes, or not a sealed
    /// value at all: AES-GCM cannot tell these apart, and neither can we.
    #[error("the sealed value does not open with this master key and context")]
    Unsealable,
}

impl MasterKey {
    /// A new master key from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails (see
    /// [`generate_opaque_token`](crate::generate_opaque_token)).
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0_u8; MASTER_KEY_BYTES];
        #[allow(
            clippy::expect_used,
            reason = "documented: an OS without randomness cannot run an auth server"
        )]
        getrandom::fill(&mut bytes)
            .expect("the operating system's random number generator failed (getrandom)");
        Self {
            bytes: SecretBox::new(Box::new(bytes)),
        }
    }

    /// Parses the text form written by [`MasterKey::encode`]; surrounding
    /// whitespace (a trailing newline in a key file) is ignored.
    ///
    /// # Errors
    ///
    /// [`SealingError::MalformedMasterKey`] for anything but 32 bytes in
    /// base64url without padding.
    pub fn parse(text: &str) -> Result<Self, SealingError> {
        let decoded = SecretSlice::from(
            URL_SAFE_NO_PAD
                .decode(text.trim())
                .map_err(|_| SealingError::MalformedMasterKey)?,
        );
        let bytes: [u8; MASTER_KEY_BYTES] = decoded
            .expose_secret()
            .try_into()
            .map_err(|_| SealingError::MalformedMasterKey)?;
        Ok(Self {
            bytes: SecretBox::new(Box::new(bytes)),
        })
    }

    /// The text form: 43 characters of base64url, what a key file holds.
    #[must_use]
    pub fn encode(&self) -> SecretString {
        SecretString::from(URL_SAFE_NO_PAD.encode(self.bytes.expose_secret()))
    }

    /// Seals `plaintext` bound to `context`: `[format][nonce][ciphertext][tag]`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Sealing`] if AES-GCM fails, which only a broken random
    /// number generator causes.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.sealing_key()?;
        let mut in_out = plaintext.to_vec();
        let nonce = key
            .seal_in_place_append_tag(Aad::from(context), &mut in_out)
            .map_err(|_| CryptoError::Sealing)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_FORMAT_V1);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens what [`MasterKey::seal`] sealed under the same context.
    ///
    /// # Errors
    ///
    /// [`SealingError::Unsealable`] for a wrong master key, another context,
    /// altered or truncated bytes, or an unknown format.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<SecretSlice<u8>, SealingError> {
        let Some((&SEALED_FORMAT_V1, rest)) = sealed.split_first() else {
            return Err(SealingError::Unsealable);
        };
        if rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealingError::Unsealable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealingError::Unsealable)?;
        let key = self.sealing_key().map_err(|_| SealingError::Unsealable)?;
        // The buffer holds the plaintext once opened: it goes into a secret
        // that zeroes it on drop, also when opening fails half-way.
        let mut in_out = SecretSlice::from(ciphertext.to_vec());
        let length = key
            .open_in_place(nonce, Aad::from(context), in_out.expose_secret_mut())
            .map_err(|_| SealingError::Unsealable)?
            .len();
        Ok(SecretSlice::from(in_out.expose_secret()[..length].to_vec()))
    }

    /// The audit log's MAC key: HMAC-SHA256 under a key derived from this
    /// master key with its own HKDF label, independent of the sealing key.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Sealing`] if the derivation fails (it does not for a
    /// 32-byte key; the error is aws-lc-rs's to report).
    pub fn audit_mac_key(&self) -> Result<AuditMacKey, CryptoError> {
        let mut key_bytes = SecretBox::new(Box::new([0_u8; 32]));
        Salt::new(HKDF_SHA256, &[])
            .extract(self.bytes.expose_secret())
            .expand(&[AUDIT_MAC_KEY_LABEL], HKDF_SHA256)
            .and_then(|okm| okm.fill(key_bytes.expose_secret_mut()))
            .map_err(|_| CryptoError::Sealing)?;
        Ok(AuditMacKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes.expose_secret()),
        })
    }

    fn sealing_key(&self) -> Result<RandomizedNonceKey, CryptoError> {
        let mut key_bytes = SecretBox::new(Box::new([0_u8; 32]));
        Salt::new(HKDF_SHA256, &[])
            .extract(self.bytes.expose_secret())
            .expand(&[SEALING_KEY_LABEL], HKDF_SHA256)
            .and_then(|okm| okm.fill(key_bytes.expose_secret_mut()))
            .map_err(|_| CryptoError::Sealing)?;
        RandomizedNonceKey::new(&AES_256_GCM, key_bytes.expose_secret())
            .map_err(|_| CryptoError::Sealing)
    }
}

/// HMAC-SHA256 with the audit log's key (see [`MasterKey::audit_mac_key`]).
/// Its `Debug` prints nothing of it.
#[derive(Clone)]
pub struct AuditMacKey {
    key: hmac::Key,
}

impl AuditMacKey {
    /// The 32-byte HMAC-SHA256 of `message`.
    #[must_use]
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.key, message);
        let mut mac = [0_u8; 32];
        mac.copy_from_slice(tag.as_ref());
        mac
    }
}

impl fmt::Debug for AuditMacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditMacKey([redacted])")
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_context() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"signing-key:a", b"private key bytes").unwrap();
        let opened = key.open(b"signing-key:a", &sealed).unwrap();
        assert_eq!(opened.expose_secret(), b"private key bytes");
    }

    #[test]
    fn the_plaintext_appears_nowhere_in_the_sealed_value() {
        let key = MasterKey::generate();
        let plaintext = b"0123456789abcdef0123456789abcdef";
        let sealed = key.seal(b"c", plaintext).unwrap();
        assert!(
            !sealed
                .windows(8)
                .any(|window| plaintext.windows(8).any(|p| p == window))
        );
        assert_eq!(sealed.len(), 1 + NONCE_LEN + plaintext.len() + 16);
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let key = MasterKey::generate();
        assert_ne!(
            key.seal(b"c", b"same").unwrap(),
            key.seal(b"c", b"same").unwrap()
        );
    }

    #[test]
    fn another_master_key_does_not_open_it() {
        let sealed = MasterKey::generate().seal(b"c", b"secret").unwrap();
        assert_eq!(
            MasterKey::generate().open(b"c", &sealed).map(|_| ()),
            Err(SealingError::Unsealable)
        );
    }

    #[test]
    fn another_context_does_not_open_it() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"signing-key:a", b"secret").unwrap();
        assert_eq!(
            key.open(b"signing-key:b", &sealed).map(|_| ()),
            Err(SealingError::Unsealable)
        );
    }

    #[test]
    fn every_altered_or_truncated_byte_is_refused() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"c", b"secret").unwrap();
        for index in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[index] ^= 0x01;
            assert!(key.open(b"c", &altered).is_err(), "byte {index} altered");
            assert!(key.open(b"c", &sealed[..index]).is_err(), "cut at {index}");
        }
    }

    #[test]
    fn the_text_form_round_trips_and_bad_text_is_refused() {
        let key = MasterKey::generate();
        let text = key.encode();
        assert_eq!(text.expose_secret().len(), 43);
        let parsed = MasterKey::parse(&format!("{}\n", text.expose_secret())).unwrap();
        let sealed = key.seal(b"c", b"secret").unwrap();
        assert_eq!(
            parsed.open(b"c", &sealed).unwrap().expose_secret(),
            b"secret"
        );

        for bad in [
            "",
            "short",
            &"A".repeat(44),
            &"+".repeat(43),
            &format!("{}==", text.expose_secret()),
        ] {
            assert_eq!(
                MasterKey::parse(bad).map(|_| ()),
                Err(SealingError::MalformedMasterKey),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_audit_key_is_stable_per_master_key_and_independent_of_others() {
        let key = MasterKey::generate();
        let again = MasterKey::parse(key.encode().expose_secret()).unwrap();
        let mac = key.audit_mac_key().unwrap().mac(b"event");
        assert_eq!(mac, again.audit_mac_key().unwrap().mac(b"event"));
        assert_ne!(mac, key.audit_mac_key().unwrap().mac(b"event!"));
        let other = MasterKey::generate();
        assert_ne!(mac, other.audit_mac_key().unwrap().mac(b"event"));
        assert_eq!(
            format!("{:?}", key.audit_mac_key().unwrap()),
            "AuditMacKey([redacted])"
        );
    }

    #[test]
    fn debug_prints_nothing_of_the_key() {
        let key = MasterKey::generate();
        let debug = format!("{key:?}");
        assert_eq!(debug, "MasterKey([redacted])");
        assert!(!debug.contains(key.encode().expose_secret()));
    }
}
