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
    Password, PasswordHashString, PasswordPolicy, ProfileChanges, RefreshOutcome, RefreshTokenHash,
    RefreshTokenOwner, Role, ScopeSet, SessionId, SessionInfo, StoreError, TokenError, User,
    UserCredentials, UserId, Username,
};
use time::OffsetDateTime;

pub struct FakeSession {
    pub session: NewSession,
    pub last_used: OffsetDateTime,
    pub revoked: bool,
}

impl FakeSession {
    fn is_active(&self, now: OffsetDateTime, idle_timeout: Duration) -> bool {
        !self.revoked && self.session.expires_at > now && self.last_used + idle_timeout > now
    }
}

#[derive(Default)]
pub struct MemoryStore {
    pub users: Mutex<HashMap<UserId, (User, PasswordHashString)>>,
    pub sessions: Mutex<HashMap<SessionId, FakeSession>>,
    /// Refresh-token digest → (session, used).
    pub refresh_tokens: Mutex<HashMap<Vec<u8>, (SessionId, bool)>>,
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

    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        keep_session: SessionId,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.update_password_hash(id, hash).await?;
        for (session_id, session) in self.sessions.lock().expect("lock").iter_mut() {
            if session.session.user_id == id && *session_id != keep_session {
                session.revoked = true;
            }
        }
        Ok(())
    }

    async fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        self.users
            .lock()
            .expect("lock")
            .remove(&id)
            .ok_or(StoreError::NotFound)?;
        let mut sessions = self.sessions.lock().expect("lock");
        sessions.retain(|_, session| session.session.user_id != id);
        let live: Vec<SessionId> = sessions.keys().copied().collect();
        self.refresh_tokens
            .lock()
            .expect("lock")
            .retain(|_, (session_id, _)| live.contains(session_id));
        Ok(())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        self.refresh_tokens.lock().expect("lock").insert(
            session.refresh_token_hash.as_bytes().to_vec(),
            (session.id, false),
        );
        self.sessions.lock().expect("lock").insert(
            session.id,
            FakeSession {
                session: session.clone(),
                last_used: session.created_at,
                revoked: false,
            },
        );
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
        let Some(session) = sessions.get(&session_id) else {
            return Ok(None);
        };
        if session.session.user_id != user_id || !session.is_active(now, idle_timeout) {
            return Ok(None);
        }
        let users = self.users.lock().expect("lock");
        Ok(users
            .get(&user_id)
            .filter(|(user, _)| !user.disabled)
            .map(|(user, _)| (user.clone(), session.session.scopes)))
    }

    async fn rotate_refresh_token(
        &self,
        presented: &RefreshTokenHash,
        replacement: &RefreshTokenHash,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<RefreshOutcome, StoreError> {
        // One lock order (users, sessions, tokens) held throughout: atomic.
        let users = self.users.lock().expect("lock");
        let mut sessions = self.sessions.lock().expect("lock");
        let mut tokens = self.refresh_tokens.lock().expect("lock");
        let Some((session_id, used)) = tokens.get(presented.as_bytes()).copied() else {
            return Ok(RefreshOutcome::Rejected);
        };
        let Some(session) = sessions.get_mut(&session_id) else {
            return Ok(RefreshOutcome::Rejected);
        };
        if used {
            session.revoked = true;
            return Ok(RefreshOutcome::Reused { session_id });
        }
        let user = users
            .get(&session.session.user_id)
            .map(|(user, _)| user.clone());
        let Some(user) = user.filter(|user| !user.disabled) else {
            return Ok(RefreshOutcome::Rejected);
        };
        if !session.is_active(now, idle_timeout) {
            return Ok(RefreshOutcome::Rejected);
        }
        tokens.insert(presented.as_bytes().to_vec(), (session_id, true));
        tokens.insert(replacement.as_bytes().to_vec(), (session_id, false));
        session.last_used = now;
        Ok(RefreshOutcome::Rotated {
            user,
            session_id,
            scopes: session.session.scopes,
        })
    }

    async fn find_refresh_token_owner(
        &self,
        token: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenOwner>, StoreError> {
        let sessions = self.sessions.lock().expect("lock");
        let tokens = self.refresh_tokens.lock().expect("lock");
        Ok(tokens.get(token.as_bytes()).and_then(|(session_id, _)| {
            sessions.get(session_id).map(|session| RefreshTokenOwner {
                session_id: *session_id,
                user_id: session.session.user_id,
                scopes: session.session.scopes,
            })
        }))
    }

    async fn revoke_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut sessions = self.sessions.lock().expect("lock");
        match sessions.get_mut(&session_id) {
            Some(session)
                if session.session.user_id == user_id
                    && !session.revoked
                    && session.session.expires_at > now =>
            {
                session.revoked = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        _now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut count = 0;
        for (session_id, session) in self.sessions.lock().expect("lock").iter_mut() {
            if session.session.user_id == user_id && Some(*session_id) != except && !session.revoked
            {
                session.revoked = true;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let sessions = self.sessions.lock().expect("lock");
        Ok(sessions
            .values()
            .filter(|s| s.session.user_id == user_id && s.is_active(now, idle_timeout))
            .map(|s| SessionInfo {
                id: s.session.id,
                created_at: s.session.created_at,
                last_used_at: s.last_used,
                expires_at: s.session.expires_at.min(s.last_used + idle_timeout),
                ip: s.session.ip.clone(),
                user_agent: s.session.user_agent.clone(),
            })
            .collect())
    }

    async fn purge_dead_sessions(
        &self,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<u64, StoreError> {
        let mut sessions = self.sessions.lock().expect("lock");
        let before = sessions.len();
        sessions.retain(|_, session| session.is_active(now, idle_timeout));
        Ok((before - sessions.len()) as u64)
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
