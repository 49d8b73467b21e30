//! Verifying access tokens against a set of keys.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;

use super::{
    ACCESS_TOKEN_TYPE, Hs256Key, JwtAccessClaims, JwtSigner, JwtVerificationKey, MAX_LEEWAY_SECS,
};
use crate::error::{CryptoError, JwtError};

/// Verifies access tokens for one issuer and one audience against a set of
/// keys, found by the `kid` header.
///
/// Each key is bound to its algorithm: a token is verified with the
/// algorithm of the key its `kid` names, and a header asking for any other
/// algorithm is refused (RFC 8725 section 3.1). A token whose `kid` names no
/// key is refused; a token without `kid` is refused unless a legacy key was
/// added with [`with_legacy_hs256_key`](Self::with_legacy_hs256_key).
///
/// Cheap to clone. `Debug` prints the key ids, algorithms, issuer and
/// audience, never a key.
#[derive(Clone)]
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    keys: BTreeMap<String, KeyCheck>,
    legacy_hs256_key: Option<KeyCheck>,
}

impl JwtVerifier {
    /// Accepts tokens signed with any of `keys` that carry `issuer` and
    /// `audience`. The leeway for `exp`/`nbf` is [`MAX_LEEWAY_SECS`].
    ///
    /// # Errors
    ///
    /// [`CryptoError::DuplicateKeyId`] if two of `keys` have the same id: a
    /// token naming it could not say which key it means.
    pub fn new(
        keys: impl IntoIterator<Item = JwtVerificationKey>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, CryptoError> {
        let mut by_kid = BTreeMap::new();
        for key in keys {
            match by_kid.entry(key.kid().to_owned()) {
                Entry::Occupied(entry) => {
                    return Err(CryptoError::DuplicateKeyId(entry.key().clone()));
                }
                Entry::Vacant(entry) => {
                    entry.insert(KeyCheck::new(key, issuer, audience));
                }
            }
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: by_kid,
            legacy_hs256_key: None,
        })
    }

    /// Accepts what `signer` signs: its verification key, issuer and
    /// audience.
    #[must_use]
    pub fn for_signer(signer: &JwtSigner) -> Self {
        let key = signer.signing_key().verification_key().clone();
        let (issuer, audience) = (signer.issuer(), signer.audience());
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: BTreeMap::from([(key.kid().to_owned(), KeyCheck::new(key, issuer, audience))]),
            legacy_hs256_key: None,
        }
    }

    /// Also accepts HS256 tokens without a `kid` header, verified with `key`.
    ///
    /// Tokens signed before key ids existed have no `kid`; with the secret
    /// that signed them they keep verifying until they expire, so an upgrade
    /// logs nobody out. Every other check applies to them unchanged, and a
    /// token that does carry a `kid` is never verified with this key.
    #[must_use]
    pub fn with_legacy_hs256_key(mut self, key: &Hs256Key) -> Self {
        let key = JwtVerificationKey::hs256(key);
        self.legacy_hs256_key = Some(KeyCheck::new(key, &self.issuer, &self.audience));
        self
    }

    /// Every key this verifier accepts by `kid`, in kid order (the legacy
    /// key, which has no kid of its own in tokens, is not among them).
    pub fn keys(&self) -> impl Iterator<Item = &JwtVerificationKey> {
        self.keys.values().map(|check| &check.key)
    }

    /// Verifies `token` at time `now_unix` (Unix seconds) and returns its
    /// claims.
    ///
    /// Checks, in order: the header (`typ` must be `at+jwt` or
    /// `application/at+jwt` in any case, no `crit`, `kid` must name a known
    /// key, or be absent if there is a legacy key, and `alg` must be that
    /// key's algorithm), the signature with that key, that all nine claims are
    /// present and well typed, `iss` and `aud`, then time:
    /// `exp + 30 > now_unix` and `nbf - 30 <= now_unix`.
    ///
    /// # Errors
    ///
    /// - [`JwtError::Malformed`] for any structural, header, key, signature
    ///   or claim problem;
    /// - [`JwtError::WrongIssuerOrAudience`] if `iss` or `aud` is not the
    ///   verifier's;
    /// - [`JwtError::Expired`] if the token is expired or not yet valid beyond
    ///   the leeway.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<JwtAccessClaims, JwtError> {
        // The header is checked before anything else so that a token of the
        // wrong kind is refused as such, whatever its claims say.
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if !is_access_token_type(header.typ.as_deref())
            // RFC 7515 section 4.1.11: extensions listed in `crit` must be
            // understood, and this verifier understands none.
            || header.crit.is_some()
        {
            return Err(JwtError::Malformed);
        }
        let check = match header.kid.as_deref() {
            Some(kid) => self.keys.get(kid),
            None => self.legacy_hs256_key.as_ref(),
        }
        .ok_or(JwtError::Malformed)?;
        // The key decides the algorithm. jsonwebtoken would refuse a mismatch
        // too (its `Validation` allows only the key's algorithm); refusing it
        // here does not depend on that.
        if header.alg != check.key.algorithm().header_algorithm() {
            return Err(JwtError::Malformed);
        }

        let claims = jsonwebtoken::decode::<JwtAccessClaims>(
            token,
            check.key.decoding_key(),
            &check.validation,
        )
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                JwtError::WrongIssuerOrAudience
            }
            ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => JwtError::Expired,
            _ => JwtError::Malformed,
        })?
        .claims;

        // jsonwebtoken has already checked these; checking again costs nothing
        // and does not depend on its `Validation` semantics.
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(JwtError::WrongIssuerOrAudience);
        }

        let not_expired = claims.exp.saturating_add(LEEWAY_SECS) > now_unix;
        let already_valid = claims.nbf.saturating_sub(LEEWAY_SECS) <= now_unix;
        if !not_expired || !already_valid {
            return Err(JwtError::Expired);
        }

        Ok(claims)
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<_> = self.keys.values().map(|check| &check.key).collect();
        formatter
            .debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &keys)
            .field("legacy_hs256_key", &self.legacy_hs256_key.is_some())
            .field("leeway_secs", &MAX_LEEWAY_SECS)
            .finish_non_exhaustive()
    }
}

/// [`MAX_LEEWAY_SECS`] as a signed number of seconds, to compare with claims.
pub(super) const LEEWAY_SECS: i64 = MAX_LEEWAY_SECS as i64;

/// The full media type form of [`ACCESS_TOKEN_TYPE`], also accepted in `typ`.
const ACCESS_TOKEN_MEDIA_TYPE: &str = "application/at+jwt";

/// One verification key with the jsonwebtoken checks that go with it.
#[derive(Clone)]
struct KeyCheck {
    key: JwtVerificationKey,
    validation: Validation,
}

impl KeyCheck {
    fn new(key: JwtVerificationKey, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(key.algorithm().header_algorithm());
        // jsonwebtoken's own time checks read the system clock; time is a
        // parameter of `verify` here, so they are off and done in `verify`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_aud = true;
        Self { key, validation }
    }
}

/// Whether a `typ` header names an access token. Media types compare
/// case-insensitively (RFC 8725 section 3.11, RFC 9068 section 4).
fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
            || typ.eq_ignore_ascii_case(ACCESS_TOKEN_MEDIA_TYPE)
    })
}
