//! [`SessionStore`] for [`SqliteStore`].

use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::audit::{AuditContext, AuditEvent, AuditKey, AuditRecord, SessionEndReason};
use portcullis_domain::ports::{ActiveSession, SessionStore};
use portcullis_domain::{
    NewSession, Page, PageRequest, RefreshOutcome, RefreshTokenHash, RefreshTokenOwner, SessionId,
    SessionInfo, StoreError, User, UserId,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::audit::{append, append_all};
use crate::cursors::{read_session_cursor, session_cursor};
use crate::rows::{
    JOINED_USER_COLUMNS, SESSION_INFO_COLUMNS, SessionInfoRow, USER_COLUMN_COUNT, UserRow,
    idle_cutoff, scope_set, session_id, session_user_id, to_unix,
};
use crate::store::{OperationError, SqliteStore, truncate_wal, user_gone_is_not_found};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(
        &self,
        session: &NewSession,
        max_active: u32,
        idle_timeout: Duration,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let id = session.id.to_string();
        let user_id = session.user_id.to_string();
        let scope = session.scopes.to_string();
        let token_hash = session.refresh_token_hash.as_bytes().to_vec();
        let created_at = to_unix(session.created_at);
        let expires_at = to_unix(session.expires_at);
        let ip = session.ip.clone();
        let user_agent = session.user_agent.clone();
        let idle_cutoff = idle_cutoff(created_at, idle_timeout);
        self.run("create_session", move |connection| {
            // A session without its refresh token (or the reverse) must never
            // be visible, and the user must never be seen over the cap, so
            // both rows and the eviction go in one transaction.
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
            // Keep the `max_active` most recently used active sessions, the
            // new one first among them (latest use, then the latest rowid:
            // among sessions used in the same second, the last created);
            // end the rest. Revoked, not deleted: their refresh tokens must
            // still be recognised as reused until the purge. Read first, so
            // that each ended session gets its event, least recently used
            // first.
            let mut evicted = transaction
                .prepare_cached(
                    "SELECT id FROM sessions \
                     WHERE user_id = ?1 AND revoked_at IS NULL \
                     AND expires_at > ?2 AND last_used_at > ?3 \
                     ORDER BY last_used_at DESC, created_at DESC, rowid DESC \
                     LIMIT -1 OFFSET ?4",
                )?
                .query_map(
                    params![user_id, created_at, idle_cutoff, max_active],
                    |row| row.get::<_, String>(0),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            evicted.reverse();
            let mut records = Vec::with_capacity(evicted.len() + 1);
            for ended in &evicted {
                transaction
                    .prepare_cached("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1")?
                    .execute(params![ended, created_at])?;
                records.push(audit.with_event(AuditEvent::SessionEnded {
                    session_id: session_id(ended)?,
                    reason: SessionEndReason::SessionCap,
                }));
            }
            // The evictions first, then the login (as in every store).
            records.push(audit);
            append_all(&transaction, key.as_deref(), &records)?;
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
    ) -> Result<Option<ActiveSession>, StoreError> {
        let session_id = session_id.to_string();
        let user_id = user_id.to_string();
        let now = to_unix(now);
        let idle_cutoff = idle_cutoff(now, idle_timeout);
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
            Ok(Some(ActiveSession {
                user: User::try_from(row)?,
                scopes: scope_set(&scope)?,
            }))
        })
        .await
    }

    async fn rotate_refresh_token(
        &self,
        presented: &RefreshTokenHash,
        replacement: &RefreshTokenHash,
        now: OffsetDateTime,
        idle_timeout: Duration,
        context: &AuditContext,
    ) -> Result<RefreshOutcome, StoreError> {
        let key = self.audit_key();
        let context = context.clone();
        let presented = presented.as_bytes().to_vec();
        let replacement = replacement.as_bytes().to_vec();
        let now = to_unix(now);
        let idle_cutoff = idle_cutoff(now, idle_timeout);
        self.run("rotate_refresh_token", move |connection| {
            let reuse = Reuse {
                key: key.as_deref(),
                context: &context,
            };
            rotate(
                connection,
                &presented,
                &replacement,
                now,
                idle_cutoff,
                &reuse,
            )
        })
        .await
    }

    async fn find_refresh_token_owner(
        &self,
        token: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenOwner>, StoreError> {
        let token = token.as_bytes().to_vec();
        self.run("find_refresh_token_owner", move |connection| {
            let found = connection
                .prepare_cached(
                    "SELECT s.id, s.user_id, s.scope, t.used_at IS NOT NULL \
                     FROM refresh_tokens AS t JOIN sessions AS s ON s.id = t.session_id \
                     WHERE t.token_hash = ?1",
                )?
                .query_row([&token], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, bool>(3)?,
                    ))
                })
                .optional()?;
            let Some((id, user_id, scope, already_used)) = found else {
                return Ok(None);
            };
            Ok(Some(RefreshTokenOwner {
                session_id: session_id(&id)?,
                user_id: session_user_id(&user_id)?,
                scopes: scope_set(&scope)?,
                already_used,
            }))
        })
        .await
    }

    async fn revoke_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let session_id = session_id.to_string();
        let user_id = user_id.to_string();
        let now = to_unix(now);
        self.run("revoke_session", move |connection| {
            // The trait passes no idle timeout, so a session that has only
            // gone idle is still ended here (and reported as ended): marking
            // it revoked is harmless, as it could not be used again anyway.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = transaction
                .prepare_cached(
                    "UPDATE sessions SET revoked_at = ?3 \
                     WHERE id = ?1 AND user_id = ?2 \
                     AND revoked_at IS NULL AND expires_at > ?3",
                )?
                .execute(params![session_id, user_id, now])?;
            if changed != 1 {
                // Nothing ended: nothing to record, nothing to commit.
                return Ok(false);
            }
            append(&transaction, key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(true)
        })
        .await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        now: OffsetDateTime,
        context: &AuditContext,
    ) -> Result<u64, StoreError> {
        let key = self.audit_key();
        let context = context.clone();
        let subject = user_id;
        let user_id = user_id.to_string();
        let except = except.map(|id| id.to_string());
        let now = to_unix(now);
        self.run("revoke_user_sessions", move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let revoked = revoke_other_sessions(&transaction, &user_id, except.as_deref(), now)?;
            let count = u64::try_from(revoked).unwrap_or(u64::MAX);
            if count == 0 {
                return Ok(0);
            }
            let record = context.record(
                Some(subject),
                AuditEvent::SessionsEnded {
                    count,
                    kept_current: except.is_some(),
                },
            );
            append(&transaction, key.as_deref(), &record)?;
            transaction.commit()?;
            Ok(count)
        })
        .await
    }

    async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        idle_timeout: Duration,
        page: &PageRequest,
    ) -> Result<Page<SessionInfo>, StoreError> {
        let user_id = user_id.to_string();
        let now = to_unix(now);
        let idle_cutoff = idle_cutoff(now, idle_timeout);
        let after = page.after.as_ref().map(read_session_cursor).transpose()?;
        let (after_used, after_created, after_id) = match after {
            Some((used, created, id)) => (Some(used), Some(created), Some(id)),
            None => (None, None, None),
        };
        let limit = usize::try_from(page.limit.max(1)).unwrap_or(1);
        // One row more than asked for tells whether there is a next page.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        self.run("list_active_sessions", move |connection| {
            // Found through the `sessions_user_id` index; a user has few
            // sessions (at most the cap active), so sorting them afterwards
            // is cheap. `id` last makes the order total, so equal times never
            // reorder between calls, and the cursor condition is exactly
            // "after the last session of the previous page" in that order.
            let rows = connection
                .prepare_cached(&format!(
                    "SELECT {SESSION_INFO_COLUMNS} FROM sessions \
                     WHERE user_id = ?1 \
                     AND revoked_at IS NULL \
                     AND expires_at > ?2 \
                     AND last_used_at > ?3 \
                     AND (?4 IS NULL OR last_used_at < ?4 \
                          OR (last_used_at = ?4 AND created_at < ?5) \
                          OR (last_used_at = ?4 AND created_at = ?5 AND id > ?6)) \
                     ORDER BY last_used_at DESC, created_at DESC, id \
                     LIMIT ?7"
                ))?
                .query_map(
                    params![
                        user_id,
                        now,
                        idle_cutoff,
                        after_used,
                        after_created,
                        after_id,
                        fetch
                    ],
                    SessionInfoRow::read,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let more = rows.len() > limit;
            let next = rows
                .get(limit.wrapping_sub(1))
                .filter(|_| more)
                .map(|row| session_cursor(row.last_used_at, row.created_at, &row.id))
                .transpose()?;
            let sessions = rows
                .into_iter()
                .take(limit)
                .map(|row| row.into_session_info(idle_timeout))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page {
                items: sessions,
                next,
            })
        })
        .await
    }

    async fn purge_dead_sessions(
        &self,
        now: OffsetDateTime,
        idle_timeout: Duration,
    ) -> Result<u64, StoreError> {
        let now = to_unix(now);
        let idle_cutoff = idle_cutoff(now, idle_timeout);
        self.run("purge_dead_sessions", move |connection| {
            // One statement, so it is atomic on its own. The refresh tokens of
            // each deleted session go with it (ON DELETE CASCADE, through the
            // `refresh_tokens_session_id` index); those of live sessions,
            // used ones included, stay for reuse detection.
            let deleted = connection
                .prepare_cached(
                    "DELETE FROM sessions \
                     WHERE revoked_at IS NOT NULL \
                     OR expires_at <= ?1 \
                     OR last_used_at <= ?2",
                )?
                .execute(params![now, idle_cutoff])?;
            // Also the retry of a truncation an account deletion could not
            // complete because readers were active at that moment.
            truncate_wal(connection, "purge_dead_sessions");
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }
}

/// Ends every session of `user_id` that is neither revoked nor past its
/// absolute expiry, except `except`; returns how many were ended.
///
/// Expired sessions are left alone so that the count is of sessions that
/// really ended now; they could not be used again anyway. Idle ones cannot
/// be told apart without an idle timeout and are ended and counted.
pub(crate) fn revoke_other_sessions(
    connection: &Connection,
    user_id: &str,
    except: Option<&str>,
    now: i64,
) -> Result<usize, rusqlite::Error> {
    connection
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?3 \
             WHERE user_id = ?1 \
             AND (?2 IS NULL OR id <> ?2) \
             AND revoked_at IS NULL \
             AND expires_at > ?3",
        )?
        .execute(params![user_id, except, now])
}

/// What the rotation transaction finds for a presented refresh token.
struct PresentedToken {
    /// Whether the token was already rotated away.
    used: bool,
    /// Whether its session is active and its user enabled, at `now`.
    usable: bool,
    session_id: String,
    scope: String,
    user_id: String,
    user: UserRow,
}

/// What a detected reuse records its event with.
struct Reuse<'a> {
    key: Option<&'a dyn AuditKey>,
    context: &'a AuditContext,
}

/// The body of [`SessionStore::rotate_refresh_token`], in one `BEGIN
/// IMMEDIATE` transaction: it takes the write lock before reading, so of
/// several concurrent presentations of one token the first to get the lock
/// rotates it and every later one reads it as used.
fn rotate(
    connection: &mut Connection,
    presented: &[u8],
    replacement: &[u8],
    now: i64,
    idle_cutoff: i64,
    reuse: &Reuse<'_>,
) -> Result<RefreshOutcome, OperationError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // The activity conditions are those of `find_active_session`.
    let found = transaction
        .prepare_cached(&format!(
            "SELECT t.used_at IS NOT NULL, \
             (s.revoked_at IS NULL AND s.expires_at > ?2 AND s.last_used_at > ?3 \
              AND u.disabled = 0), \
             s.id, s.scope, s.user_id, {JOINED_USER_COLUMNS} \
             FROM refresh_tokens AS t \
             JOIN sessions AS s ON s.id = t.session_id \
             JOIN users AS u ON u.id = s.user_id \
             WHERE t.token_hash = ?1"
        ))?
        .query_row(params![presented, now, idle_cutoff], |row| {
            Ok(PresentedToken {
                used: row.get(0)?,
                usable: row.get(1)?,
                session_id: row.get(2)?,
                scope: row.get(3)?,
                user_id: row.get(4)?,
                user: UserRow::read(row, 5)?,
            })
        })
        .optional()?;
    // Returning without committing rolls the transaction back: a rejected
    // token changes nothing.
    let Some(found) = found else {
        return Ok(RefreshOutcome::Rejected);
    };
    let session = session_id(&found.session_id)?;
    if found.used {
        end_reused_session(
            transaction,
            &found.session_id,
            &found.user_id,
            session,
            now,
            reuse,
        )?;
        return Ok(RefreshOutcome::Reused {
            session_id: session,
        });
    }
    if !found.usable {
        return Ok(RefreshOutcome::Rejected);
    }
    // Parsed before anything is written, so a corrupt row fails the call
    // without consuming the token.
    let user = User::try_from(found.user)?;
    let scopes = scope_set(&found.scope)?;

    let marked = transaction
        .prepare_cached(
            "UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
        )?
        .execute(params![presented, now])?;
    if marked != 1 {
        // The write lock makes this unreachable; should it happen anyway,
        // someone else used the token first, which is what reuse means.
        end_reused_session(
            transaction,
            &found.session_id,
            &found.user_id,
            session,
            now,
            reuse,
        )?;
        return Ok(RefreshOutcome::Reused {
            session_id: session,
        });
    }
    transaction
        .prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, used_at) \
             VALUES (?1, ?2, ?3, NULL)",
        )?
        .execute(params![replacement, found.session_id, now])?;
    transaction
        .prepare_cached("UPDATE sessions SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![found.session_id, now])?;
    transaction.commit()?;
    Ok(RefreshOutcome::Rotated {
        user,
        session_id: session,
        scopes,
    })
}

/// Ends the session of a replayed refresh token, whatever its state,
/// records the reuse about the session's user, and commits. A session that
/// had already ended keeps its original end; the reuse is recorded either
/// way, as every replay is an attempt worth knowing of.
fn end_reused_session(
    transaction: rusqlite::Transaction<'_>,
    stored_session_id: &str,
    stored_user_id: &str,
    session: SessionId,
    now: i64,
    reuse: &Reuse<'_>,
) -> Result<(), OperationError> {
    transaction
        .prepare_cached("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
        .execute(params![stored_session_id, now])?;
    let owner = session_user_id(stored_user_id)?;
    let record = reuse.context.record(
        Some(owner),
        AuditEvent::RefreshTokenReused {
            session_id: session,
        },
    );
    append(&transaction, reuse.key, &record)?;
    transaction.commit()?;
    Ok(())
}
