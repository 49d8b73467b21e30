//! [`UserStore`] for [`SqliteStore`].

use async_trait::async_trait;
use portcullis_domain::audit::AuditRecord;
use portcullis_domain::ports::UserStore;
use portcullis_domain::{
    AdminStanding, AdminUserChanges, MAX_PAGE_SIZE, NewUser, PageCursor, PasswordHashString,
    ProfileChanges, Role, ScopeSet, SessionId, StoreError, User, UserCredentials, UserId,
    UserListQuery, UserPage, Username,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::api_keys::revoke_user_api_keys;
use crate::audit::append;
use crate::rows::{
    USER_COLUMN_COUNT, USER_COLUMNS, UserRow, api_key_scope_set, scope_set, to_unix,
};
use crate::sessions::revoke_other_sessions;
use crate::store::{OperationError, SqliteStore, truncate_wal};

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, new_user: &NewUser, audit: &AuditRecord) -> Result<(), StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let user = &new_user.user;
        let id = user.id.to_string();
        let username = user.username.as_str().to_owned();
        let email = user.email.as_str().to_owned();
        let email_key = user.email.canonical().to_owned();
        let full_name = user.full_name.as_ref().map(|name| name.as_str().to_owned());
        let password_hash = new_user.password_hash.as_str().to_owned();
        let role = user.role.as_str();
        let disabled = user.disabled;
        let created_at = to_unix(user.created_at);
        self.run("insert_user", move |connection| {
            // The unique indexes decide races between concurrent
            // registrations, and the loser gets a conflict (and appends
            // nothing).
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction
                .prepare_cached(
                    "INSERT INTO users \
                     (id, username, email, full_name, password_hash, role, disabled, created_at, updated_at, email_key) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
                )?
                .execute(params![
                    id,
                    username,
                    email,
                    full_name,
                    password_hash,
                    role,
                    disabled,
                    created_at,
                    email_key
                ])?;
            append(&transaction, key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let username = username.as_str().to_owned();
        self.run("find_credentials", move |connection| {
            // `username` is declared COLLATE NOCASE, so this comparison (and
            // its index) ignores ASCII case.
            let found = connection
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"
                ))?
                .query_row([&username], |row| {
                    Ok((
                        UserRow::read(row, 0)?,
                        row.get::<_, String>(USER_COLUMN_COUNT)?,
                    ))
                })
                .optional()?;
            let Some((row, password_hash)) = found else {
                return Ok(None);
            };
            Ok(Some(UserCredentials {
                user: User::try_from(row)?,
                password_hash: PasswordHashString::new(password_hash),
            }))
        })
        .await
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.run("find_user", move |connection| {
            let found = connection
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([&id], |row| UserRow::read(row, 0))
                .optional()?;
            Ok(found.map(User::try_from).transpose()?)
        })
        .await
    }

    async fn update_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let hash = hash.as_str().to_owned();
        let now = to_unix(now);
        self.run("update_password_hash", move |connection| {
            let changed = connection
                .prepare_cached(
                    "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![id, hash, now])?;
            if changed == 0 {
                return Err(StoreError::NotFound.into());
            }
            Ok(())
        })
        .await
    }

    async fn update_profile(
        &self,
        id: UserId,
        changes: &ProfileChanges,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let id = id.to_string();
        let now = to_unix(now);
        let email = changes
            .email
            .as_ref()
            .map(|email| email.as_str().to_owned());
        let email_key = changes
            .email
            .as_ref()
            .map(|email| email.canonical().to_owned());
        let change_full_name = changes.full_name.is_some();
        let full_name = changes
            .full_name
            .as_ref()
            .and_then(|name| name.as_ref().map(|name| name.as_str().to_owned()));
        self.run("update_profile", move |connection| {
            // NULL parameters leave a column as it is, except that
            // `full_name` needs a separate flag because NULL is also a value
            // it can take.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let updated = transaction
                .prepare_cached(&format!(
                    "UPDATE users SET \
                     email = coalesce(?2, email), \
                     email_key = coalesce(?5, email_key), \
                     full_name = CASE WHEN ?3 THEN ?4 ELSE full_name END, \
                     updated_at = ?6 \
                     WHERE id = ?1 \
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(
                    params![id, email, change_full_name, full_name, email_key, now],
                    |row| UserRow::read(row, 0),
                )
                .optional()?;
            let user = user_or_not_found(updated)?;
            append(&transaction, key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(user)
        })
        .await
    }

    async fn set_disabled(
        &self,
        username: &Username,
        disabled: bool,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let username = username.as_str().to_owned();
        let now = to_unix(now);
        self.run("set_disabled", move |connection| {
            // The flag and the end of every session and API key change
            // together or not at all, so a disabled account never keeps a
            // live credential. This is the command-line path, the recovery
            // tool: it deliberately has no last-admin guard, so that an
            // operator can always act.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let updated = transaction
                .prepare_cached(&format!(
                    "UPDATE users SET disabled = ?2, updated_at = ?3 \
                     WHERE username = ?1 \
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(params![username, disabled, now], |row| {
                    UserRow::read(row, 0)
                })
                .optional()?;
            let user = user_or_not_found(updated)?;
            if disabled {
                end_every_credential(&transaction, &user.id.to_string(), now)?;
            }
            append(&transaction, key.as_deref(), &audit.about(user.id))?;
            transaction.commit()?;
            Ok(user)
        })
        .await
    }

    async fn set_role(
        &self,
        username: &Username,
        role: Role,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let username = username.as_str().to_owned();
        let now = to_unix(now);
        self.run("set_role", move |connection| {
            // The role and the narrowing of every stored grant change
            // together, so a later promotion cannot revive old admin grants.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let updated = transaction
                .prepare_cached(&format!(
                    "UPDATE users SET role = ?2, updated_at = ?3 \
                     WHERE username = ?1 \
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(params![username, role.as_str(), now], |row| {
                    UserRow::read(row, 0)
                })
                .optional()?;
            let user = user_or_not_found(updated)?;
            narrow_grants(&transaction, &user.id.to_string(), role, now)?;
            append(&transaction, key.as_deref(), &audit.about(user.id))?;
            transaction.commit()?;
            Ok(user)
        })
        .await
    }

    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        keep_session: Option<SessionId>,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let id = id.to_string();
        let hash = hash.as_str().to_owned();
        let keep_session = keep_session.map(|session| session.to_string());
        let now = to_unix(now);
        self.run("change_password", move |connection| {
            // The new hash and the end of the other sessions change together
            // or not at all: a session opened with the old password must not
            // outlive the change.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = transaction
                .prepare_cached(
                    "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![id, hash, now])?;
            if changed == 0 {
                return Err(StoreError::NotFound.into());
            }
            revoke_other_sessions(&transaction, &id, keep_session.as_deref(), now)?;
            append(&transaction, key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, id: UserId, audit: &AuditRecord) -> Result<(), StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let id = id.to_string();
        self.run("delete_user", move |connection| {
            // The write lock is taken before the check, so two admins
            // deleting each other at once cannot both pass it and leave no
            // admin behind.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(standing) = admin_standing(&transaction, &id)? else {
                return Err(StoreError::NotFound.into());
            };
            if standing.is_enabled_admin() && !another_enabled_admin_exists(&transaction, &id)? {
                return Err(StoreError::LastAdmin.into());
            }
            // Atomic with its cascades: the foreign keys (on for every pooled
            // connection) delete the user's sessions with their refresh
            // tokens, and its API keys.
            transaction
                .prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute([&id])?;
            // The account's events stay: the log names it by id only.
            append(&transaction, key.as_deref(), &audit)?;
            transaction.commit()?;
            // With secure_delete the rows are zeroed in their pages, but the
            // log still holds the frames written before; drop them too.
            truncate_wal(connection, "delete_user");
            Ok(())
        })
        .await
    }

    async fn list_users(&self, query: &UserListQuery) -> Result<UserPage, StoreError> {
        let after = query
            .after
            .as_ref()
            .map(PageCursor::user_position)
            .transpose()?;
        let search = query
            .search
            .as_ref()
            .map(|search| search.as_str().to_owned());
        // The domain promises 1..=MAX_PAGE_SIZE; clamping here as well keeps
        // a zero limit from producing an empty page that claims a next one.
        let limit = usize::try_from(query.limit.clamp(1, MAX_PAGE_SIZE)).unwrap_or(1);
        self.run("list_users", move |connection| {
            list_user_page(connection, after, search.as_deref(), limit)
        })
        .await
    }

    async fn admin_update_user(
        &self,
        id: UserId,
        changes: &AdminUserChanges,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<User, StoreError> {
        let key = self.audit_key();
        let audit = audit.clone();
        let id = id.to_string();
        let disable = changes.disabled;
        let role = changes.role;
        let email = changes
            .email
            .as_ref()
            .map(|email| email.as_str().to_owned());
        let email_key = changes
            .email
            .as_ref()
            .map(|email| email.canonical().to_owned());
        let change_full_name = changes.full_name.is_some();
        let full_name = changes
            .full_name
            .as_ref()
            .and_then(|name| name.as_ref().map(|name| name.as_str().to_owned()));
        let now = to_unix(now);
        self.run("admin_update_user", move |connection| {
            // Check and change under one write lock: otherwise two admins
            // demoting each other at once could both see the other as the
            // remaining admin.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(before) = admin_standing(&transaction, &id)? else {
                return Err(StoreError::NotFound.into());
            };
            let after = before.after_change(role, disable);
            if before.loses_enabled_admin(after)
                && !another_enabled_admin_exists(&transaction, &id)?
            {
                return Err(StoreError::LastAdmin.into());
            }
            // NULL parameters leave a column as it is; `full_name` needs a
            // flag because NULL is also a value it can take. A taken email
            // fails here as a conflict, and returning without committing
            // rolls everything back.
            let updated = transaction
                .prepare_cached(&format!(
                    "UPDATE users SET \
                     disabled = coalesce(?2, disabled), \
                     role = coalesce(?3, role), \
                     email = coalesce(?4, email), \
                     email_key = coalesce(?8, email_key), \
                     full_name = CASE WHEN ?5 THEN ?6 ELSE full_name END, \
                     updated_at = ?7 \
                     WHERE id = ?1 \
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(
                    params![
                        id,
                        disable,
                        role.map(Role::as_str),
                        email,
                        change_full_name,
                        full_name,
                        now,
                        email_key
                    ],
                    |row| UserRow::read(row, 0),
                )
                .optional()?;
            let user = user_or_not_found(updated)?;
            if let Some(role) = role {
                narrow_grants(&transaction, &id, role, now)?;
            }
            if disable == Some(true) {
                end_every_credential(&transaction, &id, now)?;
            }
            append(&transaction, key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(user)
        })
        .await
    }

    async fn ensure_writable(&self) -> Result<(), StoreError> {
        self.probe_write().await
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        self.run("check_health", |connection| {
            // Reads the schema and a page of `users`: fails when the file is
            // unreadable, locked beyond the busy timeout, or not ours.
            connection
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM users LIMIT 1)")?
                .query_row([], |row| row.get::<_, bool>(0))?;
            Ok(())
        })
        .await
    }
}

/// The role and disabled flag of user `id`; `None` when there is no such
/// user. Meant to run inside the transaction that acts on the answer.
fn admin_standing(
    connection: &Connection,
    id: &str,
) -> Result<Option<AdminStanding>, rusqlite::Error> {
    connection
        .prepare_cached("SELECT role = 'admin', disabled FROM users WHERE id = ?1")?
        .query_row([id], |row| {
            Ok(AdminStanding {
                admin: row.get(0)?,
                disabled: row.get(1)?,
            })
        })
        .optional()
}

/// Whether an enabled admin other than user `id` exists. A disabled admin
/// does not count: it cannot sign in to administer anything.
fn another_enabled_admin_exists(
    connection: &Connection,
    id: &str,
) -> Result<bool, rusqlite::Error> {
    connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM users \
             WHERE role = 'admin' AND disabled = 0 AND id <> ?1)",
        )?
        .query_row([id], |row| row.get(0))
}

/// Revokes, at `now`, every not-yet-revoked session and API key of user
/// `user_id`: what disabling an account means. Expired sessions and keys are
/// marked too, so that nothing of a disabled account reads as live.
fn end_every_credential(
    connection: &Connection,
    user_id: &str,
    now: i64,
) -> Result<(), rusqlite::Error> {
    connection
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![user_id, now])?;
    revoke_user_api_keys(connection, user_id, now)?;
    Ok(())
}

/// Narrows the scopes of every not-yet-revoked session and API key of user
/// `user_id` to what `role` allows, and ends (revokes at `now`) those left
/// with no scope: what changing a role means for the grants already made.
/// A promotion widens nothing, as every grant is already within the wider
/// role. Meant to run inside the transaction that changes the role.
fn narrow_grants(
    connection: &Connection,
    user_id: &str,
    role: Role,
    now: i64,
) -> Result<(), OperationError> {
    let allowed = role.allowed_scopes();
    for (table, parse) in [
        (
            "sessions",
            scope_set as fn(&str) -> Result<ScopeSet, StoreError>,
        ),
        ("api_keys", api_key_scope_set),
    ] {
        let grants = connection
            .prepare_cached(&format!(
                "SELECT id, scope FROM {table} WHERE user_id = ?1 AND revoked_at IS NULL"
            ))?
            .query_map([user_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (id, scope) in grants {
            let granted = parse(&scope)?;
            let narrowed = granted.intersection(allowed);
            if narrowed.is_empty() {
                connection
                    .prepare_cached(&format!("UPDATE {table} SET revoked_at = ?2 WHERE id = ?1"))?
                    .execute(params![id, now])?;
            } else if narrowed != granted {
                connection
                    .prepare_cached(&format!("UPDATE {table} SET scope = ?2 WHERE id = ?1"))?
                    .execute(params![id, narrowed.to_string()])?;
            }
        }
    }
    Ok(())
}

/// One page of [`UserStore::list_users`]: at most `limit` users with `pk`
/// above `after`, matching `search`, in `pk` order.
///
/// `pk` only grows (AUTOINCREMENT never reuses a key), so a new user always
/// sorts after every existing one: a cursor never skips or repeats a user,
/// and users added meanwhile show up on a later page.
fn list_user_page(
    connection: &Connection,
    after: Option<i64>,
    search: Option<&str>,
    limit: usize,
) -> Result<UserPage, OperationError> {
    // The statement is assembled from fixed pieces, never from input, so
    // that each variant keeps a plain `pk > ?` range scan on the primary key
    // (a `?1 IS NULL OR pk > ?1` would hide it from the planner) and is
    // cached on its own.
    let mut conditions = Vec::new();
    if after.is_some() {
        conditions.push("pk > :after");
    }
    if search.is_some() {
        // `instr` compares literally, so `%`, `_` and `\` in a search mean
        // themselves, unlike in LIKE. The term arrives normalised by the
        // domain (`UserSearch`: NFKC, lower-case, punycode decoded), and
        // `username` and `email_key` are stored in that same folded form,
        // so no SQL-side folding (which would be ASCII only) is needed.
        conditions.push("(instr(username, :search) > 0 OR instr(email_key, :search) > 0)");
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!("SELECT pk, {USER_COLUMNS} FROM users {filter} ORDER BY pk LIMIT :fetch");
    // One row more than asked for tells whether there is a next page.
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let mut statement = connection.prepare_cached(&sql)?;
    let mut parameters: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":fetch", &fetch)];
    if let Some(after) = &after {
        parameters.push((":after", after));
    }
    if let Some(search) = &search {
        parameters.push((":search", search));
    }
    let mut rows = statement
        .query_map(parameters.as_slice(), |row| {
            Ok((row.get::<_, i64>(0)?, UserRow::read(row, 1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|(pk, _)| PageCursor::after_user(*pk))
    } else {
        None
    };
    let users = rows
        .into_iter()
        .map(|(_, row)| User::try_from(row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserPage { users, next_cursor })
}

/// The updated user, or [`StoreError::NotFound`] when no row matched.
fn user_or_not_found(row: Option<UserRow>) -> Result<User, OperationError> {
    match row {
        Some(row) => Ok(User::try_from(row)?),
        None => Err(StoreError::NotFound.into()),
    }
}
