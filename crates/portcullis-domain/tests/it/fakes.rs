//! In-memory implementations of the ports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::ports::{
    AccessTokenSigner, ApiKeyStore, Clock, OpaqueSecrets, PasswordHasher, PasswordVerification,
    SessionStore, TokenVerifier, UserStore,
};
use portcullis_domain::{
    AccessTokenClaims, AuthService, AuthSettings, ConflictField, EmailAddress, HashingError,
    NewSession, NewUser, Password, PasswordHashString, PasswordPolicy, ProfileChanges,
    RefreshOutcome, RefreshTokenHash, RefreshTokenOwner, Role, ScopeSet, SessionId, SessionInfo,
    StoreError, TokenError, User, UserCredentials, UserId, Username,
};
use portcullis_domain::{
    AdminUserChanges, ApiKeyHash, ApiKeyId, ApiKeyInfo, NewApiKey, Page, PageCursor, PageRequest,
    Ports, UserCursor, UserListQuery, UserPage,
};
use time::OffsetDateTime;

pub struct FakeSession {
    pub session: NewSession,
    pub last_used: OffsetDateTime,
    pub revoked: bool,
    /// Creation order, which breaks ties between equal times.
    pub sequence: usize,
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
    /// API keys and whether they are revoked.
    pub api_keys: Mutex<Vec<(NewApiKey, bool)>>,
    /// Insertion order of users, for pagination.
    pub user_order: Mutex<Vec<UserId>>,
    pub hash_updates: AtomicUsize,
    /// While set, the store cannot take a write: `ensure_writable` fails.
    pub write_locked: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, new_user: &NewUser) -> Result<(), StoreError> {
        let mut users = self.users.lock().expect("lock");
        for (user, _) in users.values() {
            if user.username == new_user.user.username {
                return Err(StoreError::Conflict(ConflictField::Username));
            }
            if user.email.canonical() == new_user.user.email.canonical() {
                return Err(StoreError::Conflict(ConflictField::Email));
            }
        }
        users.insert(
            new_user.user.id,
            (new_user.user.clone(), new_user.password_hash.clone()),
        );
        self.user_order.lock().expect("lock").push(new_user.user.id);
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
        email_is_free(&users, id, changes.email.as_ref())?;
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
        let user = entry.0.clone();
        drop(users);
        self.narrow_grants(user.id, role);
        Ok(user)
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn ensure_writable(&self) -> Result<(), StoreError> {
        if self.write_locked.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("write lock held".to_owned()))
        } else {
            Ok(())
        }
    }

    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        keep_session: Option<SessionId>,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.update_password_hash(id, hash).await?;
        for (session_id, session) in self.sessions.lock().expect("lock").iter_mut() {
            if session.session.user_id == id && Some(*session_id) != keep_session {
                session.revoked = true;
            }
        }
        Ok(())
    }

    async fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        if self.is_last_enabled_admin(id) {
            return Err(StoreError::LastAdmin);
        }
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

    async fn list_users(&self, query: &UserListQuery) -> Result<UserPage, StoreError> {
        let users = self.users.lock().expect("lock");
        let order = self.user_order.lock().expect("lock");
        let start = query.after.map_or(0, |cursor| cursor.0 as usize);
        let matching: Vec<(usize, User)> = order
            .iter()
            .enumerate()
            .skip(start)
            .filter_map(|(position, id)| {
                users.get(id).map(|(user, _)| (position + 1, user.clone()))
            })
            .filter(|(_, user)| {
                query
                    .search
                    .as_ref()
                    .is_none_or(|search| search.matches(user.username.as_str(), &user.email))
            })
            .take(query.limit as usize + 1)
            .collect();
        let more = matching.len() > query.limit as usize;
        let page: Vec<(usize, User)> = matching.into_iter().take(query.limit as usize).collect();
        Ok(UserPage {
            next_cursor: more
                .then(|| {
                    page.last()
                        .map(|(position, _)| UserCursor(*position as i64))
                })
                .flatten(),
            users: page.into_iter().map(|(_, user)| user).collect(),
        })
    }

    async fn admin_update_user(
        &self,
        id: UserId,
        changes: &AdminUserChanges,
        _now: OffsetDateTime,
    ) -> Result<User, StoreError> {
        let demoted = changes.role == Some(Role::User) || changes.disabled == Some(true);
        if demoted && self.is_last_enabled_admin(id) {
            return Err(StoreError::LastAdmin);
        }
        let mut users = self.users.lock().expect("lock");
        email_is_free(&users, id, changes.email.as_ref())?;
        let entry = users.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(disabled) = changes.disabled {
            entry.0.disabled = disabled;
        }
        if let Some(role) = changes.role {
            entry.0.role = role;
            self.narrow_grants(id, role);
        }
        if let Some(email) = &changes.email {
            entry.0.email = email.clone();
        }
        if let Some(full_name) = &changes.full_name {
            entry.0.full_name = full_name.clone();
        }
        if changes.disabled == Some(true) {
            for session in self.sessions.lock().expect("lock").values_mut() {
                if session.session.user_id == id {
                    session.revoked = true;
                }
            }
            for (key, revoked) in self.api_keys.lock().expect("lock").iter_mut() {
                if key.user_id == id {
                    *revoked = true;
                }
            }
        }
        Ok(entry.0.clone())
    }
}

/// Like the real stores' unique index on the canonical email key: another
/// account with the same canonical address is a conflict.
fn email_is_free(
    users: &HashMap<UserId, (User, PasswordHashString)>,
    id: UserId,
    email: Option<&EmailAddress>,
) -> Result<(), StoreError> {
    let Some(email) = email else {
        return Ok(());
    };
    let taken = users
        .iter()
        .any(|(other, (user, _))| *other != id && user.email.canonical() == email.canonical());
    if taken {
        Err(StoreError::Conflict(ConflictField::Email))
    } else {
        Ok(())
    }
}

impl MemoryStore {
    /// The promise of `set_role` and `admin_update_user`: every live grant
    /// of the user is narrowed to the role's scopes; an empty one ends.
    fn narrow_grants(&self, id: UserId, role: Role) {
        let allowed = role.allowed_scopes();
        for session in self.sessions.lock().expect("lock").values_mut() {
            if session.session.user_id == id && !session.revoked {
                session.session.scopes = session.session.scopes.intersection(allowed);
                session.revoked = session.session.scopes.is_empty();
            }
        }
        for (key, revoked) in self.api_keys.lock().expect("lock").iter_mut() {
            if key.user_id == id && !*revoked {
                key.scopes = key.scopes.intersection(allowed);
                *revoked = key.scopes.is_empty();
            }
        }
    }

    fn is_last_enabled_admin(&self, id: UserId) -> bool {
        let users = self.users.lock().expect("lock");
        let is_admin = |user: &User| user.role == Role::Admin && !user.disabled;
        users.get(&id).is_some_and(|(user, _)| is_admin(user))
            && users.values().filter(|(user, _)| is_admin(user)).count() == 1
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, key: &NewApiKey, max_live: u32) -> Result<(), StoreError> {
        // One lock around the count and the push: atomic.
        let mut keys = self.api_keys.lock().expect("lock");
        let live = keys
            .iter()
            .filter(|(k, revoked)| {
                k.user_id == key.user_id
                    && !revoked
                    && k.expires_at.is_none_or(|at| at > key.created_at)
            })
            .count();
        if live >= max_live as usize {
            return Err(StoreError::ApiKeyLimitReached);
        }
        keys.push((key.clone(), false));
        Ok(())
    }

    async fn list_api_keys(
        &self,
        user_id: UserId,
        page: &PageRequest,
    ) -> Result<Page<ApiKeyInfo>, StoreError> {
        let keys: Vec<ApiKeyInfo> = self
            .api_keys
            .lock()
            .expect("lock")
            .iter()
            .filter(|(key, revoked)| key.user_id == user_id && !revoked)
            .map(|(key, _)| ApiKeyInfo {
                id: key.id,
                name: key.name.as_str().to_owned(),
                prefix: key.prefix.clone(),
                scopes: key.scopes,
                created_at: key.created_at,
                last_used_at: None,
                expires_at: key.expires_at,
            })
            .collect();
        // Newest first, the id breaking ties: the store's total order.
        paginate(
            keys,
            page,
            |key| (std::cmp::Reverse(key.created_at), key.id.to_string()),
            |key| format!("{}|{}", key.created_at.unix_timestamp(), key.id),
            |cursor| {
                let (created, id) = cursor.split_once('|')?;
                let created = OffsetDateTime::from_unix_timestamp(created.parse().ok()?).ok()?;
                Some((std::cmp::Reverse(created), id.to_owned()))
            },
        )
    }

    async fn revoke_api_key(
        &self,
        id: ApiKeyId,
        user_id: UserId,
        _now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut keys = self.api_keys.lock().expect("lock");
        match keys
            .iter_mut()
            .find(|(key, revoked)| key.id == id && key.user_id == user_id && !revoked)
        {
            Some((_, revoked)) => {
                *revoked = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn authenticate_api_key(
        &self,
        hash: &ApiKeyHash,
        now: OffsetDateTime,
    ) -> Result<Option<(User, ScopeSet, ApiKeyId)>, StoreError> {
        let keys = self.api_keys.lock().expect("lock");
        let users = self.users.lock().expect("lock");
        Ok(keys
            .iter()
            .find(|(key, revoked)| {
                key.key_hash == *hash && !revoked && key.expires_at.is_none_or(|at| at > now)
            })
            .and_then(|(key, _)| {
                users
                    .get(&key.user_id)
                    .filter(|(user, _)| !user.disabled)
                    .map(|(user, _)| (user.clone(), key.scopes, key.id))
            }))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        session: &NewSession,
        max_active: u32,
        idle_timeout: Duration,
    ) -> Result<(), StoreError> {
        self.refresh_tokens.lock().expect("lock").insert(
            session.refresh_token_hash.as_bytes().to_vec(),
            (session.id, false),
        );
        // One lock around the insert and the eviction: atomic.
        let mut sessions = self.sessions.lock().expect("lock");
        let sequence = sessions.len();
        sessions.insert(
            session.id,
            FakeSession {
                session: session.clone(),
                last_used: session.created_at,
                revoked: false,
                sequence,
            },
        );
        let now = session.created_at;
        let mut active: Vec<&mut FakeSession> = sessions
            .values_mut()
            .filter(|s| s.session.user_id == session.user_id && s.is_active(now, idle_timeout))
            .collect();
        // Most recently used first; the least recently used are ended.
        active.sort_by_key(|s| std::cmp::Reverse((s.last_used, s.session.created_at, s.sequence)));
        for evicted in active.into_iter().skip(max_active as usize) {
            evicted.revoked = true;
        }
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
        Ok(tokens.get(token.as_bytes()).and_then(|(session_id, used)| {
            sessions.get(session_id).map(|session| RefreshTokenOwner {
                session_id: *session_id,
                user_id: session.session.user_id,
                scopes: session.session.scopes,
                already_used: *used,
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
        page: &PageRequest,
    ) -> Result<Page<SessionInfo>, StoreError> {
        let sessions = self.sessions.lock().expect("lock");
        let listed: Vec<SessionInfo> = sessions
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
            .collect();
        // Most recently used first, the id breaking ties: the store's order.
        let time = |text: &str| {
            text.parse()
                .ok()
                .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        };
        paginate(
            listed,
            page,
            |s| {
                (
                    std::cmp::Reverse(s.last_used_at),
                    std::cmp::Reverse(s.created_at),
                    s.id.to_string(),
                )
            },
            |s| {
                format!(
                    "{}|{}|{}",
                    s.last_used_at.unix_timestamp(),
                    s.created_at.unix_timestamp(),
                    s.id
                )
            },
            |cursor| {
                let mut parts = cursor.split('|');
                Some((
                    std::cmp::Reverse(time(parts.next()?)?),
                    std::cmp::Reverse(time(parts.next()?)?),
                    parts.next()?.to_owned(),
                ))
            },
        )
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

/// One page of `items`, sorted by `sort_key`: those whose key comes after
/// the cursor's (`read_cursor` gives the key a cursor names, `None` for a
/// cursor this fake did not make), with `cursor_of` the last item's cursor
/// when more follow. Keyset paging, like the real store.
fn paginate<T, K: Ord>(
    mut items: Vec<T>,
    page: &PageRequest,
    sort_key: impl Fn(&T) -> K,
    cursor_of: impl Fn(&T) -> String,
    read_cursor: impl Fn(&str) -> Option<K>,
) -> Result<Page<T>, StoreError> {
    items.sort_by_key(&sort_key);
    if let Some(cursor) = &page.after {
        let after = read_cursor(cursor.as_str()).ok_or(StoreError::InvalidCursor)?;
        items.retain(|item| sort_key(item) > after);
    }
    let limit = page.limit as usize;
    let more = items.len() > limit;
    items.truncate(limit);
    let next = items
        .last()
        .filter(|_| more)
        .map(|item| PageCursor::new(cursor_of(item)));
    Ok(Page { items, next })
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

/// A service over fresh fakes, with handles on each.
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

impl portcullis_domain::ports::AttemptLimiter for CountingLimiter {
    fn check_attempt(
        &self,
        client_ip: Option<std::net::IpAddr>,
        username: &str,
    ) -> Result<(), portcullis_domain::ports::RateLimited> {
        let mut seen = self.seen.lock().expect("lock");
        seen.push((client_ip, username.to_owned()));
        let used = seen.iter().filter(|(_, name)| name == username).count();
        match *self.budget.lock().expect("lock") {
            Some(budget) if used > budget => Err(portcullis_domain::ports::RateLimited {
                retry_after: Duration::from_millis(1500),
            }),
            _ => Ok(()),
        }
    }

    fn check_api_key_creation(
        &self,
        user_id: UserId,
    ) -> Result<(), portcullis_domain::ports::RateLimited> {
        let mut creations = self.creations.lock().expect("lock");
        creations.push(user_id);
        let used = creations.iter().filter(|id| **id == user_id).count();
        match *self.creation_budget.lock().expect("lock") {
            Some(budget) if used > budget => Err(portcullis_domain::ports::RateLimited {
                retry_after: Duration::from_millis(2500),
            }),
            _ => Ok(()),
        }
    }
}

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
