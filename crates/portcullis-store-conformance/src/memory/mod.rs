//! [`MemoryStore`]: every store promise kept in memory, behind one lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::audit::{
    AuditContext, AuditEvent, AuditKey, AuditRecord, SessionEndReason, missing_key_error,
};
use portcullis_domain::ports::{
    ActiveSession, ApiKeyStore, AuthenticatedKey, SessionStore, UserStore,
};
use portcullis_domain::{
    AdminUserChanges, ApiKeyHash, ApiKeyId, ApiKeyInfo, ConflictField, EmailAddress, MAX_PAGE_SIZE,
    NewApiKey, NewSession, NewUser, Page, PageCursor, PageRequest, PasswordHashString,
    ProfileChanges, RefreshOutcome, RefreshTokenHash, RefreshTokenOwner, Role, SessionId,
    SessionInfo, StoreError, StoredSigningKey, User, UserCredentials, UserId, UserListQuery,
    UserPage, Username,
};
use time::OffsetDateTime;

mod audit;
mod signing_keys;

use audit::AuditLog;

/// A [`Store`](portcullis_domain::ports::Store) in memory, for tests of the
/// use-cases: it keeps every promise the conformance suite checks (and runs
/// it, in this crate's tests), so a domain test against it tests what a real
/// backend would do. All state sits behind one lock, which makes every call
/// atomic.
///
/// Every change appends its audit event under the same lock, after the
/// change, so a change and its event happen together or not at all. A new
/// store holds the suite's [`TestAuditKey`](crate::fixtures::TestAuditKey),
/// so tests that do not care about the audit log need not give it one;
/// [`set_audit_key`](Self::set_audit_key) replaces it, and
/// [`without_audit_key`](Self::without_audit_key) makes a store that
/// refuses every audited change, as a real one opened without the master
/// key does.
///
/// Two handles exist for tests: [`hash_updates`](Self::hash_updates)
/// counts rehash writes, and [`write_locked`](Self::write_locked) makes
/// [`UserStore::ensure_writable`] fail as a busy database would.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    audit_key: AuditKeySlot,
    /// How many times [`UserStore::update_password_hash`] was called.
    pub hash_updates: AtomicUsize,
    /// While set, [`UserStore::ensure_writable`] answers
    /// [`StoreError::Unavailable`].
    pub write_locked: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, StoredUser>,
    sessions: HashMap<SessionId, StoredSession>,
    /// Refresh-token digest → its session and whether it was rotated away.
    refresh_tokens: HashMap<Vec<u8>, (SessionId, bool)>,
    api_keys: Vec<StoredKey>,
    /// Oldest first, like the listing.
    signing_keys: Vec<StoredSigningKey>,
    audit: AuditLog,
    /// Hands out creation positions: users for the listing, sessions to
    /// break ties between equal times. Never reused.
    next_position: u64,
}

#[derive(Debug)]
struct StoredUser {
    user: User,
    password_hash: PasswordHashString,
    /// Where the user sorts in the listing.
    position: u64,
}

#[derive(Debug)]
struct StoredSession {
    session: NewSession,
    last_used_at: OffsetDateTime,
    revoked: bool,
    position: u64,
}

impl StoredSession {
    fn is_active(&self, now: OffsetDateTime, idle_timeout: Duration) -> bool {
        !self.revoked
            && self.session.expires_at > now
            && self
                .last_used_at
                .checked_add(time::Duration::try_from(idle_timeout).unwrap_or(time::Duration::MAX))
                .is_none_or(|idle_end| idle_end > now)
    }

    /// Not revoked and before its absolute expiry: what a revocation ends.
    fn is_unrevoked_and_unexpired(&self, now: OffsetDateTime) -> bool {
        !self.revoked && self.session.expires_at > now
    }
}

#[derive(Debug)]
struct StoredKey {
    key: NewApiKey,
    last_used_at: Option<OffsetDateTime>,
    revoked: bool,
}

/// How often a key's use is recorded at most.
const LAST_USED_RESOLUTION: time::Duration = time::Duration::minutes(1);

/// The key the audit chain is MACed with, if the store was given one.
struct AuditKeySlot(RwLock<Option<Arc<dyn AuditKey>>>);

impl std::fmt::Debug for AuditKeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let installed = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        f.debug_tuple("AuditKeySlot")
            .field(&if installed { "installed" } else { "missing" })
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store holding [`test_audit_key`](crate::fixtures::test_audit_key).
    pub fn new() -> Self {
        let store = Self::without_audit_key();
        store.set_audit_key(crate::fixtures::test_audit_key());
        store
    }

    /// An empty store with no audit key: every change that would append an
    /// event fails with [`missing_key_error`] and changes nothing.
    pub fn without_audit_key() -> Self {
        Self {
            state: Mutex::default(),
            audit_key: AuditKeySlot(RwLock::new(None)),
            hash_updates: AtomicUsize::default(),
            write_locked: AtomicBool::default(),
        }
    }

    /// Gives the store the key its audit chain is MACed with from now on,
    /// replacing any earlier one.
    pub fn set_audit_key(&self, key: Arc<dyn AuditKey>) {
        *self
            .audit_key
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
    }

    /// The audit key, read before a change so that a store without one
    /// refuses the change before making any of it.
    fn audit_key(&self) -> Result<Arc<dyn AuditKey>, StoreError> {
        self.audit_key
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(missing_key_error)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a test failing anyway; the
        // state is still what the last completed call left.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn position(&mut self) -> u64 {
        self.next_position += 1;
        self.next_position
    }

    fn user_by_name(&mut self, username: &Username) -> Result<&mut StoredUser, StoreError> {
        self.users
            .values_mut()
            .find(|stored| &stored.user.username == username)
            .ok_or(StoreError::NotFound)
    }

    fn email_is_free(&self, id: UserId, email: Option<&EmailAddress>) -> Result<(), StoreError> {
        let Some(email) = email else {
            return Ok(());
        };
        let taken = self.users.values().any(|stored| {
            stored.user.id != id && stored.user.email.canonical() == email.canonical()
        });
        if taken {
            Err(StoreError::Conflict(ConflictField::Email))
        } else {
            Ok(())
        }
    }

    fn is_last_enabled_admin(&self, id: UserId) -> bool {
        let is_admin = |user: &User| user.role == Role::Admin && !user.disabled;
        self.users
            .get(&id)
            .is_some_and(|stored| is_admin(&stored.user))
            && self
                .users
                .values()
                .filter(|stored| is_admin(&stored.user))
                .count()
                == 1
    }

    /// Ends every session and key of `id`.
    fn end_every_credential(&mut self, id: UserId) {
        for session in self.sessions.values_mut() {
            if session.session.user_id == id {
                session.revoked = true;
            }
        }
        for key in &mut self.api_keys {
            if key.key.user_id == id {
                key.revoked = true;
            }
        }
    }

    /// Narrows every unrevoked grant of `id` to `role`; an empty one ends.
    fn narrow_grants(&mut self, id: UserId, role: Role) {
        let allowed = role.allowed_scopes();
        for session in self.sessions.values_mut() {
            if session.session.user_id == id && !session.revoked {
                session.session.scopes = session.session.scopes.intersection(allowed);
                session.revoked = session.session.scopes.is_empty();
            }
        }
        for key in &mut self.api_keys {
            if key.key.user_id == id && !key.revoked {
                key.key.scopes = key.key.scopes.intersection(allowed);
                key.revoked = key.key.scopes.is_empty();
            }
        }
    }

    fn apply_profile(
        &mut self,
        id: UserId,
        email: Option<&EmailAddress>,
        full_name: Option<&Option<portcullis_domain::FullName>>,
    ) -> Result<User, StoreError> {
        self.email_is_free(id, email)?;
        let stored = self.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(email) = email {
            stored.user.email = email.clone();
        }
        if let Some(full_name) = full_name {
            stored.user.full_name = full_name.clone();
        }
        Ok(stored.user.clone())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, new_user: &NewUser, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        for stored in state.users.values() {
            if stored.user.username == new_user.user.username {
                return Err(StoreError::Conflict(ConflictField::Username));
            }
            if stored.user.email.canonical() == new_user.user.email.canonical() {
                return Err(StoreError::Conflict(ConflictField::Email));
            }
        }
        let key = self.audit_key()?;
        let position = state.position();
        state.users.insert(
            new_user.user.id,
            StoredUser {
                user: new_user.user.clone(),
                password_hash: new_user.password_hash.clone(),
                position,
            },
        );
        state.audit.append(&*key, audit);
        Ok(())
    }

    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        Ok(self
            .state()
            .users
            .values()
            .find(|stored| &stored.user.username == username)
            .map(|stored| UserCredentials {
                user: stored.user.clone(),
                password_hash: stored.password_hash.clone(),
            }))
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self
            .state()
            .users
            .get(&id)
            .map(|stored| stored.user.clone()))
    }

    async fn update_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.hash_updates.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state();
        let stored = state.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        stored.password_hash = hash.clone();
        Ok(())
    }

    async fn update_profile(
        &self,
        id: UserId,
        changes: &ProfileChanges,
        _now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError> {
        let mut state = self.state();
        if !state.users.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        state.email_is_free(id, changes.email.as_ref())?;
        let key = self.audit_key()?;
        let user = state.apply_profile(id, changes.email.as_ref(), changes.full_name.as_ref())?;
        state.audit.append(&*key, audit);
        Ok(user)
    }

    async fn set_disabled(
        &self,
        username: &Username,
        disabled: bool,
        _now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError> {
        let mut state = self.state();
        state.user_by_name(username)?;
        let key = self.audit_key()?;
        let stored = state.user_by_name(username)?;
        stored.user.disabled = disabled;
        let user = stored.user.clone();
        if disabled {
            state.end_every_credential(user.id);
        }
        state.audit.append(&*key, &audit.about(user.id));
        Ok(user)
    }

    async fn set_role(
        &self,
        username: &Username,
        role: Role,
        _now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError> {
        let mut state = self.state();
        state.user_by_name(username)?;
        let key = self.audit_key()?;
        let stored = state.user_by_name(username)?;
        stored.user.role = role;
        let user = stored.user.clone();
        state.narrow_grants(user.id, role);
        state.audit.append(&*key, &audit.about(user.id));
        Ok(user)
    }

    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        keep_session: Option<SessionId>,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.users.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        let key = self.audit_key()?;
        let stored = state.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        stored.password_hash = hash.clone();
        for (session_id, session) in &mut state.sessions {
            if session.session.user_id == id
                && Some(*session_id) != keep_session
                && session.is_unrevoked_and_unexpired(now)
            {
                session.revoked = true;
            }
        }
        state.audit.append(&*key, audit);
        Ok(())
    }

    async fn delete_user(&self, id: UserId, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.is_last_enabled_admin(id) {
            return Err(StoreError::LastAdmin);
        }
        if !state.users.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        let key = self.audit_key()?;
        state.users.remove(&id).ok_or(StoreError::NotFound)?;
        state
            .sessions
            .retain(|_, session| session.session.user_id != id);
        let State {
            sessions,
            refresh_tokens,
            api_keys,
            ..
        } = &mut *state;
        refresh_tokens.retain(|_, (session_id, _)| sessions.contains_key(session_id));
        api_keys.retain(|key| key.key.user_id != id);
        state.audit.append(&*key, audit);
        Ok(())
    }

    async fn list_users(&self, query: &UserListQuery) -> Result<UserPage, StoreError> {
        let after = match &query.after {
            None => 0,
            Some(cursor) => read_cursor(cursor, "users")?
                .parse()
                .map_err(|_| StoreError::InvalidCursor)?,
        };
        let limit = query.limit.clamp(1, MAX_PAGE_SIZE) as usize;
        let state = self.state();
        let mut matching: Vec<&StoredUser> = state
            .users
            .values()
            .filter(|stored| stored.position > after)
            .filter(|stored| {
                query.search.as_ref().is_none_or(|search| {
                    search.matches(stored.user.username.as_str(), &stored.user.email)
                })
            })
            .collect();
        matching.sort_by_key(|stored| stored.position);
        let more = matching.len() > limit;
        matching.truncate(limit);
        Ok(UserPage {
            next_cursor: matching
                .last()
                .filter(|_| more)
                .map(|stored| make_cursor("users", &stored.position.to_string())),
            users: matching
                .into_iter()
                .map(|stored| stored.user.clone())
                .collect(),
        })
    }

    async fn admin_update_user(
        &self,
        id: UserId,
        changes: &AdminUserChanges,
        _now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError> {
        let mut state = self.state();
        if !state.users.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        let demoted = changes.role == Some(Role::User) || changes.disabled == Some(true);
        if demoted && state.is_last_enabled_admin(id) {
            return Err(StoreError::LastAdmin);
        }
        state.email_is_free(id, changes.email.as_ref())?;
        let key = self.audit_key()?;
        let user = state.apply_profile(id, changes.email.as_ref(), changes.full_name.as_ref())?;
        let stored = state.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(disabled) = changes.disabled {
            stored.user.disabled = disabled;
        }
        if let Some(role) = changes.role {
            stored.user.role = role;
        }
        let user = User {
            disabled: stored.user.disabled,
            role: stored.user.role,
            ..user
        };
        if let Some(role) = changes.role {
            state.narrow_grants(id, role);
        }
        if changes.disabled == Some(true) {
            state.end_every_credential(id);
        }
        state.audit.append(&*key, audit);
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
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        session: &NewSession,
        max_active: u32,
        idle_timeout: Duration,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.users.contains_key(&session.user_id) {
            return Err(StoreError::NotFound);
        }
        let key = self.audit_key()?;
        let position = state.position();
        state.refresh_tokens.insert(
            session.refresh_token_hash.as_bytes().to_vec(),
            (session.id, false),
        );
        state.sessions.insert(
            session.id,
            StoredSession {
                session: session.clone(),
                last_used_at: session.created_at,
                revoked: false,
                position,
            },
        );
        let now = session.created_at;
        let mut active: Vec<&mut StoredSession> = state
            .sessions
            .values_mut()
            .filter(|s| s.session.user_id == session.user_id && s.is_active(now, idle_timeout))
            .collect();
        // Most recently used first; the rest past the cap are ended.
        active
            .sort_by_key(|s| std::cmp::Reverse((s.last_used_at, s.session.created_at, s.position)));
        let mut evicted_ids = Vec::new();
        for evicted in active.into_iter().skip(max_active as usize) {
            evicted.revoked = true;
            evicted_ids.push(evicted.session.id);
        }
        // The sessions the cap ended first, then the login, as every store
        // orders them.
        for session_id in evicted_ids {
            state.audit.append(
                &*key,
                &audit.with_event(AuditEvent::SessionEnded {
                    session_id,
                    reason: SessionEndReason::SessionCap,
                }),
            );
        }
        state.audit.append(&*key, audit);
        Ok(())
    }

    async fn find_active_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<Option<ActiveSession>, StoreError> {
        let state = self.state();
        let Some(session) = state.sessions.get(&session_id) else {
            return Ok(None);
        };
        if session.session.user_id != user_id || !session.is_active(now, idle_timeout) {
            return Ok(None);
        }
        Ok(state
            .users
            .get(&user_id)
            .filter(|stored| !stored.user.disabled)
            .map(|stored| ActiveSession {
                user: stored.user.clone(),
                scopes: session.session.scopes,
            }))
    }

    async fn rotate_refresh_token(
        &self,
        presented: &RefreshTokenHash,
        replacement: &RefreshTokenHash,
        now: OffsetDateTime,
        idle_timeout: Duration,
        context: &AuditContext,
    ) -> Result<RefreshOutcome, StoreError> {
        let mut state = self.state();
        let Some((session_id, used)) = state.refresh_tokens.get(presented.as_bytes()).copied()
        else {
            return Ok(RefreshOutcome::Rejected);
        };
        if state.refresh_tokens.contains_key(replacement.as_bytes()) {
            return Err(StoreError::Failed("replacement token collides".to_owned()));
        }
        let State {
            users,
            sessions,
            refresh_tokens,
            audit,
            ..
        } = &mut *state;
        let Some(session) = sessions.get_mut(&session_id) else {
            return Ok(RefreshOutcome::Rejected);
        };
        if used {
            let key = self.audit_key()?;
            session.revoked = true;
            audit.append(
                &*key,
                &context.record(
                    Some(session.session.user_id),
                    AuditEvent::RefreshTokenReused { session_id },
                ),
            );
            return Ok(RefreshOutcome::Reused { session_id });
        }
        let Some(user) = users
            .get(&session.session.user_id)
            .map(|stored| stored.user.clone())
            .filter(|user| !user.disabled)
        else {
            return Ok(RefreshOutcome::Rejected);
        };
        if !session.is_active(now, idle_timeout) {
            return Ok(RefreshOutcome::Rejected);
        }
        refresh_tokens.insert(presented.as_bytes().to_vec(), (session_id, true));
        refresh_tokens.insert(replacement.as_bytes().to_vec(), (session_id, false));
        session.last_used_at = now;
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
        let state = self.state();
        Ok(state
            .refresh_tokens
            .get(token.as_bytes())
            .and_then(|(session_id, used)| {
                state
                    .sessions
                    .get(session_id)
                    .map(|session| RefreshTokenOwner {
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
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.sessions.get_mut(&session_id) {
            Some(session)
                if session.session.user_id == user_id
                    && session.is_unrevoked_and_unexpired(now) =>
            {
                let key = self.audit_key()?;
                session.revoked = true;
                state.audit.append(&*key, audit);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        now: OffsetDateTime,
        context: &AuditContext,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let ended: Vec<SessionId> = state
            .sessions
            .iter()
            .filter(|(session_id, session)| {
                session.session.user_id == user_id
                    && Some(**session_id) != except
                    && session.is_unrevoked_and_unexpired(now)
            })
            .map(|(session_id, _)| *session_id)
            .collect();
        if ended.is_empty() {
            return Ok(0);
        }
        let key = self.audit_key()?;
        for session_id in &ended {
            if let Some(session) = state.sessions.get_mut(session_id) {
                session.revoked = true;
            }
        }
        let count = u64::try_from(ended.len()).unwrap_or(u64::MAX);
        state.audit.append(
            &*key,
            &context.record(
                Some(user_id),
                AuditEvent::SessionsEnded {
                    count,
                    kept_current: except.is_some(),
                },
            ),
        );
        Ok(count)
    }

    async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        idle_timeout: Duration,
        page: &PageRequest,
    ) -> Result<Page<SessionInfo>, StoreError> {
        let after = page
            .after
            .as_ref()
            .map(|cursor| -> Result<(i64, i64, String), StoreError> {
                let text = read_cursor(cursor, "sessions")?;
                let mut parts = text.splitn(3, '|');
                let mut number = || -> Result<i64, StoreError> {
                    parts
                        .next()
                        .and_then(|part| part.parse().ok())
                        .ok_or(StoreError::InvalidCursor)
                };
                let (last_used, created) = (number()?, number()?);
                let id = parts.next().ok_or(StoreError::InvalidCursor)?.to_owned();
                Ok((-last_used, -created, id))
            })
            .transpose()?;
        let idle = time::Duration::try_from(idle_timeout).unwrap_or(time::Duration::MAX);
        let state = self.state();
        let mut listed: Vec<SessionInfo> = state
            .sessions
            .values()
            .filter(|s| s.session.user_id == user_id && s.is_active(now, idle_timeout))
            .map(|s| SessionInfo {
                id: s.session.id,
                created_at: s.session.created_at,
                last_used_at: s.last_used_at,
                expires_at: s
                    .last_used_at
                    .checked_add(idle)
                    .map_or(s.session.expires_at, |idle_end| {
                        idle_end.min(s.session.expires_at)
                    }),
                ip: s.session.ip.clone(),
                user_agent: s.session.user_agent.clone(),
            })
            .collect();
        // Most recently used first, then most recently created, the id
        // breaking ties: a total order, so keyset paging is exact.
        let key = |s: &SessionInfo| {
            (
                -s.last_used_at.unix_timestamp(),
                -s.created_at.unix_timestamp(),
                s.id.to_string(),
            )
        };
        listed.sort_by_key(key);
        if let Some(after) = &after {
            listed.retain(|s| key(s) > *after);
        }
        Ok(page_of(listed, page.limit, |s| {
            make_cursor(
                "sessions",
                &format!(
                    "{}|{}|{}",
                    s.last_used_at.unix_timestamp(),
                    s.created_at.unix_timestamp(),
                    s.id
                ),
            )
        }))
    }

    async fn purge_dead_sessions(
        &self,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.sessions.len();
        state
            .sessions
            .retain(|_, session| session.is_active(now, idle_timeout));
        let State {
            sessions,
            refresh_tokens,
            ..
        } = &mut *state;
        refresh_tokens.retain(|_, (session_id, _)| sessions.contains_key(session_id));
        Ok((before - sessions.len()) as u64)
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(
        &self,
        key: &NewApiKey,
        max_live: u32,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.users.contains_key(&key.user_id) {
            return Err(StoreError::NotFound);
        }
        let live = state
            .api_keys
            .iter()
            .filter(|stored| {
                stored.key.user_id == key.user_id
                    && !stored.revoked
                    && stored.key.expires_at.is_none_or(|at| at > key.created_at)
            })
            .count();
        if live >= max_live as usize {
            return Err(StoreError::ApiKeyLimitReached);
        }
        let audit_key = self.audit_key()?;
        state.api_keys.push(StoredKey {
            key: key.clone(),
            last_used_at: None,
            revoked: false,
        });
        state.audit.append(&*audit_key, audit);
        Ok(())
    }

    async fn list_api_keys(
        &self,
        user_id: UserId,
        page: &PageRequest,
    ) -> Result<Page<ApiKeyInfo>, StoreError> {
        let after = page
            .after
            .as_ref()
            .map(|cursor| -> Result<(i64, String), StoreError> {
                let text = read_cursor(cursor, "keys")?;
                let (created, id) = text.split_once('|').ok_or(StoreError::InvalidCursor)?;
                let created: i64 = created.parse().map_err(|_| StoreError::InvalidCursor)?;
                Ok((-created, id.to_owned()))
            })
            .transpose()?;
        let state = self.state();
        let mut keys: Vec<ApiKeyInfo> = state
            .api_keys
            .iter()
            .filter(|stored| stored.key.user_id == user_id && !stored.revoked)
            .map(|stored| ApiKeyInfo {
                id: stored.key.id,
                name: stored.key.name.as_str().to_owned(),
                prefix: stored.key.prefix.clone(),
                scopes: stored.key.scopes,
                created_at: stored.key.created_at,
                last_used_at: stored.last_used_at,
                expires_at: stored.key.expires_at,
            })
            .collect();
        // Newest first, the id breaking ties.
        let key = |info: &ApiKeyInfo| (-info.created_at.unix_timestamp(), info.id.to_string());
        keys.sort_by_key(key);
        if let Some(after) = &after {
            keys.retain(|info| key(info) > *after);
        }
        Ok(page_of(keys, page.limit, |info| {
            make_cursor(
                "keys",
                &format!("{}|{}", info.created_at.unix_timestamp(), info.id),
            )
        }))
    }

    async fn revoke_api_key(
        &self,
        id: ApiKeyId,
        user_id: UserId,
        _now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state
            .api_keys
            .iter_mut()
            .find(|stored| stored.key.id == id && stored.key.user_id == user_id && !stored.revoked)
        {
            Some(stored) => {
                let key = self.audit_key()?;
                stored.revoked = true;
                state.audit.append(&*key, audit);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn authenticate_api_key(
        &self,
        hash: &ApiKeyHash,
        now: OffsetDateTime,
    ) -> Result<Option<AuthenticatedKey>, StoreError> {
        let mut state = self.state();
        let State {
            users, api_keys, ..
        } = &mut *state;
        let Some(stored) = api_keys.iter_mut().find(|stored| {
            stored.key.key_hash == *hash
                && !stored.revoked
                && stored.key.expires_at.is_none_or(|at| at > now)
        }) else {
            return Ok(None);
        };
        let Some(owner) = users
            .get(&stored.key.user_id)
            .filter(|owner| !owner.user.disabled)
        else {
            return Ok(None);
        };
        if stored
            .last_used_at
            .is_none_or(|last| last + LAST_USED_RESOLUTION <= now)
        {
            stored.last_used_at = Some(now);
        }
        Ok(Some(AuthenticatedKey {
            user: owner.user.clone(),
            scopes: stored.key.scopes,
            key_id: stored.key.id,
        }))
    }
}

/// This store's cursors: the listing's name and the sort key of the last
/// item, in plain text (opaque to callers all the same).
fn make_cursor(listing: &str, key: &str) -> PageCursor {
    PageCursor::new(format!("memory:{listing}:{key}"))
}

/// The key of a [`make_cursor`] cursor of `listing`.
fn read_cursor(cursor: &PageCursor, listing: &str) -> Result<String, StoreError> {
    cursor
        .as_str()
        .strip_prefix("memory:")
        .and_then(|rest| rest.strip_prefix(listing))
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or(StoreError::InvalidCursor)
}

/// The first `limit` (at least one) of `items`, with the last one's cursor
/// when more follow.
fn page_of<T>(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> PageCursor) -> Page<T> {
    let limit = limit.max(1) as usize;
    let more = items.len() > limit;
    items.truncate(limit);
    let next = items.last().filter(|_| more).map(cursor_of);
    Page { items, next }
}
