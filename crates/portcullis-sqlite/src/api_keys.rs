//! [`ApiKeyStore`] for [`SqliteStore`].

use async_trait::async_trait;
use portcullis_domain::audit::AuditRecord;
use portcullis_domain::ports::{ApiKeyStore, AuthenticatedKey};
use portcullis_domain::{
    ApiKeyHash, ApiKeyId, ApiKeyInfo, NewApiKey, Page, PageCursor, PageRequest, StoreError, User,
    UserId,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::audit::append;
use crate::cursors::read_api_key_cursor;
use crate::rows::{
    API_KEY_INFO_COLUMNS, ApiKeyInfoRow, JOINED_USER_COLUMNS, USER_COLUMN_COUNT, UserRow,
    api_key_id, api_key_scope_set, to_unix,
};
use crate::store::{SqliteStore, user_gone_is_not_found};

/// How often, at most, a key's `last_used_at` is written, in seconds. Finer
/// would turn every authenticated request into a write; coarser would make
/// the owner's listing less useful.
const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn create_api_key(
        &self,
        key: &NewApiKey,
        max_live: u32,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let audit_key = self.audit_key();
        let audit = audit.clone();
        let id = key.id.to_string();
        let user_id = key.user_id.to_string();
        let name = key.name.as_str().to_owned();
        let prefix = key.prefix.clone();
        let key_hash = key.key_hash.as_bytes().to_vec();
        let scope = key.scopes.to_string();
        let created_at = to_unix(key.created_at);
        let expires_at = key.expires_at.map(to_unix);
        self.run("create_api_key", move |connection| {
            // The count and the insert under one write lock, so concurrent
            // creations cannot each see room for one more. The foreign key
            // decides a race with the owner's deletion, and the loser is told
            // the user is gone.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let live: i64 = transaction
                .prepare_cached(
                    "SELECT count(*) FROM api_keys \
                     WHERE user_id = ?1 AND revoked_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > ?2)",
                )?
                .query_row(params![user_id, created_at], |row| row.get(0))?;
            if live >= i64::from(max_live) {
                return Err(StoreError::ApiKeyLimitReached.into());
            }
            transaction
                .prepare_cached(
                    "INSERT INTO api_keys \
                     (id, user_id, name, prefix, key_hash, scope, created_at, \
                      last_used_at, expires_at, revoked_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, NULL)",
                )?
                .execute(params![
                    id, user_id, name, prefix, key_hash, scope, created_at, expires_at
                ])
                .map_err(user_gone_is_not_found)?;
            append(&transaction, audit_key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn list_api_keys(
        &self,
        user_id: UserId,
        page: &PageRequest,
    ) -> Result<Page<ApiKeyInfo>, StoreError> {
        let user_id = user_id.to_string();
        let after = page.after.as_ref().map(read_api_key_cursor).transpose()?;
        let (after_created, after_id) = after.unzip();
        let limit = usize::try_from(page.limit.max(1)).unwrap_or(1);
        // One row more than asked for tells whether there is a next page.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        self.run("list_api_keys", move |connection| {
            // Found through the `api_keys_user_id` index; `id` last makes the
            // order total, so keys created in the same second never swap
            // places between calls, and the cursor condition is exactly
            // "after the last key of the previous page" in that order.
            // Expired keys are listed on purpose: the owner should see that
            // they exist and have run out.
            let rows = connection
                .prepare_cached(&format!(
                    "SELECT {API_KEY_INFO_COLUMNS} FROM api_keys \
                     WHERE user_id = ?1 AND revoked_at IS NULL \
                     AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id > ?3)) \
                     ORDER BY created_at DESC, id \
                     LIMIT ?4"
                ))?
                .query_map(
                    params![user_id, after_created, after_id, fetch],
                    ApiKeyInfoRow::read,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let mut keys = rows
                .into_iter()
                .map(ApiKeyInfo::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            let more = keys.len() > limit;
            keys.truncate(limit);
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
        let audit_key = self.audit_key();
        let audit = audit.clone();
        let id = id.to_string();
        let user_id = user_id.to_string();
        let now = to_unix(now);
        self.run("revoke_api_key", move |connection| {
            // The owner is part of the condition, so someone else's key is
            // indistinguishable from a missing one.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = transaction
                .prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?3 \
                     WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                )?
                .execute(params![id, user_id, now])?;
            if changed != 1 {
                // Nothing revoked: nothing to record, nothing to commit.
                return Ok(false);
            }
            append(&transaction, audit_key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(true)
        })
        .await
    }

    async fn authenticate_api_key(
        &self,
        hash: &ApiKeyHash,
        now: OffsetDateTime,
    ) -> Result<Option<AuthenticatedKey>, StoreError> {
        let hash = hash.as_bytes().to_vec();
        let now = to_unix(now);
        let last_used_cutoff = now.saturating_sub(LAST_USED_RESOLUTION_SECONDS);
        self.run("authenticate_api_key", move |connection| {
            // This runs on every request made with a key: one statement,
            // found through the unique index on `key_hash` and the one on
            // `users.id`.
            let found = connection
                .prepare_cached(&format!(
                    "SELECT {JOINED_USER_COLUMNS}, k.scope, k.id, k.last_used_at \
                     FROM api_keys AS k JOIN users AS u ON u.id = k.user_id \
                     WHERE k.key_hash = ?1 \
                     AND k.revoked_at IS NULL \
                     AND (k.expires_at IS NULL OR k.expires_at > ?2) \
                     AND u.disabled = 0"
                ))?
                .query_row(params![hash, now], |row| {
                    Ok((
                        UserRow::read(row, 0)?,
                        row.get::<_, String>(USER_COLUMN_COUNT)?,
                        row.get::<_, String>(USER_COLUMN_COUNT + 1)?,
                        row.get::<_, Option<i64>>(USER_COLUMN_COUNT + 2)?,
                    ))
                })
                .optional()?;
            let Some((user, scope, id, last_used_at)) = found else {
                return Ok(None);
            };
            // Parsed before anything is written, so a corrupt row fails the
            // call without recording a use.
            let user = User::try_from(user)?;
            let scopes = api_key_scope_set(&scope)?;
            let key_id = api_key_id(&id)?;
            if last_used_at.is_none_or(|last_used_at| last_used_at <= last_used_cutoff) {
                record_use(connection, &id, now, last_used_cutoff);
            }
            Ok(Some(AuthenticatedKey {
                user,
                scopes,
                key_id,
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
/// request because its bookkeeping could not be written (the write lock
/// held past the busy timeout, a full disk) would turn a degraded database
/// into an outage for every API client. The failure is logged instead.
fn record_use(connection: &Connection, id: &str, now: i64, cutoff: i64) {
    let written = connection
        .prepare_cached(
            "UPDATE api_keys SET last_used_at = ?2 \
             WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
        )
        .and_then(|mut statement| statement.execute(params![id, now, cutoff]));
    if let Err(error) = written {
        // SQLite's message names tables and columns, never bound values.
        tracing::warn!(%error, "authenticate_api_key: could not record the key's last use");
    }
}

/// Revokes every not-yet-revoked API key of `user_id` at `now`; returns how
/// many. For disabling an account, together with its sessions.
pub(crate) fn revoke_user_api_keys(
    connection: &Connection,
    user_id: &str,
    now: i64,
) -> Result<usize, rusqlite::Error> {
    connection
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![user_id, now])
}
