//! Opaque random tokens (refresh tokens, session identifiers, API keys), their
//! stored digests, and random signing keys.
//!
//! An opaque token carries 256 bits from the operating system's CSPRNG, so it
//! cannot be guessed; the server stores only its SHA-256 digest, so a leaked
//! database does not yield usable tokens. A fast hash is enough here (unlike
//! passwords) because the input already has full entropy.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Number of random bytes in an opaque token and in a signing key.
const RANDOM_BYTES: usize = 32;

/// Returns 32 bytes (256 bits) from the OS CSPRNG (getrandom), encoded as
/// base64url without padding (43 characters), with `prefix` prepended (e.g.
/// `""` or `"pcl_"`).
///
/// # Panics
///
/// If the operating system's random number generator fails. There is no
/// meaningful fallback: a host without working randomness cannot run an
/// authentication server safely.
#[must_use]
pub fn generate_opaque_token(prefix: &str) -> String {
    let bytes = random_bytes();
    let mut token = String::with_capacity(prefix.len() + 43);
    token.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(bytes, &mut token);
    token
}

/// SHA-256 digest of a presented opaque token; what gets stored instead of the
/// token.
///
/// Hashes the whole string, prefix included. Compare digests with
/// [`constant_time_eq`].
#[must_use]
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 32 random bytes for a new HS256 signing key.
///
/// # Panics
///
/// If the operating system's random number generator fails (see
/// [`generate_opaque_token`]).
#[must_use]
pub fn generate_signing_key() -> [u8; 32] {
    random_bytes()
}

/// Constant-time equality (via `subtle`) for digests.
///
/// The time taken depends only on the lengths, never on where the contents
/// differ. Slices of different lengths are unequal.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn random_bytes() -> [u8; RANDOM_BYTES] {
    let mut bytes = [0_u8; RANDOM_BYTES];
    #[allow(
        clippy::expect_used,
        reason = "documented: an OS without randomness cannot run an auth server"
    )]
    getrandom::fill(&mut bytes)
        .expect("the operating system's random number generator failed (getrandom)");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_base64url(text: &str) -> bool {
        text.bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    }

    #[test]
    fn opaque_token_is_43_base64url_characters_after_the_prefix() {
        for prefix in ["", "pcl_"] {
            let token = generate_opaque_token(prefix);
            assert_eq!(token.len(), prefix.len() + 43, "{token}");
            let body = token.strip_prefix(prefix).unwrap();
            assert!(is_base64url(body), "{token}");
            assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        }
    }

    #[test]
    fn two_opaque_tokens_differ() {
        assert_ne!(generate_opaque_token(""), generate_opaque_token(""));
    }

    #[test]
    fn token_digest_is_deterministic_and_is_sha256() {
        let token = generate_opaque_token("pcl_");
        assert_eq!(token_digest(&token), token_digest(&token));
        assert_ne!(token_digest(&token), token_digest("pcl_other"));
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            token_digest("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "{:02x?}",
            token_digest("abc")
        );
    }

    #[test]
    fn two_signing_keys_differ() {
        assert_ne!(generate_signing_key(), generate_signing_key());
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        let digest = token_digest("a");
        assert!(constant_time_eq(&digest, &token_digest("a")));
        assert!(!constant_time_eq(&digest, &token_digest("b")));
        assert!(!constant_time_eq(&digest, &digest[..31]));
        assert!(constant_time_eq(&[], &[]));
    }
}
