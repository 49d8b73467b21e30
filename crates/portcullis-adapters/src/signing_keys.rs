//! The signing keys of a deployment, held by every node: opened from the
//! store with the master key, swapped in when they change.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_crypto::{
    Hs256Key, JwtAlgorithm, JwtSigner, JwtSigningKey, JwtVerificationKey, JwtVerifier, MasterKey,
};
use portcullis_domain::ports::{Clock, KeyRing, SigningKeyStore};
use portcullis_domain::{
    GeneratedKey, KeyError, KeyGenerator, KeyId, KeyState, PublishedKey, SealedPrivateKey,
    SigningAlgorithm, StoredSigningKey,
};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::JwtTokens;

/// The associated data every sealed signing key is bound to: its kid, so a
/// sealed key copied into another row does not open there.
fn sealing_context(kid: &str) -> Vec<u8> {
    [b"portcullis signing key ".as_slice(), kid.as_bytes()].concat()
}

fn jwt_algorithm(algorithm: SigningAlgorithm) -> JwtAlgorithm {
    match algorithm {
        SigningAlgorithm::EdDsa => JwtAlgorithm::EdDsa,
        SigningAlgorithm::Es256 => JwtAlgorithm::Es256,
        SigningAlgorithm::Hs256 => JwtAlgorithm::Hs256,
    }
}

/// Makes keys with aws-lc-rs (through crypto) and seals their private
/// halves with the master key.
#[derive(Clone)]
pub struct SealingKeyGenerator {
    master_key: Arc<MasterKey>,
}

impl SealingKeyGenerator {
    /// Seals what it makes with `master_key`.
    pub fn new(master_key: Arc<MasterKey>) -> Self {
        Self { master_key }
    }

    /// The v1 HS256 secret as a key to install retired: sealed like the
    /// others, under its derived kid.
    ///
    /// # Errors
    ///
    /// [`KeyError::Generation`] if the secret is too short or sealing fails.
    pub fn hs256_key(&self, secret: &[u8]) -> Result<GeneratedKey, KeyError> {
        let key = Hs256Key::new(secret).map_err(generation)?;
        let kid = KeyId::parse(key.kid()).map_err(|error| KeyError::Generation(error.message))?;
        let sealed = self
            .master_key
            .seal(&sealing_context(kid.as_str()), secret)
            .map_err(generation)?;
        Ok(GeneratedKey {
            kid,
            algorithm: SigningAlgorithm::Hs256,
            public_key: Vec::new(),
            sealed_private_key: SealedPrivateKey::from_sealed(sealed),
        })
    }
}

impl KeyGenerator for SealingKeyGenerator {
    fn generate(&self, algorithm: SigningAlgorithm) -> Result<GeneratedKey, KeyError> {
        let pair = jwt_algorithm(algorithm)
            .generate_key_pair()
            .map_err(generation)?;
        let kid = KeyId::parse(&pair.kid).map_err(|error| KeyError::Generation(error.message))?;
        let sealed = self
            .master_key
            .seal(
                &sealing_context(kid.as_str()),
                pair.private_key_pkcs8.expose_secret(),
            )
            .map_err(generation)?;
        Ok(GeneratedKey {
            kid,
            algorithm,
            public_key: pair.public_key,
            sealed_private_key: SealedPrivateKey::from_sealed(sealed),
        })
    }
}

fn generation(error: impl std::fmt::Display) -> KeyError {
    KeyError::Generation(error.to_string())
}

/// Why the stored keys could not be put to use.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// A sealed key does not open: the master key is not the one this
    /// store's keys were sealed with (or the row was altered).
    #[error(
        "the master key does not open signing key {kid}: it is not the master key these keys were sealed with, or the row was altered"
    )]
    WrongMasterKey {
        /// The first key that did not open.
        kid: String,
    },
    /// A key opened but is not what its row says (kid, algorithm, public key).
    #[error("signing key {kid} is damaged: {reason}")]
    Damaged {
        /// The key.
        kid: String,
        /// What did not match.
        reason: String,
    },
    /// The key store failed or holds no current key.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// A signer for the current key and a verifier for every key still
/// verifying at `now`, opened with `master_key`. A retired HS256 key (a v1
/// deployment's) also verifies tokens without `kid`.
///
/// # Errors
///
/// [`KeyRingError`] if a key does not open or does not match its row, or no
/// key is current.
pub fn open_signing_keys(
    keys: &[StoredSigningKey],
    master_key: &MasterKey,
    issuer: &str,
    audience: &str,
    now: OffsetDateTime,
) -> Result<(JwtSigner, JwtVerifier), KeyRingError> {
    let mut signer = None;
    let mut verification_keys = Vec::with_capacity(keys.len());
    let mut legacy = None;
    for key in keys {
        if key.retires_at.is_some_and(|end| end <= now) {
            continue;
        }
        let kid = key.kid.as_str();
        let secret = master_key
            .open(&sealing_context(kid), key.sealed_private_key.as_bytes())
            .map_err(|_| KeyRingError::WrongMasterKey {
                kid: kid.to_owned(),
            })?;
        let damaged = |reason: &str| KeyRingError::Damaged {
            kid: kid.to_owned(),
            reason: reason.to_owned(),
        };
        let signing_key = match key.algorithm {
            SigningAlgorithm::Hs256 => {
                let hs256 = Hs256Key::new(secret.expose_secret())
                    .map_err(|_| damaged("the HS256 secret is too short"))?;
                if key.state == KeyState::Retired {
                    legacy = Some(hs256.clone());
                }
                JwtSigningKey::hs256(&hs256)
            }
            algorithm => {
                let signing_key =
                    JwtSigningKey::from_pkcs8(jwt_algorithm(algorithm), secret.expose_secret())
                        .map_err(|_| damaged("the private key does not parse"))?;
                let published = signing_key
                    .verification_key()
                    .public_jwk()
                    .map(|jwk| jwk.thumbprint());
                let stored_public =
                    JwtVerificationKey::from_public_key(jwt_algorithm(algorithm), &key.public_key)
                        .map_err(|_| damaged("the public key does not parse"))?;
                if published.as_deref() != Some(stored_public.kid()) {
                    return Err(damaged("the public key is not the private key's"));
                }
                signing_key
            }
        };
        if signing_key.kid() != kid {
            return Err(damaged("the kid is not the key's"));
        }
        verification_keys.push(signing_key.verification_key().clone());
        if key.state == KeyState::Current {
            signer = Some(JwtSigner::new(signing_key, issuer, audience));
        }
    }
    let signer = signer.ok_or(KeyError::NoCurrentKey)?;
    let mut verifier = JwtVerifier::new(verification_keys, issuer, audience).map_err(|error| {
        KeyRingError::Damaged {
            kid: String::new(),
            reason: error.to_string(),
        }
    })?;
    if let Some(legacy) = legacy {
        verifier = verifier.with_legacy_hs256_key(&legacy);
    }
    Ok((signer, verifier))
}

/// The keys of a deployment kept in its store: [`KeyRing`] for the server.
/// Reloading opens every key again and swaps signer and verifier in the
/// shared [`JwtTokens`], so requests in flight finish with the old set and
/// the next ones use the new.
pub struct StoreKeyRing {
    store: Arc<dyn SigningKeyStore>,
    master_key: Arc<MasterKey>,
    issuer: String,
    audience: String,
    tokens: JwtTokens,
    clock: Arc<dyn Clock>,
}

impl StoreKeyRing {
    /// Opens the store's keys now and returns the ring with the tokens it
    /// feeds (shared: the tokens see every reload).
    ///
    /// # Errors
    ///
    /// [`KeyRingError`] as [`open_signing_keys`].
    pub async fn open(
        store: Arc<dyn SigningKeyStore>,
        master_key: Arc<MasterKey>,
        issuer: &str,
        audience: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyRingError> {
        let keys = store.signing_keys().await.map_err(KeyError::from)?;
        let (signer, verifier) =
            open_signing_keys(&keys, &master_key, issuer, audience, clock.now())?;
        Ok(Self {
            store,
            master_key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            tokens: JwtTokens::new(signer, verifier),
            clock,
        })
    }

    /// The token ports this ring keeps current.
    pub fn tokens(&self) -> JwtTokens {
        self.tokens.clone()
    }
}

#[async_trait]
impl KeyRing for StoreKeyRing {
    fn published_keys(&self) -> Vec<PublishedKey> {
        self.tokens.published_keys()
    }

    async fn reload(&self) -> Result<(), KeyError> {
        let keys = self.store.signing_keys().await?;
        let (signer, verifier) = open_signing_keys(
            &keys,
            &self.master_key,
            &self.issuer,
            &self.audience,
            self.clock.now(),
        )
        .map_err(|error| match error {
            KeyRingError::Keys(error) => error,
            other => KeyError::Generation(other.to_string()),
        })?;
        self.tokens.replace(signer, verifier);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, reason = "tests")]

    use std::sync::Mutex;
    use std::time::Duration;

    use portcullis_domain::ports::{AccessTokenSigner, TokenVerifier};
    use portcullis_domain::{
        AccessTokenClaims, KeyLifecycle, KeyPolicy, ScopeSet, SessionId, TokenError, UserId,
    };
    use portcullis_store_conformance::MemoryStore;

    use super::*;

    struct ManualClock(Mutex<OffsetDateTime>);

    impl Clock for ManualClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().expect("clock")
        }
    }

    impl ManualClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().expect("clock") += by;
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    struct Deployment {
        store: Arc<MemoryStore>,
        clock: Arc<ManualClock>,
        master_key: Arc<MasterKey>,
        lifecycle: KeyLifecycle,
    }

    impl Deployment {
        fn new(algorithm: SigningAlgorithm) -> Self {
            let store = Arc::new(MemoryStore::default());
            let clock = Arc::new(ManualClock(Mutex::new(
                OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
            )));
            let master_key = Arc::new(MasterKey::generate());
            let lifecycle = KeyLifecycle::new(
                store.clone(),
                Arc::new(SealingKeyGenerator::new(master_key.clone())),
                clock.clone(),
                KeyPolicy {
                    algorithm,
                    publish_ahead: MINUTE * 10,
                    rotation_period: MINUTE * 60,
                    verification_window: MINUTE * 15,
                },
            );
            Self {
                store,
                clock,
                master_key,
                lifecycle,
            }
        }

        async fn ring(&self) -> Result<StoreKeyRing, KeyRingError> {
            StoreKeyRing::open(
                self.store.clone(),
                self.master_key.clone(),
                "https://auth.example.test",
                "api",
                self.clock.clone(),
            )
            .await
        }

        fn claims(&self) -> AccessTokenClaims {
            let now = self.clock.now();
            AccessTokenClaims {
                user_id: UserId::random(),
                session_id: SessionId::random(),
                scopes: ScopeSet::parse("profile").expect("scopes"),
                token_id: portcullis_domain::new_token_id(),
                issued_at: now,
                expires_at: now + MINUTE * 15,
            }
        }
    }

    fn kid_of(token: &str) -> String {
        use base64::Engine;
        let header = token.split('.').next().expect("header");
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .expect("base64");
        let header: serde_json::Value = serde_json::from_slice(&header).expect("json");
        header["kid"].as_str().expect("kid").to_owned()
    }

    async fn kids_in(store: &MemoryStore, state: KeyState) -> Vec<String> {
        store
            .signing_keys()
            .await
            .expect("keys")
            .into_iter()
            .filter(|key| key.state == state)
            .map(|key| key.kid.to_string())
            .collect()
    }

    #[tokio::test]
    async fn the_ring_signs_with_the_current_key_and_publishes_current_and_next() {
        for algorithm in [SigningAlgorithm::EdDsa, SigningAlgorithm::Es256] {
            let deployment = Deployment::new(algorithm);
            deployment
                .lifecycle
                .install_if_empty(None)
                .await
                .expect("install");
            let ring = deployment.ring().await.expect("open");
            let tokens = ring.tokens();
            let claims = deployment.claims();
            let token = tokens.sign_access_token(&claims).expect("sign");
            assert_eq!(
                vec![kid_of(&token)],
                kids_in(&deployment.store, KeyState::Current).await
            );
            assert_eq!(
                tokens.verify_access_token(&token, deployment.clock.now()),
                Ok(claims)
            );
            let mut published: Vec<String> = ring
                .published_keys()
                .into_iter()
                .map(|key| {
                    assert_eq!(key.algorithm, algorithm);
                    key.kid.to_string()
                })
                .collect();
            published.sort();
            let mut stored = [
                kids_in(&deployment.store, KeyState::Current).await,
                kids_in(&deployment.store, KeyState::Next).await,
            ]
            .concat();
            stored.sort();
            assert_eq!(published, stored);
        }
    }

    #[tokio::test]
    async fn after_a_rotation_and_a_reload_new_tokens_use_the_new_key_and_old_ones_verify_until_the_window_ends()
     {
        let deployment = Deployment::new(SigningAlgorithm::EdDsa);
        deployment
            .lifecycle
            .install_if_empty(None)
            .await
            .expect("install");
        let ring = deployment.ring().await.expect("open");
        let tokens = ring.tokens();
        let old = tokens
            .sign_access_token(&deployment.claims())
            .expect("sign");
        let old_kid = kid_of(&old);

        deployment.lifecycle.rotate_now().await.expect("rotate");
        ring.reload().await.expect("reload");
        let new = tokens
            .sign_access_token(&deployment.claims())
            .expect("sign");
        assert_ne!(kid_of(&new), old_kid);
        assert_eq!(
            vec![kid_of(&new)],
            kids_in(&deployment.store, KeyState::Current).await
        );
        let now = deployment.clock.now();
        assert!(
            tokens.verify_access_token(&old, now).is_ok(),
            "retired verifies"
        );
        assert!(
            ring.published_keys()
                .iter()
                .any(|key| key.kid.as_str() == old_kid),
            "a retired key stays published"
        );

        deployment.clock.advance(MINUTE * 15);
        deployment.lifecycle.maintain().await.expect("maintain");
        ring.reload().await.expect("reload");
        assert_eq!(
            tokens.verify_access_token(&old, deployment.clock.now()),
            Err(TokenError::Malformed),
            "the retired key is gone"
        );
        assert!(
            !ring
                .published_keys()
                .iter()
                .any(|key| key.kid.as_str() == old_kid)
        );
    }

    #[tokio::test]
    async fn another_master_key_opens_nothing() {
        let deployment = Deployment::new(SigningAlgorithm::EdDsa);
        deployment
            .lifecycle
            .install_if_empty(None)
            .await
            .expect("install");
        let opened = StoreKeyRing::open(
            deployment.store.clone(),
            Arc::new(MasterKey::generate()),
            "iss",
            "aud",
            deployment.clock.clone(),
        )
        .await;
        assert!(matches!(opened, Err(KeyRingError::WrongMasterKey { .. })));
    }

    #[tokio::test]
    async fn a_sealed_key_moved_to_another_row_does_not_open() {
        let deployment = Deployment::new(SigningAlgorithm::EdDsa);
        deployment
            .lifecycle
            .install_if_empty(None)
            .await
            .expect("install");
        let mut keys = deployment.store.signing_keys().await.expect("keys");
        let first = keys[0].sealed_private_key.clone();
        keys[0].sealed_private_key = keys[1].sealed_private_key.clone();
        keys[1].sealed_private_key = first;
        let opened = open_signing_keys(
            &keys,
            &deployment.master_key,
            "iss",
            "aud",
            deployment.clock.now(),
        );
        assert!(matches!(opened, Err(KeyRingError::WrongMasterKey { .. })));
    }

    #[tokio::test]
    async fn an_upgraded_v1_secret_verifies_old_tokens_and_is_never_published() {
        let deployment = Deployment::new(SigningAlgorithm::EdDsa);
        let secret = [7_u8; 32];
        // A token of the v1 server: HS256, no kid.
        let v1 = JwtTokens::new(
            JwtSigner::hs256(&secret, "https://auth.example.test", "api").expect("signer"),
            JwtVerifier::for_signer(
                &JwtSigner::hs256(&secret, "https://auth.example.test", "api").expect("signer"),
            ),
        );
        let claims = deployment.claims();
        let v1_token = v1.sign_access_token(&claims).expect("sign");
        let without_kid = {
            // Re-sign without the kid header, as the first wave did.
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.typ = Some("at+jwt".to_owned());
            let payload = v1_token.split('.').nth(1).expect("payload");
            use base64::Engine;
            let claims: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload)
                    .expect("base64"),
            )
            .expect("json");
            jsonwebtoken::encode(
                &header,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(&secret),
            )
            .expect("encode")
        };

        let generator = SealingKeyGenerator::new(deployment.master_key.clone());
        deployment
            .lifecycle
            .install_if_empty(Some(generator.hs256_key(&secret).expect("v1 key")))
            .await
            .expect("install");
        let ring = deployment.ring().await.expect("open");
        let tokens = ring.tokens();
        let now = deployment.clock.now();
        assert_eq!(
            tokens.verify_access_token(&v1_token, now),
            Ok(claims.clone())
        );
        assert_eq!(tokens.verify_access_token(&without_kid, now), Ok(claims));
        assert!(
            ring.published_keys()
                .iter()
                .all(|key| key.algorithm != SigningAlgorithm::Hs256)
        );
        assert_eq!(ring.published_keys().len(), 2);
    }
}
