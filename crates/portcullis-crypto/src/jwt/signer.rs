//! Signing access tokens with one key.

use std::fmt;

use jsonwebtoken::Header;

use super::{ACCESS_TOKEN_TYPE, Hs256Key, JwtAccessClaims, JwtSigningKey};
use crate::error::CryptoError;

/// Signs access tokens with one key, for one issuer and one audience.
///
/// Cheap to clone. `Debug` prints the key id, algorithm, issuer and audience,
/// never the key.
#[derive(Clone)]
pub struct JwtSigner {
    key: JwtSigningKey,
    header: Header,
    issuer: String,
    audience: String,
}

impl JwtSigner {
    /// Signs with `key`, putting `issuer` and `audience` into every token.
    #[must_use]
    pub fn new(key: JwtSigningKey, issuer: &str, audience: &str) -> Self {
        let mut header = Header::new(key.algorithm().header_algorithm());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(key.kid().to_owned());
        Self {
            key,
            header,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Signs with HS256 and `secret`, under the key id derived from it (see
    /// [`Hs256Key::kid`]).
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyTooShort`] if `secret` is shorter than
    /// [`MIN_HS256_SECRET_BYTES`](super::MIN_HS256_SECRET_BYTES).
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, CryptoError> {
        let key = Hs256Key::new(secret)?;
        Ok(Self::new(JwtSigningKey::hs256(&key), issuer, audience))
    }

    /// The key tokens are signed with; its id is in every token's header.
    #[must_use]
    pub fn signing_key(&self) -> &JwtSigningKey {
        &self.key
    }

    /// The `iss` put into every token.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` put into every token.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs `claims` with header `{"typ": "at+jwt", "alg": …, "kid": …}`,
    /// the algorithm and id being the signing key's.
    ///
    /// `iss` and `aud` are replaced by the signer's own; every other claim is
    /// signed as given.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Signing`] if serialising or signing fails.
    pub fn sign(&self, claims: &JwtAccessClaims) -> Result<String, CryptoError> {
        let claims = JwtAccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            ..claims.clone()
        };
        jsonwebtoken::encode(&self.header, &claims, self.key.encoding_key())
            .map_err(|error| CryptoError::Signing(error.to_string()))
    }
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("JwtSigner")
            .field("kid", &self.key.kid())
            .field("algorithm", &self.key.algorithm())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}
