//! In-memory implementations of the ports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::ports::{
    Clock, PasswordHasher, PasswordVerification, SessionStore, TokenIssuer, TokenVerifier,
    UserStore,
};
use portcullis_domain::{
    AccessTokenClaims, AuthService, AuthSettings, ConflictField, HashingError, NewSession, NewUser,
    Password, PasswordHashString, PasswordPolicy, ProfileChanges, RefreshTokenHash, Role, ScopeSet,
    SessionId, StoreError, TokenError, User, UserCredentials, UserId, Username,
};
use time::OffsetDateTime;

#[derive(Default)]
pub struct MemoryStore {
    pub users: Mutex<HashMap<UserId, (User, PasswordHashString)>>,
    pub sessions: Mutex<HashMap<SessionId, (NewSession, OffsetDateTime)>>,
    pub hash_updates: AtomicUsize,
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, new_user: &NewUser) -> Result<(), StoreError> {
        let mut users = self.users.lock().expect("lock");
        for (user, _) in users.values() {
            if user.username == new_user.user.username {
                return Err(StoreError::Conflict(ConflictField::Username));
            }
            if user
                .email
                .as_str()
                .eq_ignore_ascii_case(new_user.user.email.as_str())
            {
                return Err(StoreError::Conflict(ConflictField::Email));
            }
        }
        users.insert(
            new_user.user.id,
            (new_user.user.clone(), new_user.password_hash.clone()),
        );
        Ok(())
    }

    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let users = self.users.lock().expect("lock");
        Ok(users
            .values()
            .find(|(user, _)| &user.username == username)
            .map(|(user, hash)| UserCredentials {
                user: user.clone(),
                password_hash: hash.clone(),
            }))
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self
            .users
            .lock()
            .expect("lock")
            .get(&id)
            .map(|(u, _)| u.clone()))
    }

    async fn update_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHashString,
    ) -> Result<(), StoreError> {
        self.hash_updates.fetch_add(1, Ordering::SeqCst);
        let mut users = self.users.lock().expect("lock");
        let entry = users.get_mut(&id).ok_or(StoreError::NotFound)?;
        entry.1 = hash.clone();
        Ok(())
    }

    async fn update_profile(
        &self,
        id: UserId,
        changes: &ProfileChanges,
    ) -> Result<User, StoreError> {
        let mut users = self.users.lock().expect("lock");
        let entry = users.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(email) = &changes.email {
            entry.0.email = email.clone();
        }
        if let Some(full_name) = &changes.full_name {
            entry.0.full_name = full_name.clone();
        }
        Ok(entry.0.clone())
    }

    async fn set_disabled(&self, username: &Username, disabled: bool) -> Result<User, StoreError> {
        let mut users = self.users.lock().expect("lock");
        let entry = users
            .values_mut()
            .find(|(user, _)| &user.username == username)
            .ok_or(StoreError::NotFound)?;
        entry.0.disabled = disabled;
        Ok(entry.0.clone())
    }

    async fn set_role(&self, username: &Username, role: Role) -> Result<User, StoreError> {
        let mut users = self.users.lock().expect("lock");
        let entry = users
            .values_mut()
            .find(|(user, _)| &user.username == username)
            .ok_or(StoreError::NotFound)?;
        entry.0.role = role;
        Ok(entry.0.clone())
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        self.sessions
            .lock()
            .expect("lock")
            .insert(session.id, (session.clone(), session.created_at));
        Ok(())
    }

    async fn find_active_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<Option<(User, ScopeSet)>, StoreError> {
        let sessions = self.sessions.lock().expect("lock");
        let Some((session, last_used)) = sessions.get(&session_id) else {
            return Ok(None);
        };
        if session.user_id != user_id
            || session.expires_at <= now
            || *last_used + idle_timeout <= now
        {
            return Ok(None);
        }
        let users = self.users.lock().expect("lock");
        Ok(users
            .get(&user_id)
            .filter(|(user, _)| !user.disabled)
            .map(|(user, _)| (user.clone(), session.scopes)))
    }
}

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

impl TokenIssuer for PlainTokens {
    fn issue_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        let token = format!("token-{}", claims.token_id);
        self.issued
            .lock()
            .expect("lock")
            .insert(token.clone(), claims.clone());
        Ok(token)
    }

    fn new_refresh_token(&self) -> (String, RefreshTokenHash) {
        let token = format!("refresh-{}", uuid::Uuid::new_v4());
        let hash = self.hash_refresh_token(&token);
        (token, hash)
    }

    fn hash_refresh_token(&self, token: &str) -> RefreshTokenHash {
        RefreshTokenHash::from_digest(token.bytes().rev().collect())
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

/// A service over fresh fakes, with handles on each.
pub struct Harness {
    pub service: AuthService,
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
        let clock = Arc::new(ManualClock(Mutex::new(
            OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
        )));
        let settings = AuthSettings {
            access_token_ttl: Duration::from_secs(900),
            session_ttl: Duration::from_secs(3600),
            session_idle_timeout: Duration::from_secs(1800),
            password_policy: PasswordPolicy::default(),
        };
        let service = AuthService::new(
            store.clone(),
            store.clone(),
            hasher.clone(),
            tokens.clone(),
            tokens,
            clock.clone(),
            settings,
        );
        Self {
            service,
            store,
            hasher,
            clock,
        }
    }
}
