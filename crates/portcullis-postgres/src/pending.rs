//! Stubs while the store is being written: every operation fails. Removed
//! once each trait has its real implementation.

use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::ports::{
    ActiveSession, ApiKeyStore, AttemptBudget, AuthenticatedKey, RateLimited, SessionStore,
    SharedAttemptCounter, SigningKeyStore, StoreCopy, UserStore,
};
use portcullis_domain::{
    AdminUserChanges, ApiKeyHash, ApiKeyId, ApiKeyInfo, KeyRotation, NewApiKey, NewSession,
    NewUser, Page, PageRequest, PasswordHashString, ProfileChanges, RefreshOutcome,
    RefreshTokenHash, RefreshTokenOwner, Role, RotationOutcome, SessionId, SessionInfo, StoreError,
    StoreSnapshot, StoredSigningKey, User, UserCredentials, UserId, UserListQuery, UserPage,
    Username,
};
use time::OffsetDateTime;

use crate::PostgresStore;

fn pending() -> StoreError {
    StoreError::Failed("not implemented yet".to_owned())
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn insert_user(&self, _new_user: &NewUser) -> Result<(), StoreError> {
        Err(pending())
    }
    async fn find_credentials(
        &self,
        _username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        Err(pending())
    }
    async fn find_user(&self, _id: UserId) -> Result<Option<User>, StoreError> {
        Err(pending())
    }
    async fn update_password_hash(
        &self,
        _id: UserId,
        _hash: &PasswordHashString,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Err(pending())
    }
    async fn update_profile(
        &self,
        _id: UserId,
        _changes: &ProfileChanges,
        _now: OffsetDateTime,
    ) -> Result<User, StoreError> {
        Err(pending())
    }
    async fn set_disabled(
        &self,
        _username: &Username,
        _disabled: bool,
        _now: OffsetDateTime,
    ) -> Result<User, StoreError> {
        Err(pending())
    }
    async fn set_role(
        &self,
        _username: &Username,
        _role: Role,
        _now: OffsetDateTime,
    ) -> Result<User, StoreError> {
        Err(pending())
    }
    async fn change_password(
        &self,
        _id: UserId,
        _hash: &PasswordHashString,
        _keep_session: Option<SessionId>,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Err(pending())
    }
    async fn delete_user(&self, _id: UserId) -> Result<(), StoreError> {
        Err(pending())
    }
    async fn list_users(&self, _query: &UserListQuery) -> Result<UserPage, StoreError> {
        Err(pending())
    }
    async fn admin_update_user(
        &self,
        _id: UserId,
        _changes: &AdminUserChanges,
        _now: OffsetDateTime,
    ) -> Result<User, StoreError> {
        Err(pending())
    }
    async fn check_health(&self) -> Result<(), StoreError> {
        self.run("check_health", |client| async move {
            let statement = client.prepare_cached("SELECT 1").await?;
            client.query_one(&statement, &[]).await?;
            Ok(())
        })
        .await
    }
    async fn ensure_writable(&self) -> Result<(), StoreError> {
        self.probe_write().await
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(
        &self,
        _session: &NewSession,
        _max_active: u32,
        _idle_timeout: Duration,
    ) -> Result<(), StoreError> {
        Err(pending())
    }
    async fn find_active_session(
        &self,
        _session_id: SessionId,
        _user_id: UserId,
        _now: OffsetDateTime,
        _idle_timeout: Duration,
    ) -> Result<Option<ActiveSession>, StoreError> {
        Err(pending())
    }
    async fn rotate_refresh_token(
        &self,
        _presented: &RefreshTokenHash,
        _replacement: &RefreshTokenHash,
        _now: OffsetDateTime,
        _idle_timeout: Duration,
    ) -> Result<RefreshOutcome, StoreError> {
        Err(pending())
    }
    async fn find_refresh_token_owner(
        &self,
        _token: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenOwner>, StoreError> {
        Err(pending())
    }
    async fn revoke_session(
        &self,
        _session_id: SessionId,
        _user_id: UserId,
        _now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(pending())
    }
    async fn revoke_user_sessions(
        &self,
        _user_id: UserId,
        _except: Option<SessionId>,
        _now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        Err(pending())
    }
    async fn list_active_sessions(
        &self,
        _user_id: UserId,
        _now: OffsetDateTime,
        _idle_timeout: Duration,
        _page: &PageRequest,
    ) -> Result<Page<SessionInfo>, StoreError> {
        Err(pending())
    }
    async fn purge_dead_sessions(
        &self,
        _now: OffsetDateTime,
        _idle_timeout: Duration,
    ) -> Result<u64, StoreError> {
        Err(pending())
    }
}

#[async_trait]
impl ApiKeyStore for PostgresStore {
    async fn create_api_key(&self, _key: &NewApiKey, _max_live: u32) -> Result<(), StoreError> {
        Err(pending())
    }
    async fn list_api_keys(
        &self,
        _user_id: UserId,
        _page: &PageRequest,
    ) -> Result<Page<ApiKeyInfo>, StoreError> {
        Err(pending())
    }
    async fn revoke_api_key(
        &self,
        _id: ApiKeyId,
        _user_id: UserId,
        _now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(pending())
    }
    async fn authenticate_api_key(
        &self,
        _hash: &ApiKeyHash,
        _now: OffsetDateTime,
    ) -> Result<Option<AuthenticatedKey>, StoreError> {
        Err(pending())
    }
}

#[async_trait]
impl SigningKeyStore for PostgresStore {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        Err(pending())
    }
    async fn install_signing_keys(&self, _keys: &[StoredSigningKey]) -> Result<bool, StoreError> {
        Err(pending())
    }
    async fn rotate_signing_keys(
        &self,
        _rotation: &KeyRotation,
    ) -> Result<RotationOutcome, StoreError> {
        Err(pending())
    }
    async fn delete_retired_signing_keys(&self, _now: OffsetDateTime) -> Result<u64, StoreError> {
        Err(pending())
    }
}

#[async_trait]
impl StoreCopy for PostgresStore {
    async fn export_snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        Err(pending())
    }
    async fn import_snapshot(&self, _snapshot: &StoreSnapshot) -> Result<(), StoreError> {
        Err(pending())
    }
}

#[async_trait]
impl SharedAttemptCounter for PostgresStore {
    async fn spend_attempt(
        &self,
        _key: &[u8],
        _budget: AttemptBudget,
        _now: OffsetDateTime,
    ) -> Result<Result<(), RateLimited>, StoreError> {
        Err(pending())
    }
    async fn forget_refilled_attempts(&self, _now: OffsetDateTime) -> Result<u64, StoreError> {
        Err(pending())
    }
}
