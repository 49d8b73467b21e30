//! In-memory implementations of the ports other than the store, which
//! comes from the conformance crate (it passes the same suite as SQLite).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::ports::{
    AccessTokenSigner, AttemptLimiter, Clock, OpaqueSecrets, PasswordHasher, PasswordVerification,
    RateLimited, TokenVerifier,
};
use portcullis_domain::{
    AccessTokenClaims, ApiKeyHash, AuthService, AuthSettings, HashingError, Password,
    PasswordHashString, PasswordPolicy, Ports, RefreshTokenHash, TokenError, UserId,
};
pub use portcullis_store_conformance::MemoryStore;
use time::OffsetDateTime;

/// "Hashes" as `v<version>:<password>` and counts every call, so tests can
/// check that the same work is done on every path.
pub struct CountingHasher {
    pub version: Mutex<u32>,
    pub hashes: AtomicUsize,
    pub verifications: AtomicUsize,
    pub dummy_verifications: AtomicUsize,
}

impl CountingHasher {
    fn new() -> Self {
        Self {
            version: Mutex::new(1),
            hashes: AtomicUsize::new(0),
            verifications: AtomicUsize::new(0),
            dummy_verifications: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl PasswordHasher for CountingHasher {
    async fn hash_password(&self, password: &Password) -> Result<PasswordHashString, HashingError> {
        self.hashes.fetch_add(1, Ordering::SeqCst);
        let version = *self.version.lock().expect("lock");
        Ok(PasswordHashString::new(format!(
            "v{version}:{}",
            password.expose()
        )))
    }

    async fn verify_password(
        &self,
        password: &Password,
        hash: Option<&PasswordHashString>,
    ) -> Result<PasswordVerification, HashingError> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        let Some(hash) = hash else {
            self.dummy_verifications.fetch_add(1, Ordering::SeqCst);
            return Ok(PasswordVerification::Mismatch);
        };
        let version = *self.version.lock().expect("lock");
        let (stored_version, stored_password) =
            hash.as_str().split_once(':').expect("fake hash format");
        if stored_password != password.expose() {
            return Ok(PasswordVerification::Mismatch);
        }
        Ok(PasswordVerification::Match {
            needs_rehash: stored_version != format!("v{version}"),
        })
    }
}

/// Tokens are the claims in plain text; the fake verifier parses them back.
pub struct PlainTokens {
    pub issued: Mutex<HashMap<String, AccessTokenClaims>>,
}

impl AccessTokenSigner for PlainTokens {
    fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        let token = format!("token-{}", claims.token_id);
        self.issued
            .lock()
            .expect("lock")
            .insert(token.clone(), claims.clone());
        Ok(token)
    }
}

impl OpaqueSecrets for PlainTokens {
    fn new_refresh_token(&self) -> (String, RefreshTokenHash) {
        let token = format!("refresh-{}", uuid::Uuid::new_v4());
        let hash = self.hash_refresh_token(&token);
        (token, hash)
    }

    fn hash_refresh_token(&self, token: &str) -> RefreshTokenHash {
        RefreshTokenHash::from_digest(token.bytes().rev().collect())
    }

    fn new_api_key(&self) -> (String, ApiKeyHash) {
        let key = format!(
            "pcl_{}",
            "k".repeat(11) + &uuid::Uuid::new_v4().simple().to_string()
        );
        let hash = self.hash_api_key(&key);
        (key, hash)
    }

    fn hash_api_key(&self, key: &str) -> ApiKeyHash {
        ApiKeyHash::from_digest(key.bytes().rev().collect())
    }
}

impl TokenVerifier for PlainTokens {
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

/// A clock that only moves when told to.
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("lock");
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("lock")
    }
}

/// Allows `budget` attempts per username (unlimited when `None`) and
/// records every key it saw.
#[derive(Default)]
pub struct CountingLimiter {
    pub budget: Mutex<Option<usize>>,
    pub seen: Mutex<Vec<(Option<std::net::IpAddr>, String)>>,
    /// API-key creations allowed per user (unlimited when `None`).
    pub creation_budget: Mutex<Option<usize>>,
    pub creations: Mutex<Vec<UserId>>,
}

#[async_trait]
impl AttemptLimiter for CountingLimiter {
    async fn check_attempt(
        &self,
        client_ip: Option<std::net::IpAddr>,
        username: &str,
    ) -> Result<(), RateLimited> {
        let mut seen = self.seen.lock().expect("lock");
        seen.push((client_ip, username.to_owned()));
        let used = seen.iter().filter(|(_, name)| name == username).count();
        match *self.budget.lock().expect("lock") {
            Some(budget) if used > budget => Err(RateLimited {
                retry_after: Duration::from_millis(1500),
            }),
            _ => Ok(()),
        }
    }

    async fn check_api_key_creation(&self, user_id: UserId) -> Result<(), RateLimited> {
        let mut creations = self.creations.lock().expect("lock");
        creations.push(user_id);
        let used = creations.iter().filter(|id| **id == user_id).count();
        match *self.creation_budget.lock().expect("lock") {
            Some(budget) if used > budget => Err(RateLimited {
                retry_after: Duration::from_millis(2500),
            }),
            _ => Ok(()),
        }
    }
}

/// A service over fresh fakes, with handles on each.
pub struct Harness {
    pub service: AuthService,
    pub limiter: Arc<CountingLimiter>,
    pub store: Arc<MemoryStore>,
    pub hasher: Arc<CountingHasher>,
    pub clock: Arc<ManualClock>,
}

impl Harness {
    pub fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        let hasher = Arc::new(CountingHasher::new());
        let tokens = Arc::new(PlainTokens {
            issued: Mutex::new(HashMap::new()),
        });
        let limiter = Arc::new(CountingLimiter::default());
        let clock = Arc::new(ManualClock(Mutex::new(
            OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
        )));
        let settings = AuthSettings {
            access_token_ttl: Duration::from_secs(900),
            session_ttl: Duration::from_secs(3600),
            session_idle_timeout: Duration::from_secs(1800),
            password_policy: PasswordPolicy::default(),
            max_sessions_per_user: 3,
            max_api_keys_per_user: 3,
        };
        let service = AuthService::new(
            Ports {
                store: store.clone(),
                hasher: hasher.clone(),
                access_tokens: tokens.clone(),
                secrets: tokens.clone(),
                verifier: tokens,
                clock: clock.clone(),
                limiter: limiter.clone(),
            },
            settings,
        );
        Self {
            service,
            limiter,
            store,
            hasher,
            clock,
        }
    }
}
