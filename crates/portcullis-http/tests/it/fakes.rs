//! Fakes of the ports, and an app built over them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderMap, Method};
use poem::{Body, Endpoint, Request};
use portcullis_domain::ports::{
    AccessTokenSigner, Clock, KeyRing, NoAttemptLimit, OpaqueSecrets, PasswordHasher,
    PasswordVerification, SigningKeyStore, TokenVerifier,
};
use portcullis_domain::{
    AccessTokenClaims, ApiKeyHash, AuthService, AuthSettings, GeneratedKey, HashingError, KeyError,
    KeyGenerator, KeyId, KeyLifecycle, KeyPolicy, Password, PasswordHashString, Ports,
    PublishedKey, RefreshTokenHash, RegistrationRequest, Role, SealedPrivateKey, SigningAlgorithm,
    TokenError,
};
use portcullis_http::client_ip::TrustedProxies;
use portcullis_http::{AppState, HttpOptions, Publication, build_app};
pub use portcullis_store_conformance::MemoryStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

pub const PASSWORD: &str = "correct horse battery staple";
pub const PUBLIC_URL: &str = "https://auth.example.test";
pub const ISSUER: &str = "https://auth.example.test";
pub const AUDIENCE: &str = "test-audience";
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// "Hashes" as the password itself.
pub struct PlainHasher;

#[async_trait]
impl PasswordHasher for PlainHasher {
    async fn hash_password(&self, password: &Password) -> Result<PasswordHashString, HashingError> {
        Ok(PasswordHashString::new(format!(
            "plain:{}",
            password.expose()
        )))
    }

    async fn verify_password(
        &self,
        password: &Password,
        hash: Option<&PasswordHashString>,
    ) -> Result<PasswordVerification, HashingError> {
        match hash {
            Some(hash) if hash.as_str() == format!("plain:{}", password.expose()) => {
                Ok(PasswordVerification::Match {
                    needs_rehash: false,
                })
            }
            _ => Ok(PasswordVerification::Mismatch),
        }
    }
}

/// Access tokens shaped like JWTs (an unsigned header, the registered
/// claims a real signer writes, a dummy signature) and remembered, so the
/// fake verifier knows exactly the tokens it issued.
#[derive(Default)]
pub struct FakeTokens {
    issued: Mutex<HashMap<String, AccessTokenClaims>>,
}

impl AccessTokenSigner for FakeTokens {
    fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        let payload = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": claims.user_id.to_string(),
            "jti": claims.token_id.to_string(),
        });
        let token = format!(
            "eyJhbGciOiJub25lIn0.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        self.issued
            .lock()
            .expect("lock")
            .insert(token.clone(), claims.clone());
        Ok(token)
    }
}

impl TokenVerifier for FakeTokens {
    fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, TokenError> {
        let claims = self
            .issued
            .lock()
            .expect("lock")
            .get(token)
            .cloned()
            .ok_or(TokenError::Malformed)?;
        if claims.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

impl OpaqueSecrets for FakeTokens {
    fn new_refresh_token(&self) -> (String, RefreshTokenHash) {
        let token = format!("refresh-{}", uuid::Uuid::new_v4().simple());
        let hash = self.hash_refresh_token(&token);
        (token, hash)
    }

    fn hash_refresh_token(&self, token: &str) -> RefreshTokenHash {
        RefreshTokenHash::from_digest(token.bytes().rev().collect())
    }

    fn new_api_key(&self) -> (String, ApiKeyHash) {
        let key = format!("pcl_{}{}", "k".repeat(11), uuid::Uuid::new_v4().simple());
        let hash = self.hash_api_key(&key);
        (key, hash)
    }

    fn hash_api_key(&self, key: &str) -> ApiKeyHash {
        ApiKeyHash::from_digest(key.bytes().rev().collect())
    }
}

/// A clock that only moves when told to.
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("lock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("lock")
    }
}

/// Ed25519-shaped keys with counted ids; the "private key" is a marker
/// that must never reach a response.
#[derive(Default)]
pub struct CountingKeyGenerator {
    made: AtomicU32,
}

/// What every fake sealed private key contains.
pub const PRIVATE_MARKER: &str = "PRIVATE-KEY-MATERIAL";

impl KeyGenerator for CountingKeyGenerator {
    fn generate(&self, algorithm: SigningAlgorithm) -> Result<GeneratedKey, KeyError> {
        let n = self.made.fetch_add(1, Ordering::SeqCst);
        Ok(GeneratedKey {
            kid: KeyId::parse(&format!("kid-{n}")).expect("kid"),
            algorithm,
            public_key: vec![u8::try_from(n % 256).expect("byte"); 32],
            sealed_private_key: SealedPrivateKey::from_sealed(PRIVATE_MARKER.as_bytes().to_vec()),
        })
    }
}

/// A key ring over the store's keys: what it publishes is what the store
/// held at the last reload, as the real ring does.
pub struct StoreKeyRing {
    store: Arc<MemoryStore>,
    published: Mutex<Vec<PublishedKey>>,
    pub reloads: AtomicUsize,
}

impl StoreKeyRing {
    pub fn new(store: Arc<MemoryStore>) -> Self {
        Self {
            store,
            published: Mutex::new(Vec::new()),
            reloads: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl KeyRing for StoreKeyRing {
    fn published_keys(&self) -> Vec<PublishedKey> {
        self.published.lock().expect("lock").clone()
    }

    async fn reload(&self) -> Result<(), KeyError> {
        let keys = self.store.signing_keys().await?;
        *self.published.lock().expect("lock") = keys
            .into_iter()
            .filter(|key| key.algorithm.is_asymmetric())
            .map(|key| PublishedKey {
                kid: key.kid,
                algorithm: key.algorithm,
                kty: "OKP".to_owned(),
                crv: "Ed25519".to_owned(),
                x: URL_SAFE_NO_PAD.encode(&key.public_key),
                y: None,
            })
            .collect();
        self.reloads.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A ring with fixed keys (HS256: it publishes nothing).
pub struct FixedKeyRing(pub Vec<PublishedKey>);

#[async_trait]
impl KeyRing for FixedKeyRing {
    fn published_keys(&self) -> Vec<PublishedKey> {
        self.0.clone()
    }

    async fn reload(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

/// How the keys of a test app are kept.
pub enum Keys {
    /// In the store, with a lifecycle: EdDSA keys, rotatable.
    Stored,
    /// Fixed by configuration (an HS256 secret): no lifecycle, nothing published.
    FixedHs256,
}

/// The app under test and handles on its parts.
pub struct TestApp {
    pub client: Client,
    pub service: AuthService,
    pub clock: Arc<ManualClock>,
    pub ring: Option<Arc<StoreKeyRing>>,
}

impl TestApp {
    pub async fn new(keys: Keys) -> Self {
        Self::with_options(keys, &HttpOptions::default()).await
    }

    pub async fn with_options(keys: Keys, options: &HttpOptions) -> Self {
        let store = Arc::new(MemoryStore::default());
        let tokens = Arc::new(FakeTokens::default());
        let clock = Arc::new(ManualClock(Mutex::new(
            OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
        )));
        let service = AuthService::new(
            Ports {
                store: store.clone(),
                hasher: Arc::new(PlainHasher),
                access_tokens: tokens.clone(),
                secrets: tokens.clone(),
                verifier: tokens,
                clock: clock.clone(),
                limiter: Arc::new(NoAttemptLimit),
            },
            AuthSettings::default(),
        );
        let (key_ring, key_lifecycle, ring): (Arc<dyn KeyRing>, _, _) = match keys {
            Keys::Stored => {
                let lifecycle = KeyLifecycle::new(
                    store.clone(),
                    Arc::new(CountingKeyGenerator::default()),
                    clock.clone(),
                    KeyPolicy {
                        algorithm: SigningAlgorithm::EdDsa,
                        publish_ahead: Duration::from_secs(3600),
                        rotation_period: Duration::from_secs(2_592_000),
                        verification_window: Duration::from_secs(930),
                    },
                );
                lifecycle.install_if_empty(None).await.expect("installed");
                let ring = Arc::new(StoreKeyRing::new(store.clone()));
                ring.reload().await.expect("loaded");
                (ring.clone(), Some(lifecycle), Some(ring))
            }
            Keys::FixedHs256 => (Arc::new(FixedKeyRing(Vec::new())), None, None),
        };
        let state = AppState {
            auth: service.clone(),
            trusted_proxies: TrustedProxies::default(),
            publication: Publication {
                key_ring,
                key_lifecycle,
                public_url: PUBLIC_URL.to_owned(),
                issuer: ISSUER.to_owned(),
                jwks_max_age: JWKS_MAX_AGE,
            },
        };
        Self {
            client: Client(build_app(state, options)),
            service,
            clock,
            ring,
        }
    }

    /// Creates an account with `role`.
    pub async fn user(&self, username: &str, role: Role) {
        self.service
            .create_user(
                RegistrationRequest {
                    username: username.to_owned(),
                    email: format!("{username}@example.com"),
                    full_name: None,
                    password: Password::new(PASSWORD.to_owned()),
                },
                role,
                &portcullis_domain::Initiator::command_line(),
            )
            .await
            .expect("created");
    }

    /// `Authorization: Basic` for `username` with the test password.
    pub fn basic(username: &str) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{username}:{PASSWORD}"))
        )
    }
}

/// Sends requests straight to the app's endpoint, in-process.
pub struct Client(BoxEndpoint<'static>);

impl Client {
    pub fn get(&self, path: impl AsRef<str>) -> Call<'_> {
        self.call(Method::GET, path.as_ref())
    }

    pub fn post(&self, path: impl AsRef<str>) -> Call<'_> {
        self.call(Method::POST, path.as_ref())
    }

    pub fn delete(&self, path: impl AsRef<str>) -> Call<'_> {
        self.call(Method::DELETE, path.as_ref())
    }

    fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            endpoint: &self.0,
            request: Request::builder()
                .method(method)
                .uri(path.parse().expect("a path"))
                .header("host", "auth.example.test"),
            body: Body::empty(),
        }
    }
}

/// One request being built.
pub struct Call<'a> {
    endpoint: &'a BoxEndpoint<'static>,
    request: poem::RequestBuilder,
    body: Body,
}

impl Call<'_> {
    pub fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        self.request = self.request.header(name, value.as_ref());
        self
    }

    pub fn content_type(self, content_type: &'static str) -> Self {
        self.header("content-type", content_type)
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Body::from_string(body.into());
        self
    }

    pub fn body_json(self, body: &Value) -> Self {
        self.content_type("application/json").body(body.to_string())
    }

    pub async fn send(self) -> Reply {
        let response = self
            .endpoint
            .get_response(self.request.body(self.body))
            .await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .into_body()
            .into_string()
            .await
            .expect("a readable body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("a JSON body")
        };
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// The status, headers and JSON body of a reply.
pub async fn json_of(reply: Reply) -> (u16, HeaderMap, Value) {
    (reply.status, reply.headers, reply.body)
}

/// A header's value as text.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}
