//! Access tokens (JWT) and opaque secrets behind the domain's token ports.

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use portcullis_crypto::{JwtAccessClaims, JwtAlgorithm, JwtError, JwtSigner, JwtVerifier};
use portcullis_domain::ports::{AccessTokenSigner, KeyRing, OpaqueSecrets, TokenVerifier};
use portcullis_domain::{
    API_KEY_PREFIX, AccessTokenClaims, ApiKeyHash, KeyError, KeyId, PublishedKey, RefreshTokenHash,
    ScopeSet, SessionId, SigningAlgorithm, TokenError, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// RFC 9068 access tokens and opaque refresh tokens behind the domain's
/// [`AccessTokenSigner`], [`TokenVerifier`] and [`OpaqueSecrets`] ports.
///
/// Clones share one key set: [`replace`](Self::replace) swaps signer and
/// verifier for every clone at once (a key rotation), while a request
/// already holding the old set finishes with it.
#[derive(Debug, Clone)]
pub struct JwtTokens {
    access_tokens: Option<Arc<RwLock<Arc<AccessTokens>>>>,
}

/// The signer and verifier go together: a process that signs also verifies.
#[derive(Debug)]
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
            access_tokens: Some(Arc::new(RwLock::new(Arc::new(AccessTokens {
                signer,
                verifier,
            })))),
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

    /// Signs with `signer` and verifies with `verifier` from now on, in
    /// every clone. Without access tokens, does nothing.
    pub fn replace(&self, signer: JwtSigner, verifier: JwtVerifier) {
        if let Some(shared) = &self.access_tokens {
            *shared.write().unwrap_or_else(PoisonError::into_inner) =
                Arc::new(AccessTokens { signer, verifier });
        }
    }

    /// The public keys of the verifier's asymmetric keys, as a JWKS lists
    /// them; HS256 keys are never among them.
    pub fn published_keys(&self) -> Vec<PublishedKey> {
        let Some(current) = self.current() else {
            return Vec::new();
        };
        current
            .verifier
            .keys()
            .filter_map(|key| {
                let jwk = key.public_jwk()?;
                let algorithm = match key.algorithm() {
                    JwtAlgorithm::EdDsa => SigningAlgorithm::EdDsa,
                    JwtAlgorithm::Es256 => SigningAlgorithm::Es256,
                    _ => return None,
                };
                Some(PublishedKey {
                    kid: KeyId::parse(key.kid()).ok()?,
                    algorithm,
                    kty: jwk.kty.to_owned(),
                    crv: jwk.crv.to_owned(),
                    x: jwk.x.clone(),
                    y: jwk.y.clone(),
                })
            })
            .collect()
    }

    /// The `iss` and `aud` tokens are signed with, if this process signs.
    pub fn issuer_and_audience(&self) -> Option<(String, String)> {
        self.current().map(|current| {
            (
                current.signer.issuer().to_owned(),
                current.signer.audience().to_owned(),
            )
        })
    }

    fn current(&self) -> Option<Arc<AccessTokens>> {
        self.access_tokens.as_ref().map(|shared| {
            shared
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }
}

/// Keys fixed at start (HS256 from `PORTCULLIS_JWT_SECRET`): reloading
/// finds nothing new.
#[async_trait]
impl KeyRing for JwtTokens {
    fn published_keys(&self) -> Vec<PublishedKey> {
        JwtTokens::published_keys(self)
    }

    async fn reload(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

impl AccessTokenSigner for JwtTokens {
    fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        let Some(current) = self.current() else {
            return Err(TokenError::Signing(
                "this process has no signing key".to_owned(),
            ));
        };
        let signer = &current.signer;
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
        let Some(current) = self.current() else {
            return Err(TokenError::Malformed);
        };
        let claims = current
            .verifier
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
