//! [`ApiKeyStore`] for [`PostgresStore`].

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use portcullis_domain::audit::AuditRecord;
use portcullis_domain::ports::{ApiKeyStore, AuthenticatedKey};
use portcullis_domain::{
    ApiKeyHash, ApiKeyId, ApiKeyInfo, NewApiKey, Page, PageCursor, PageRequest, StoreError, User,
    UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{
    API_KEY_INFO_COLUMNS, ApiKeyInfoRow, JOINED_USER_COLUMNS, USER_COLUMN_COUNT, UserRow,
    api_key_scope_set, to_unix,
};
use crate::sql;
use crate::store::{PostgresStore, describe, user_gone_is_not_found};

/// How often, at most, a key's `last_used_at` is written, in seconds. Finer
/// would turn every authenticated request into a write; coarser would make
/// the owner's listing less useful.
const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

#[async_trait]
impl ApiKeyStore for PostgresStore {
    async fn create_api_key(
        &self,
        key: &NewApiKey,
        max_live: u32,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let id = key.id.as_uuid();
        let user_id = key.user_id.as_uuid();
        let name = key.name.as_str();
        let prefix = key.prefix.as_str();
        let key_hash = key.key_hash.as_bytes();
        let scope = &key.scopes.to_string();
        let created_at = to_unix(key.created_at);
        let expires_at = key.expires_at.map(to_unix);
        self.run("create_api_key", move |mut client| async move {
            // The count and the insert under the owner's row lock, so
            // concurrent creations for one user take turns and cannot each
            // see room for one more. A deleted owner is not found.
            let transaction = client.transaction().await?;
            let owner = sql::query_opt(
                &transaction,
                "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
                &[&user_id],
            )
            .await?;
            if owner.is_none() {
                return Err(StoreError::NotFound.into());
            }
            let live: i64 = sql::query_one(
                &transaction,
                "SELECT count(*) FROM api_keys \
                 WHERE user_id = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2)",
                &[&user_id, &created_at],
            )
            .await?
            .try_get(0)?;
            if live >= i64::from(max_live) {
                return Err(StoreError::ApiKeyLimitReached.into());
            }
            sql::execute(
                &transaction,
                "INSERT INTO api_keys \
                 (id, user_id, name, prefix, key_hash, scope, created_at, \
                  last_used_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, NULL)",
                &[
                    &id,
                    &user_id,
                    &name,
                    &prefix,
                    &key_hash,
                    scope,
                    &created_at,
                    &expires_at,
                ],
            )
            .await
            .map_err(user_gone_is_not_found)?;
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
            Ok(())
        })
        .await
    }

    async fn list_api_keys(
        &self,
        user_id: UserId,
        page: &PageRequest,
    ) -> Result<Page<ApiKeyInfo>, StoreError> {
        let user_id = user_id.as_uuid();
        let after = page
            .after
            .as_ref()
            .map(PageCursor::api_key_position)
            .transpose()?;
        let (after_created, after_id) = after.unzip();
        let limit = usize::try_from(page.limit.max(1)).unwrap_or(1);
        // One row more than asked for tells whether there is a next page.
        let fetch = i64::from(page.limit.max(1)) + 1;
        self.run("list_api_keys", move |client| async move {
            // Found through the `api_keys_user_id` index; `id` last makes the
            // order total, so keys created in the same second never swap
            // places between calls, and the cursor condition is exactly
            // "after the last key of the previous page" in that order.
            // Expired keys are listed on purpose: the owner should see that
            // they exist and have run out.
            let rows = sql::query(
                &client,
                &format!(
                    "SELECT {API_KEY_INFO_COLUMNS} FROM api_keys \
                     WHERE user_id = $1 AND revoked_at IS NULL \
                     AND ($2::BIGINT IS NULL OR created_at < $2 \
                          OR (created_at = $2 AND id > $3::UUID)) \
                     ORDER BY created_at DESC, id \
                     LIMIT $4"
                ),
                &[&user_id, &after_created, &after_id, &fetch],
            )
            .await?;
            let more = rows.len() > limit;
            let mut keys = Vec::with_capacity(limit.min(rows.len()));
            for row in rows.iter().take(limit) {
                keys.push(ApiKeyInfo::try_from(ApiKeyInfoRow::read(row)?)?);
            }
            let next = keys
                .last()
                .filter(|_| more)
                .map(|key| PageCursor::after_api_key(to_unix(key.created_at), key.id.as_uuid()));
            Ok(Page { items: keys, next })
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        id: ApiKeyId,
        user_id: UserId,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let id = id.as_uuid();
        let user_id = user_id.as_uuid();
        let now = to_unix(now);
        self.run("revoke_api_key", move |mut client| async move {
            // The owner is part of the condition, so someone else's key is
            // indistinguishable from a missing one.
            let transaction = client.transaction().await?;
            let changed = sql::execute(
                &transaction,
                "UPDATE api_keys SET revoked_at = $3 \
                 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&id, &user_id, &now],
            )
            .await?;
            if changed != 1 {
                // Nothing revoked: nothing to record, nothing to commit.
                return Ok(false);
            }
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn authenticate_api_key(
        &self,
        hash: &ApiKeyHash,
        now: OffsetDateTime,
    ) -> Result<Option<AuthenticatedKey>, StoreError> {
        let hash = hash.as_bytes();
        let now = to_unix(now);
        let last_used_cutoff = now.saturating_sub(LAST_USED_RESOLUTION_SECONDS);
        self.run("authenticate_api_key", move |client| async move {
            // This runs on every request made with a key: one statement,
            // found through the unique index on `key_hash` and the one on
            // `users.id`.
            let found = sql::query_opt(
                &client,
                &format!(
                    "SELECT {JOINED_USER_COLUMNS}, k.scope, k.id, k.last_used_at \
                     FROM api_keys AS k JOIN users AS u ON u.id = k.user_id \
                     WHERE k.key_hash = $1 \
                     AND k.revoked_at IS NULL \
                     AND (k.expires_at IS NULL OR k.expires_at > $2) \
                     AND NOT u.disabled"
                ),
                &[&hash, &now],
            )
            .await?;
            let Some(row) = found else {
                return Ok(None);
            };
            // Parsed before anything is written, so a corrupt row fails the
            // call without recording a use.
            let user = User::try_from(UserRow::read(&row, 0)?)?;
            let scope: String = row.try_get(USER_COLUMN_COUNT)?;
            let scopes = api_key_scope_set(&scope)?;
            let id: Uuid = row.try_get(USER_COLUMN_COUNT + 1)?;
            let last_used_at: Option<i64> = row.try_get(USER_COLUMN_COUNT + 2)?;
            if last_used_at.is_none_or(|last_used_at| last_used_at <= last_used_cutoff) {
                record_use(&client, id, now, last_used_cutoff).await;
            }
            Ok(Some(AuthenticatedKey {
                user,
                scopes,
                key_id: ApiKeyId::from_uuid(id),
            }))
        })
        .await
    }
}

/// Sets a key's `last_used_at` to `now` unless it was set after `cutoff`.
///
/// A separate statement from the lookup, outside any transaction: a revoke
/// landing in between only lets this one request through, exactly as if the
/// revoke had come a moment later. The condition is repeated in the
/// statement, so of concurrent requests at most one writes.
///
/// Best effort: the key has already been found usable, and failing the
/// request because its bookkeeping could not be written (a standby, a full
/// disk) would turn a degraded database into an outage for every API
/// client. The failure is logged instead.
async fn record_use(client: &impl GenericClient, id: Uuid, now: i64, cutoff: i64) {
    let written = sql::execute(
        client,
        "UPDATE api_keys SET last_used_at = $2 \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
        &[&id, &now, &cutoff],
    )
    .await;
    if let Err(error) = written {
        tracing::warn!(
            error = %describe(&error),
            "authenticate_api_key: could not record the key's last use"
        );
    }
}

/// Revokes every not-yet-revoked API key of `user_id` at `now`; returns how
/// many. For disabling an account, together with its sessions.
pub(crate) async fn revoke_user_api_keys(
    client: &impl GenericClient,
    user_id: Uuid,
    now: i64,
) -> Result<u64, tokio_postgres::Error> {
    sql::execute(
        client,
        "UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        &[&user_id, &now],
    )
    .await
}
