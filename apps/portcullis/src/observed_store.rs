//! The store as the server uses it: the configured backend, with the one
//! outcome only the store sees counted on the way out.
//!
//! A replayed refresh token reaches the client as `invalid_grant`, exactly
//! like an unknown one (on purpose), so the HTTP layer cannot tell them
//! apart; the domain knows but does no I/O and records no metrics. The
//! store's [`RefreshOutcome::Reused`] is where the reuse is visible, so it
//! is counted here, and every other call passes through unchanged.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::audit::{
    AuditAnchor, AuditContext, AuditEntry, AuditQuery, AuditRecord, SealedAuditEntry,
};
use portcullis_domain::ports::{
    ActiveSession, ApiKeyStore, AuditStore, AuthenticatedKey, SessionStore, SigningKeyStore, Store,
    UserStore,
};
use portcullis_domain::{
    AdminUserChanges, ApiKeyHash, ApiKeyId, ApiKeyInfo, KeyRotation, NewApiKey, NewSession,
    NewUser, Page, PageRequest, PasswordHashString, ProfileChanges, RefreshOutcome,
    RefreshTokenHash, RefreshTokenOwner, Role, RotationOutcome, SessionId, SessionInfo, StoreError,
    StoredSigningKey, User, UserCredentials, UserId, UserListQuery, UserPage, Username,
};
use time::OffsetDateTime;

/// Refresh tokens presented again after they were rotated: each ended its
/// session.
pub const REFRESH_TOKEN_REUSE_TOTAL: &str = "portcullis_refresh_token_reuse_total";

/// The configured store, counting refresh-token reuse.
pub(crate) struct ObservedStore {
    inner: Arc<dyn Store>,
}

impl ObservedStore {
    /// Wraps `inner`.
    pub(crate) fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Self { inner })
    }
}

/// Gives the metrics of this module their help text.
pub(crate) fn describe() {
    metrics::describe_counter!(
        REFRESH_TOKEN_REUSE_TOTAL,
        metrics::Unit::Count,
        "Refresh tokens presented again after rotation; each ended its whole session."
    );
}

/// Implements `$store` for [`ObservedStore`]: the methods in braces as
/// written, each listed one by passing the call to `self.inner`.
/// (`#[async_trait]` is applied here, outside, because it cannot see into a
/// macro call inside an impl.)
macro_rules! observed {
    (
        impl $store:ident { $($own:tt)* }
        $(async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*
    ) => {
        #[async_trait]
        impl $store for ObservedStore {
            $($own)*
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

observed! {
    impl UserStore {}
    async fn insert_user(&self, new_user: &NewUser, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn find_credentials(&self, username: &Username) -> Result<Option<UserCredentials>, StoreError>;
    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    async fn update_password_hash(&self, id: UserId, hash: &PasswordHashString, now: OffsetDateTime) -> Result<(), StoreError>;
    async fn update_profile(&self, id: UserId, changes: &ProfileChanges, now: OffsetDateTime, audit: &AuditRecord) -> Result<User, StoreError>;
    async fn set_disabled(&self, username: &Username, disabled: bool, now: OffsetDateTime, audit: &AuditRecord) -> Result<User, StoreError>;
    async fn set_role(&self, username: &Username, role: Role, now: OffsetDateTime, audit: &AuditRecord) -> Result<User, StoreError>;
    async fn change_password(&self, id: UserId, hash: &PasswordHashString, keep_session: Option<SessionId>, now: OffsetDateTime, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn delete_user(&self, id: UserId, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn list_users(&self, query: &UserListQuery) -> Result<UserPage, StoreError>;
    async fn admin_update_user(&self, id: UserId, changes: &AdminUserChanges, now: OffsetDateTime, audit: &AuditRecord) -> Result<User, StoreError>;
    async fn check_health(&self) -> Result<(), StoreError>;
    async fn ensure_writable(&self) -> Result<(), StoreError>;
}

observed! {
    impl SessionStore {
        async fn rotate_refresh_token(
            &self,
            presented: &RefreshTokenHash,
            replacement: &RefreshTokenHash,
            now: OffsetDateTime,
            idle_timeout: Duration,
            context: &AuditContext,
        ) -> Result<RefreshOutcome, StoreError> {
            let outcome = self
                .inner
                .rotate_refresh_token(presented, replacement, now, idle_timeout, context)
                .await;
            if let Ok(RefreshOutcome::Reused { .. }) = &outcome {
                metrics::counter!(REFRESH_TOKEN_REUSE_TOTAL).increment(1);
            }
            outcome
        }
    }
    async fn create_session(&self, session: &NewSession, max_active: u32, idle_timeout: Duration, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn find_active_session(&self, session_id: SessionId, user_id: UserId, now: OffsetDateTime, idle_timeout: Duration) -> Result<Option<ActiveSession>, StoreError>;
    async fn find_refresh_token_owner(&self, token: &RefreshTokenHash) -> Result<Option<RefreshTokenOwner>, StoreError>;
    async fn revoke_session(&self, session_id: SessionId, user_id: UserId, now: OffsetDateTime, audit: &AuditRecord) -> Result<bool, StoreError>;
    async fn revoke_user_sessions(&self, user_id: UserId, except: Option<SessionId>, now: OffsetDateTime, context: &AuditContext) -> Result<u64, StoreError>;
    async fn list_active_sessions(&self, user_id: UserId, now: OffsetDateTime, idle_timeout: Duration, page: &PageRequest) -> Result<Page<SessionInfo>, StoreError>;
    async fn purge_dead_sessions(&self, now: OffsetDateTime, idle_timeout: Duration) -> Result<u64, StoreError>;
}

observed! {
    impl ApiKeyStore {}
    async fn create_api_key(&self, key: &NewApiKey, max_live: u32, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn list_api_keys(&self, user_id: UserId, page: &PageRequest) -> Result<Page<ApiKeyInfo>, StoreError>;
    async fn revoke_api_key(&self, id: ApiKeyId, user_id: UserId, now: OffsetDateTime, audit: &AuditRecord) -> Result<bool, StoreError>;
    async fn authenticate_api_key(&self, hash: &ApiKeyHash, now: OffsetDateTime) -> Result<Option<AuthenticatedKey>, StoreError>;
}

observed! {
    impl SigningKeyStore {}
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError>;
    async fn install_signing_keys(&self, keys: &[StoredSigningKey], audit: &AuditRecord) -> Result<bool, StoreError>;
    async fn rotate_signing_keys(&self, rotation: &KeyRotation, audit: &AuditRecord) -> Result<RotationOutcome, StoreError>;
    async fn delete_retired_signing_keys(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

observed! {
    impl AuditStore {}
    async fn append_audit_event(&self, record: &AuditRecord) -> Result<u64, StoreError>;
    async fn list_audit_events(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError>;
    async fn audit_anchor(&self) -> Result<AuditAnchor, StoreError>;
    async fn audit_chain_page(&self, after_seq: u64, limit: u32) -> Result<Vec<SealedAuditEntry>, StoreError>;
    async fn prune_audit_events(&self, before: OffsetDateTime, context: &AuditContext) -> Result<u64, StoreError>;
}
