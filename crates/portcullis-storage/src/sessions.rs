//! [`SessionStore`] for [`SqliteStore`].

use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::ports::SessionStore;
use portcullis_domain::{NewSession, ScopeSet, SessionId, StoreError, User, UserId};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::rows::{JOINED_USER_COLUMNS, USER_COLUMN_COUNT, UserRow, scope_set, to_unix};
use crate::store::{OperationError, SqliteStore, is_foreign_key_violation};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let id = session.id.to_string();
        let user_id = session.user_id.to_string();
        let scope = session.scopes.to_string();
        let token_hash = session.refresh_token_hash.as_bytes().to_vec();
        let created_at = to_unix(session.created_at);
        let expires_at = to_unix(session.expires_at);
        let ip = session.ip.clone();
        let user_agent = session.user_agent.clone();
        self.run("create_session", move |connection| {
            // A session without its refresh token (or the reverse) must never
            // be visible, so both rows go in one transaction.
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction
                .prepare_cached(
                    "INSERT INTO sessions \
                     (id, user_id, scope, created_at, last_used_at, expires_at, revoked_at, ip, user_agent) \
                     VALUES (?1, ?2, ?3, ?4, ?4, ?5, NULL, ?6, ?7)",
                )?
                .execute(params![id, user_id, scope, created_at, expires_at, ip, user_agent])
                .map_err(user_gone_is_not_found)?;
            transaction
                .prepare_cached(
                    "INSERT INTO refresh_tokens (token_hash, session_id, created_at, used_at) \
                     VALUES (?1, ?2, ?3, NULL)",
                )?
                .execute(params![token_hash, id, created_at])?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn find_active_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<Option<(User, ScopeSet)>, StoreError> {
        let session_id = session_id.to_string();
        let user_id = user_id.to_string();
        let now = to_unix(now);
        // `last_used_at + idle > now` written as `last_used_at > now - idle`,
        // computed here with saturation so that no timeout can overflow.
        let idle_seconds = i64::try_from(idle_timeout.as_secs()).unwrap_or(i64::MAX);
        let idle_cutoff = now.saturating_sub(idle_seconds);
        self.run("find_active_session", move |connection| {
            // This runs on every authenticated request: one statement, found
            // through the primary key of `sessions` and the unique index on
            // `users.id`.
            let found = connection
                .prepare_cached(&format!(
                    "SELECT {JOINED_USER_COLUMNS}, s.scope \
                     FROM sessions AS s JOIN users AS u ON u.id = s.user_id \
                     WHERE s.id = ?1 AND s.user_id = ?2 \
                     AND s.revoked_at IS NULL \
                     AND s.expires_at > ?3 \
                     AND s.last_used_at > ?4 \
                     AND u.disabled = 0"
                ))?
                .query_row(params![session_id, user_id, now, idle_cutoff], |row| {
                    Ok((
                        UserRow::read(row, 0)?,
                        row.get::<_, String>(USER_COLUMN_COUNT)?,
                    ))
                })
                .optional()?;
            let Some((row, scope)) = found else {
                return Ok(None);
            };
            Ok(Some((User::try_from(row)?, scope_set(&scope)?)))
        })
        .await
    }
}

/// A session whose user no longer exists fails the foreign key; that is the
/// user not being found, not the store failing.
fn user_gone_is_not_found(error: rusqlite::Error) -> OperationError {
    if is_foreign_key_violation(&error) {
        OperationError::Store(StoreError::NotFound)
    } else {
        OperationError::Sqlite(error)
    }
}
