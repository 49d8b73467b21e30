//! Access tokens (JWT) and opaque secrets behind the domain's token ports.

use portcullis_crypto::{JwtAccessClaims, JwtError, JwtSigner, JwtVerifier};
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
    access_tokens: Option<AccessTokens>,
}

/// The signer and verifier go together: a process that signs also verifies.
#[derive(Debug, Clone)]
struct AccessTokens {
    signer: JwtSigner,
    verifier: JwtVerifier,
}

impl JwtTokens {
    /// Signs access tokens with `signer` and accepts those `verifier`
    /// accepts (which should include what `signer` signs, see
    /// [`JwtVerifier::for_signer`]).
    pub fn new(signer: JwtSigner, verifier: JwtVerifier) -> Self {
        Self {
            access_tokens: Some(AccessTokens { signer, verifier }),
        }
    }

    /// Opaque tokens only: signing or verifying an access token fails. For
    /// processes that must never touch the signing key (the administration
    /// commands).
    pub fn without_access_tokens() -> Self {
        Self {
            access_tokens: None,
        }
    }
}

impl AccessTokenSigner for JwtTokens {
    fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        let Some(AccessTokens { signer, .. }) = &self.access_tokens else {
            return Err(TokenError::Signing(
                "this process has no signing key".to_owned(),
            ));
        };
        let issued_at = claims.issued_at.unix_timestamp();
        signer
            .sign(&JwtAccessClaims {
                iss: signer.issuer().to_owned(),
                aud: signer.audience().to_owned(),
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
        let Some(AccessTokens { verifier, .. }) = &self.access_tokens else {
            return Err(TokenError::Malformed);
        };
        let claims = verifier
            .verify(token, now.unix_timestamp())
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

    fn signer(secret: &[u8]) -> JwtSigner {
        JwtSigner::hs256(secret, "portcullis", "portcullis").expect("32-byte key")
    }

    fn tokens() -> JwtTokens {
        let signer = signer(&[7; 32]);
        let verifier = JwtVerifier::for_signer(&signer);
        JwtTokens::new(signer, verifier)
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
    }

    fn claims(now: OffsetDateTime) -> AccessTokenClaims {
        AccessTokenClaims {
            user_id: UserId::random(),
            session_id: SessionId::random(),
            scopes: ScopeSet::parse("profile admin").expect("scopes"),
            token_id: portcullis_domain::new_token_id(),
            issued_at: now,
            expires_at: now + Duration::from_secs(900),
        }
    }

    #[test]
    fn issued_access_tokens_verify_back_to_the_same_claims() {
        let tokens = tokens();
        let claims = claims(now());
        let token = tokens.sign_access_token(&claims).expect("issue");
        assert_eq!(tokens.verify_access_token(&token, now()), Ok(claims));
        let much_later = now() + Duration::from_secs(3600);
        assert_eq!(
            tokens.verify_access_token(&token, much_later),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn access_tokens_from_a_key_the_verifier_lacks_are_malformed() {
        let stranger = signer(&[8; 32]);
        let verifier = JwtVerifier::for_signer(&signer(&[7; 32]));
        let tokens = JwtTokens::new(stranger, verifier);
        let token = tokens.sign_access_token(&claims(now())).expect("issue");
        assert_eq!(
            tokens.verify_access_token(&token, now()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn without_access_tokens_neither_signs_nor_verifies() {
        let without = JwtTokens::without_access_tokens();
        let claims = claims(now());
        assert!(matches!(
            without.sign_access_token(&claims),
            Err(TokenError::Signing(_))
        ));
        let token = tokens().sign_access_token(&claims).expect("issue");
        assert_eq!(
            without.verify_access_token(&token, now()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn api_keys_are_prefixed_well_formed_and_hashed() {
        let tokens = tokens();
        let (key, hash) = tokens.new_api_key();
        assert!(portcullis_domain::is_well_formed_api_key(&key), "{key}");
        assert_eq!(tokens.hash_api_key(&key), hash);
        assert_ne!(tokens.new_api_key().0, key);
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_as_their_digest() {
        let tokens = tokens();
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
