//! [`SessionStore`] for [`PostgresStore`].

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use portcullis_domain::audit::{AuditContext, AuditEvent, AuditRecord, SessionEndReason};
use portcullis_domain::ports::{ActiveSession, SessionStore};
use portcullis_domain::{
    NewSession, Page, PageCursor, PageRequest, RefreshOutcome, RefreshTokenHash, RefreshTokenOwner,
    SessionId, SessionInfo, StoreError, User, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{
    JOINED_USER_COLUMNS, SESSION_INFO_COLUMNS, SessionInfoRow, USER_COLUMN_COUNT, UserRow,
    idle_cutoff, scope_set, to_unix,
};
use crate::sql;
use crate::store::{OperationError, PostgresStore, user_gone_is_not_found};

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(
        &self,
        session: &NewSession,
        max_active: u32,
        idle_timeout: Duration,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let id = session.id.as_uuid();
        let user_id = session.user_id.as_uuid();
        let scope = &session.scopes.to_string();
        let token_hash = session.refresh_token_hash.as_bytes();
        let created_at = to_unix(session.created_at);
        let expires_at = to_unix(session.expires_at);
        let ip = session.ip.as_deref();
        let user_agent = session.user_agent.as_deref();
        let idle_cutoff = idle_cutoff(created_at, idle_timeout);
        let keep = i64::from(max_active);
        self.run("create_session", move |mut client| async move {
            // A session without its refresh token (or the reverse) must never
            // be visible, and the user must never be seen over the cap, so
            // both rows and the eviction go in one transaction. Locking the
            // user's row first makes concurrent creations for one user take
            // turns, so each counts the sessions the previous one left; the
            // lock mode leaves the foreign key checks of other writers free.
            let transaction = client.transaction().await?;
            let user = sql::query_opt(
                &transaction,
                "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
                &[&user_id],
            )
            .await?;
            if user.is_none() {
                return Err(StoreError::NotFound.into());
            }
            sql::execute(
                &transaction,
                "INSERT INTO sessions \
                 (id, user_id, scope, created_at, last_used_at, expires_at, revoked_at, ip, user_agent) \
                 VALUES ($1, $2, $3, $4, $4, $5, NULL, $6, $7)",
                &[&id, &user_id, scope, &created_at, &expires_at, &ip, &user_agent],
            )
            .await
            .map_err(user_gone_is_not_found)?;
            sql::execute(
                &transaction,
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, used_at) \
                 VALUES ($1, $2, $3, NULL)",
                &[&token_hash, &id, &created_at],
            )
            .await?;
            // Keep the `max_active` most recently used active sessions, the
            // new one first among them (latest use, then the latest created:
            // `seq` breaks ties within one second); end the rest. Revoked,
            // not deleted: their refresh tokens must still be recognised as
            // reused until the purge. The ended ones come back least
            // recently used first, the order their events are appended in.
            let ended = sql::query(
                &transaction,
                "WITH ended AS ( \
                 UPDATE sessions SET revoked_at = $2 WHERE id IN ( \
                 SELECT id FROM sessions \
                 WHERE user_id = $1 AND revoked_at IS NULL \
                 AND expires_at > $2 AND last_used_at > $3 \
                 ORDER BY last_used_at DESC, created_at DESC, seq DESC \
                 OFFSET $4) \
                 RETURNING id, last_used_at, created_at, seq) \
                 SELECT id FROM ended ORDER BY last_used_at, created_at, seq",
                &[&user_id, &created_at, &idle_cutoff, &keep],
            )
            .await?;
            // The evictions first, then the login, as the SQLite store does.
            let mut records = Vec::with_capacity(ended.len() + 1);
            for row in &ended {
                records.push(audit.with_event(AuditEvent::SessionEnded {
                    session_id: SessionId::from_uuid(row.try_get(0)?),
                    reason: SessionEndReason::SessionCap,
                }));
            }
            records.push(audit.clone());
            self.append_audit(&transaction, &records).await?;
            transaction.commit().await?;
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
        let session_id = session_id.as_uuid();
        let user_id = user_id.as_uuid();
        let now = to_unix(now);
        let idle_cutoff = idle_cutoff(now, idle_timeout);
        self.run("find_active_session", move |client| async move {
            // This runs on every authenticated request: one statement, found
            // through the primary key of `sessions` and the unique index on
            // `users.id`.
            let found = sql::query_opt(
                &client,
                &format!(
                    "SELECT {JOINED_USER_COLUMNS}, s.scope \
                     FROM sessions AS s JOIN users AS u ON u.id = s.user_id \
                     WHERE s.id = $1 AND s.user_id = $2 \
                     AND s.revoked_at IS NULL \
                     AND s.expires_at > $3 \
                     AND s.last_used_at > $4 \
                     AND NOT u.disabled"
                ),
                &[&session_id, &user_id, &now, &idle_cutoff],
            )
            .await?;
            let Some(row) = found else {
                return Ok(None);
            };
            let scope: String = row.try_get(USER_COLUMN_COUNT)?;
            Ok(Some(ActiveSession {
                user: User::try_from(UserRow::read(&row, 0)?)?,
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
        let presented = presented.as_bytes();
        let replacement = replacement.as_bytes();
        let now = to_unix(now);
        let idle_cutoff = idle_cutoff(now, idle_timeout);
        self.run("rotate_refresh_token", move |mut client| async move {
            let transaction = client.transaction().await?;
            rotate(
                self,
                transaction,
                Rotation {
                    presented,
                    replacement,
                    now,
                    idle_cutoff,
                    context,
                },
            )
            .await
        })
        .await
    }

    async fn find_refresh_token_owner(
        &self,
        token: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenOwner>, StoreError> {
        let token = token.as_bytes();
        self.run("find_refresh_token_owner", move |client| async move {
            let found = sql::query_opt(
                &client,
                "SELECT s.id, s.user_id, s.scope, t.used_at IS NOT NULL \
                 FROM refresh_tokens AS t JOIN sessions AS s ON s.id = t.session_id \
                 WHERE t.token_hash = $1",
                &[&token],
            )
            .await?;
            let Some(row) = found else {
                return Ok(None);
            };
            let scope: String = row.try_get(2)?;
            Ok(Some(RefreshTokenOwner {
                session_id: SessionId::from_uuid(row.try_get(0)?),
                user_id: UserId::from_uuid(row.try_get(1)?),
                scopes: scope_set(&scope)?,
                already_used: row.try_get(3)?,
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
        let session_id = session_id.as_uuid();
        let user_id = user_id.as_uuid();
        let now = to_unix(now);
        self.run("revoke_session", move |mut client| async move {
            // The trait passes no idle timeout, so a session that has only
            // gone idle is still ended here (and reported as ended): marking
            // it revoked is harmless, as it could not be used again anyway.
            let transaction = client.transaction().await?;
            let changed = sql::execute(
                &transaction,
                "UPDATE sessions SET revoked_at = $3 \
                 WHERE id = $1 AND user_id = $2 \
                 AND revoked_at IS NULL AND expires_at > $3",
                &[&session_id, &user_id, &now],
            )
            .await?;
            if changed != 1 {
                // Nothing ended: nothing to record, nothing to commit.
                return Ok(false);
            }
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
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
        let subject = user_id;
        let user_id = user_id.as_uuid();
        let except = except.map(|id| id.as_uuid());
        let now = to_unix(now);
        self.run("revoke_user_sessions", move |mut client| async move {
            let transaction = client.transaction().await?;
            let count = revoke_other_sessions(&transaction, user_id, except, now).await?;
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
            self.append_audit(&transaction, std::slice::from_ref(&record))
                .await?;
            transaction.commit().await?;
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
        let user_id = user_id.as_uuid();
        let now = to_unix(now);
        let idle_cutoff = idle_cutoff(now, idle_timeout);
        let after = page
            .after
            .as_ref()
            .map(PageCursor::session_position)
            .transpose()?;
        let (after_used, after_created, after_id) = match after {
            Some((used, created, id)) => (Some(used), Some(created), Some(id)),
            None => (None, None, None),
        };
        let limit = usize::try_from(page.limit.max(1)).unwrap_or(1);
        // One row more than asked for tells whether there is a next page.
        let fetch = i64::from(page.limit.max(1)) + 1;
        self.run("list_active_sessions", move |client| async move {
            // Found through the `sessions_user_id` index; a user has few
            // sessions (at most the cap active), so sorting them afterwards
            // is cheap. `id` last makes the order total, so equal times never
            // reorder between calls, and the cursor condition is exactly
            // "after the last session of the previous page" in that order.
            let rows = sql::query(
                &client,
                &format!(
                    "SELECT {SESSION_INFO_COLUMNS} FROM sessions \
                     WHERE user_id = $1 \
                     AND revoked_at IS NULL \
                     AND expires_at > $2 \
                     AND last_used_at > $3 \
                     AND ($4::BIGINT IS NULL OR last_used_at < $4 \
                          OR (last_used_at = $4 AND created_at < $5::BIGINT) \
                          OR (last_used_at = $4 AND created_at = $5 AND id > $6::UUID)) \
                     ORDER BY last_used_at DESC, created_at DESC, id \
                     LIMIT $7"
                ),
                &[
                    &user_id,
                    &now,
                    &idle_cutoff,
                    &after_used,
                    &after_created,
                    &after_id,
                    &fetch,
                ],
            )
            .await?;
            let more = rows.len() > limit;
            let mut sessions = Vec::with_capacity(limit.min(rows.len()));
            let mut next = None;
            for row in rows.iter().take(limit) {
                let row = SessionInfoRow::read(row)?;
                next = Some(PageCursor::after_session(
                    row.last_used_at,
                    row.created_at,
                    row.id,
                ));
                sessions.push(row.into_session_info(idle_timeout)?);
            }
            Ok(Page {
                items: sessions,
                next: next.filter(|_| more),
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
        self.run("purge_dead_sessions", move |client| async move {
            // One statement, so it is atomic on its own. The refresh tokens of
            // each deleted session go with it (ON DELETE CASCADE, through the
            // `refresh_tokens_session_id` index); those of live sessions,
            // used ones included, stay for reuse detection. Nothing more is
            // done for erasure: PostgreSQL cannot overwrite dead row
            // versions on demand; (auto)vacuum reclaims them.
            Ok(sql::execute(
                &client,
                "DELETE FROM sessions \
                 WHERE revoked_at IS NOT NULL \
                 OR expires_at <= $1 \
                 OR last_used_at <= $2",
                &[&now, &idle_cutoff],
            )
            .await?)
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
pub(crate) async fn revoke_other_sessions(
    client: &impl GenericClient,
    user_id: Uuid,
    except: Option<Uuid>,
    now: i64,
) -> Result<u64, tokio_postgres::Error> {
    sql::execute(
        client,
        "UPDATE sessions SET revoked_at = $3 \
         WHERE user_id = $1 \
         AND ($2::UUID IS NULL OR id <> $2) \
         AND revoked_at IS NULL \
         AND expires_at > $3",
        &[&user_id, &except, &now],
    )
    .await
}

/// What [`rotate`] is asked.
struct Rotation<'a> {
    presented: &'a [u8],
    replacement: &'a [u8],
    now: i64,
    idle_cutoff: i64,
    context: &'a AuditContext,
}

/// The body of [`SessionStore::rotate_refresh_token`], in one transaction.
///
/// The lookup locks the token's row and its session's row (`FOR UPDATE OF
/// t, s`), so of several concurrent presentations of one token the first
/// to lock it rotates it, and every later one waits, then reads the row
/// again as the first left it: used, hence reused. The mark itself repeats
/// the condition (`used_at IS NULL`) as a second line of defence.
async fn rotate(
    store: &PostgresStore,
    transaction: Transaction<'_>,
    rotation: Rotation<'_>,
) -> Result<RefreshOutcome, OperationError> {
    let Rotation {
        presented,
        replacement,
        now,
        idle_cutoff,
        context,
    } = rotation;
    // The activity conditions are those of `find_active_session`.
    let found = sql::query_opt(
        &transaction,
        &format!(
            "SELECT t.used_at IS NOT NULL, \
             (s.revoked_at IS NULL AND s.expires_at > $2 AND s.last_used_at > $3 \
              AND NOT u.disabled), \
             s.id, s.scope, {JOINED_USER_COLUMNS} \
             FROM refresh_tokens AS t \
             JOIN sessions AS s ON s.id = t.session_id \
             JOIN users AS u ON u.id = s.user_id \
             WHERE t.token_hash = $1 \
             FOR UPDATE OF t, s"
        ),
        &[&presented, &now, &idle_cutoff],
    )
    .await?;
    // Returning without committing rolls the transaction back: a rejected
    // token changes nothing.
    let Some(found) = found else {
        return Ok(RefreshOutcome::Rejected);
    };
    let used: bool = found.try_get(0)?;
    let usable: bool = found.try_get(1)?;
    let session: Uuid = found.try_get(2)?;
    let session_id = SessionId::from_uuid(session);
    // The owner, for the reuse record: the first of the user's columns.
    let owner = UserId::from_uuid(found.try_get(4)?);
    let reused = context.record(Some(owner), AuditEvent::RefreshTokenReused { session_id });
    if used {
        end_reused_session(store, transaction, session, now, &reused).await?;
        return Ok(RefreshOutcome::Reused { session_id });
    }
    if !usable {
        return Ok(RefreshOutcome::Rejected);
    }
    // Parsed before anything is written, so a corrupt row fails the call
    // without consuming the token.
    let scope: String = found.try_get(3)?;
    let scopes = scope_set(&scope)?;
    let user = User::try_from(UserRow::read(&found, 4)?)?;

    let marked = sql::execute(
        &transaction,
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
        &[&presented, &now],
    )
    .await?;
    if marked != 1 {
        // The row lock makes this unreachable; should it happen anyway,
        // someone else used the token first, which is what reuse means.
        end_reused_session(store, transaction, session, now, &reused).await?;
        return Ok(RefreshOutcome::Reused { session_id });
    }
    sql::execute(
        &transaction,
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, used_at) \
         VALUES ($1, $2, $3, NULL)",
        &[&replacement, &session, &now],
    )
    .await?;
    sql::execute(
        &transaction,
        "UPDATE sessions SET last_used_at = $2 WHERE id = $1",
        &[&session, &now],
    )
    .await?;
    transaction.commit().await?;
    Ok(RefreshOutcome::Rotated {
        user,
        session_id,
        scopes,
    })
}

/// Ends the session of a replayed refresh token, whatever its state,
/// appends the reuse record (`reused`) and commits. A session that had
/// already ended keeps its original end; the replay is recorded anyway, as
/// it is an event of its own.
async fn end_reused_session(
    store: &PostgresStore,
    transaction: Transaction<'_>,
    session: Uuid,
    now: i64,
    reused: &AuditRecord,
) -> Result<(), OperationError> {
    sql::execute(
        &transaction,
        "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[&session, &now],
    )
    .await?;
    store
        .append_audit(&transaction, std::slice::from_ref(reused))
        .await?;
    transaction.commit().await?;
    Ok(())
}
