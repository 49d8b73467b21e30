//! Access tokens (JWT) and opaque secrets behind the domain's token ports.

use portcullis_crypto::{JwtCodec, JwtError};
use portcullis_domain::ports::{AccessTokenSigner, OpaqueSecrets, TokenVerifier};
use portcullis_domain::{
    API_KEY_PREFIX, AccessTokenClaims, ApiKeyHash, RefreshTokenHash, ScopeSet, SessionId,
    TokenError, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// RFC 9068 access tokens and opaque refresh tokens behind the domain's
/// [`AccessTokenSigner`], [`TokenVerifier`] and [`OpaqueSecrets`] ports.
#[derive(Debug, Clone)]
pub struct JwtTokens {
    codec: Option<JwtCodec>,
}

impl JwtTokens {
    /// Wraps a configured codec.
    pub fn new(codec: JwtCodec) -> Self {
        Self { codec: Some(codec) }
    }

    /// Opaque tokens only: signing or verifying an access token fails. For
    /// processes that must never touch the signing key (the administration
    /// commands).
    pub fn without_access_tokens() -> Self {
        Self { codec: None }
    }
}

impl AccessTokenSigner for JwtTokens {
    fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        let Some(codec) = &self.codec else {
            return Err(TokenError::Signing(
                "this process has no signing key".to_owned(),
            ));
        };
        let issued_at = claims.issued_at.unix_timestamp();
        codec
            .encode(&portcullis_crypto::AccessTokenClaims {
                iss: codec.issuer().to_owned(),
                aud: codec.audience().to_owned(),
                sub: claims.user_id.to_string(),
                exp: claims.expires_at.unix_timestamp(),
                iat: issued_at,
                nbf: issued_at,
                jti: claims.token_id.to_string(),
                sid: claims.session_id.to_string(),
                scope: claims.scopes.to_string(),
            })
            .map_err(|e| TokenError::Signing(e.to_string()))
    }
}

impl OpaqueSecrets for JwtTokens {
    fn new_refresh_token(&self) -> (String, RefreshTokenHash) {
        let token = portcullis_crypto::generate_opaque_token("");
        let hash = self.hash_refresh_token(&token);
        (token, hash)
    }

    fn hash_refresh_token(&self, token: &str) -> RefreshTokenHash {
        RefreshTokenHash::from_digest(portcullis_crypto::token_digest(token).to_vec())
    }

    fn new_api_key(&self) -> (String, ApiKeyHash) {
        let key = portcullis_crypto::generate_opaque_token(API_KEY_PREFIX);
        let hash = self.hash_api_key(&key);
        (key, hash)
    }

    fn hash_api_key(&self, key: &str) -> ApiKeyHash {
        ApiKeyHash::from_digest(portcullis_crypto::token_digest(key).to_vec())
    }
}

impl TokenVerifier for JwtTokens {
    fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, TokenError> {
        let Some(codec) = &self.codec else {
            return Err(TokenError::Malformed);
        };
        let claims = codec
            .decode(token, now.unix_timestamp())
            .map_err(|error| match error {
                JwtError::Malformed => TokenError::Malformed,
                JwtError::WrongIssuerOrAudience => TokenError::WrongAudience,
                JwtError::Expired => TokenError::Expired,
            })?;
        let uuid = |value: &str| Uuid::parse_str(value).map_err(|_| TokenError::Malformed);
        let time = |value: i64| {
            OffsetDateTime::from_unix_timestamp(value).map_err(|_| TokenError::Malformed)
        };
        Ok(AccessTokenClaims {
            user_id: UserId::from_uuid(uuid(&claims.sub)?),
            session_id: SessionId::from_uuid(uuid(&claims.sid)?),
            scopes: ScopeSet::parse(&claims.scope).map_err(|_| TokenError::Malformed)?,
            token_id: uuid(&claims.jti)?,
            issued_at: time(claims.iat)?,
            expires_at: time(claims.exp)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn issued_access_tokens_verify_back_to_the_same_claims() {
        let codec = JwtCodec::new(&[7; 32], "portcullis", "portcullis").expect("codec");
        let tokens = JwtTokens::new(codec);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let claims = AccessTokenClaims {
            user_id: UserId::random(),
            session_id: SessionId::random(),
            scopes: ScopeSet::parse("profile admin").expect("scopes"),
            token_id: portcullis_domain::new_token_id(),
            issued_at: now,
            expires_at: now + Duration::from_secs(900),
        };
        let token = tokens.sign_access_token(&claims).expect("issue");
        assert_eq!(tokens.verify_access_token(&token, now), Ok(claims));
        let much_later = now + Duration::from_secs(3600);
        assert_eq!(
            tokens.verify_access_token(&token, much_later),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn api_keys_are_prefixed_well_formed_and_hashed() {
        let tokens = JwtTokens::new(JwtCodec::new(&[7; 32], "i", "a").expect("codec"));
        let (key, hash) = tokens.new_api_key();
        assert!(portcullis_domain::is_well_formed_api_key(&key), "{key}");
        assert_eq!(tokens.hash_api_key(&key), hash);
        assert_ne!(tokens.new_api_key().0, key);
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_as_their_digest() {
        let tokens = JwtTokens::new(JwtCodec::new(&[7; 32], "i", "a").expect("codec"));
        let (first, first_hash) = tokens.new_refresh_token();
        let (second, _) = tokens.new_refresh_token();
        assert_ne!(first, second);
        assert!(first.len() >= 43);
        assert_eq!(tokens.hash_refresh_token(&first), first_hash);
        // A SHA-256 digest, not the token itself.
        assert_eq!(first_hash.as_bytes().len(), 32);
        assert_ne!(first_hash.as_bytes(), first.as_bytes());
    }
}
