//! [`UserStore`] for [`PostgresStore`].

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use portcullis_domain::audit::AuditRecord;
use portcullis_domain::ports::UserStore;
use portcullis_domain::{
    AdminStanding, AdminUserChanges, MAX_PAGE_SIZE, NewUser, PageCursor, PasswordHashString,
    ProfileChanges, Role, ScopeSet, SessionId, StoreError, User, UserCredentials, UserId,
    UserListQuery, UserPage, Username,
};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::api_keys::revoke_user_api_keys;
use crate::rows::{
    USER_COLUMN_COUNT, USER_COLUMNS, UserRow, api_key_scope_set, scope_set, to_unix, username_key,
};
use crate::sessions::revoke_other_sessions;
use crate::sql;
use crate::store::{OperationError, PostgresStore};

#[async_trait]
impl UserStore for PostgresStore {
    async fn insert_user(&self, new_user: &NewUser, audit: &AuditRecord) -> Result<(), StoreError> {
        let user = &new_user.user;
        let id = user.id.as_uuid();
        let username = user.username.as_str();
        let username_key = &username_key(username);
        let email = user.email.as_str();
        let email_key = user.email.canonical();
        let full_name = user.full_name.as_ref().map(|name| name.as_str());
        let password_hash = new_user.password_hash.as_str();
        let role = user.role.as_str();
        let disabled = user.disabled;
        let created_at = to_unix(user.created_at);
        self.run("insert_user", move |mut client| async move {
            // The unique constraints decide races between concurrent
            // registrations, and the loser gets a conflict (and appends
            // nothing).
            let transaction = client.transaction().await?;
            sql::execute(
                &transaction,
                "INSERT INTO users \
                 (id, username, username_key, email, email_key, full_name, password_hash, \
                  role, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                &[
                    &id,
                    &username,
                    username_key,
                    &email,
                    &email_key,
                    &full_name,
                    &password_hash,
                    &role,
                    &disabled,
                    &created_at,
                ],
            )
            .await?;
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
            Ok(())
        })
        .await
    }

    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let key = &username_key(username.as_str());
        self.run("find_credentials", move |client| async move {
            let found = sql::query_opt(
                &client,
                &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username_key = $1"),
                &[key],
            )
            .await?;
            let Some(row) = found else {
                return Ok(None);
            };
            let password_hash: String = row.try_get(USER_COLUMN_COUNT)?;
            Ok(Some(UserCredentials {
                user: User::try_from(UserRow::read(&row, 0)?)?,
                password_hash: PasswordHashString::new(password_hash),
            }))
        })
        .await
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let id = id.as_uuid();
        self.run("find_user", move |client| async move {
            let found = sql::query_opt(
                &client,
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[&id],
            )
            .await?;
            found
                .map(|row| Ok(User::try_from(UserRow::read(&row, 0)?)?))
                .transpose()
        })
        .await
    }

    async fn update_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let id = id.as_uuid();
        let hash = hash.as_str();
        let now = to_unix(now);
        self.run("update_password_hash", move |client| async move {
            let changed = sql::execute(
                &client,
                "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
                &[&id, &hash, &now],
            )
            .await?;
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
        let id = id.as_uuid();
        let now = to_unix(now);
        let email = changes.email.as_ref().map(|email| email.as_str());
        let email_key = changes.email.as_ref().map(|email| email.canonical());
        let change_full_name = changes.full_name.is_some();
        let full_name = changes
            .full_name
            .as_ref()
            .and_then(|name| name.as_ref().map(|name| name.as_str()));
        self.run("update_profile", move |mut client| async move {
            // One statement changes the row, so there is no read-then-write
            // to guard: NULL parameters leave a column as it is, except that
            // `full_name` needs a separate flag because NULL is also a value
            // it can take. The transaction is for the audit record.
            let transaction = client.transaction().await?;
            let updated = sql::query_opt(
                &transaction,
                &format!(
                    "UPDATE users SET \
                     email = coalesce($2::TEXT, email), \
                     email_key = coalesce($5::TEXT, email_key), \
                     full_name = CASE WHEN $3::BOOLEAN THEN $4::TEXT ELSE full_name END, \
                     updated_at = $6 \
                     WHERE id = $1 \
                     RETURNING {USER_COLUMNS}"
                ),
                &[&id, &email, &change_full_name, &full_name, &email_key, &now],
            )
            .await?;
            let user = user_or_not_found(updated.as_ref())?;
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
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
        let key = &username_key(username.as_str());
        let now = to_unix(now);
        self.run("set_disabled", move |mut client| async move {
            // The flag and the end of every session and API key change
            // together or not at all, so a disabled account never keeps a
            // live credential. This is the command-line path, the recovery
            // tool: it deliberately has no last-admin guard, so that an
            // operator can always act.
            let transaction = client.transaction().await?;
            let updated = sql::query_opt(
                &transaction,
                &format!(
                    "UPDATE users SET disabled = $2, updated_at = $3 \
                     WHERE username_key = $1 \
                     RETURNING {USER_COLUMNS}"
                ),
                &[key, &disabled, &now],
            )
            .await?;
            let user = user_or_not_found(updated.as_ref())?;
            if disabled {
                end_every_credential(&transaction, user.id.as_uuid(), now).await?;
            }
            self.append_audit(&transaction, &[audit.about(user.id)])
                .await?;
            transaction.commit().await?;
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
        let key = &username_key(username.as_str());
        let now = to_unix(now);
        self.run("set_role", move |mut client| async move {
            // The role and the narrowing of every stored grant change
            // together, so a later promotion cannot revive old admin grants.
            // The UPDATE locks the user's row, and every creation of a
            // session or key locks it too, so none slips in un-narrowed.
            let transaction = client.transaction().await?;
            let updated = sql::query_opt(
                &transaction,
                &format!(
                    "UPDATE users SET role = $2, updated_at = $3 \
                     WHERE username_key = $1 \
                     RETURNING {USER_COLUMNS}"
                ),
                &[key, &role.as_str(), &now],
            )
            .await?;
            let user = user_or_not_found(updated.as_ref())?;
            narrow_grants(&transaction, user.id.as_uuid(), role, now).await?;
            self.append_audit(&transaction, &[audit.about(user.id)])
                .await?;
            transaction.commit().await?;
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
        let id = id.as_uuid();
        let hash = hash.as_str();
        let keep_session = keep_session.map(|session| session.as_uuid());
        let now = to_unix(now);
        self.run("change_password", move |mut client| async move {
            // The new hash and the end of the other sessions change together
            // or not at all: a session opened with the old password must not
            // outlive the change.
            let transaction = client.transaction().await?;
            let changed = sql::execute(
                &transaction,
                "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
                &[&id, &hash, &now],
            )
            .await?;
            if changed == 0 {
                return Err(StoreError::NotFound.into());
            }
            revoke_other_sessions(&transaction, id, keep_session, now).await?;
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, id: UserId, audit: &AuditRecord) -> Result<(), StoreError> {
        let id = id.as_uuid();
        self.run("delete_user", move |mut client| async move {
            let transaction = client.transaction().await?;
            let (standing, other_admins) = lock_for_admin_guard(&transaction, id).await?;
            let Some(standing) = standing else {
                return Err(StoreError::NotFound.into());
            };
            if standing.is_enabled_admin() && !other_admins {
                return Err(StoreError::LastAdmin.into());
            }
            // Atomic with its cascades: the foreign keys delete the user's
            // sessions with their refresh tokens, and its API keys. The old
            // row versions stay in the table's pages until VACUUM reclaims
            // them (see the crate documentation on erasure).
            sql::execute(&transaction, "DELETE FROM users WHERE id = $1", &[&id]).await?;
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
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
        let search = query.search.as_ref().map(|search| search.as_str());
        // The domain promises 1..=MAX_PAGE_SIZE; clamping here as well keeps
        // a zero limit from producing an empty page that claims a next one.
        let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        self.run("list_users", move |client| async move {
            list_user_page(&client, after, search, limit).await
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
        let id = id.as_uuid();
        let disable = changes.disabled;
        let role = changes.role;
        let role_name = role.map(Role::as_str);
        let email = changes.email.as_ref().map(|email| email.as_str());
        let email_key = changes.email.as_ref().map(|email| email.canonical());
        let change_full_name = changes.full_name.is_some();
        let full_name = changes
            .full_name
            .as_ref()
            .and_then(|name| name.as_ref().map(|name| name.as_str()));
        // Only a change that can take away admin rights needs the guard's
        // locks; the others leave the set of enabled admins as it is.
        let may_remove_an_admin = disable == Some(true) || role == Some(Role::User);
        let now = to_unix(now);
        self.run("admin_update_user", move |mut client| async move {
            let transaction = client.transaction().await?;
            if may_remove_an_admin {
                let (standing, other_admins) = lock_for_admin_guard(&transaction, id).await?;
                let Some(before) = standing else {
                    return Err(StoreError::NotFound.into());
                };
                let after = before.after_change(role, disable);
                if before.loses_enabled_admin(after) && !other_admins {
                    return Err(StoreError::LastAdmin.into());
                }
            }
            // NULL parameters leave a column as it is; `full_name` needs a
            // flag because NULL is also a value it can take. A taken email
            // fails here as a conflict, and returning without committing
            // rolls everything back.
            let updated = sql::query_opt(
                &transaction,
                &format!(
                    "UPDATE users SET \
                     disabled = coalesce($2::BOOLEAN, disabled), \
                     role = coalesce($3::TEXT, role), \
                     email = coalesce($4::TEXT, email), \
                     email_key = coalesce($8::TEXT, email_key), \
                     full_name = CASE WHEN $5::BOOLEAN THEN $6::TEXT ELSE full_name END, \
                     updated_at = $7 \
                     WHERE id = $1 \
                     RETURNING {USER_COLUMNS}"
                ),
                &[
                    &id,
                    &disable,
                    &role_name,
                    &email,
                    &change_full_name,
                    &full_name,
                    &now,
                    &email_key,
                ],
            )
            .await?;
            let user = user_or_not_found(updated.as_ref())?;
            if let Some(role) = role {
                narrow_grants(&transaction, id, role, now).await?;
            }
            if disable == Some(true) {
                end_every_credential(&transaction, id, now).await?;
            }
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
            Ok(user)
        })
        .await
    }

    async fn ensure_writable(&self) -> Result<(), StoreError> {
        self.probe_write().await
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        self.run("check_health", |client| async move {
            // Reads a page of `users`: fails when the server cannot answer
            // or the schema is not there.
            sql::query_one(&client, "SELECT EXISTS (SELECT 1 FROM users LIMIT 1)", &[]).await?;
            Ok(())
        })
        .await
    }
}

/// Locks what the last-admin guard decides on, inside the transaction that
/// acts on the answer: every enabled admin's row, then user `id`'s row.
/// Returns the user's standing (`None`: no such user) and whether an
/// enabled admin other than it exists.
///
/// The admins are locked first and in id order, so two guards never wait
/// on each other in a cycle: of two admins deleting or demoting each other
/// at once, the second waits for the first to commit, then finds the first
/// one's target gone from the set (locking skips rows deleted or changed
/// meanwhile) and refuses. A locked admin cannot stop being one until this
/// transaction ends. An admin promoted meanwhile may be missed, which only
/// makes the guard refuse where it could have allowed.
async fn lock_for_admin_guard(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<(Option<AdminStanding>, bool), OperationError> {
    let admins = sql::query(
        client,
        "SELECT id FROM users WHERE role = 'admin' AND NOT disabled ORDER BY id FOR UPDATE",
        &[],
    )
    .await?;
    let mut other_admins = false;
    for row in &admins {
        let admin: Uuid = row.try_get(0)?;
        other_admins |= admin != id;
    }
    let standing = sql::query_opt(
        client,
        "SELECT role = 'admin', disabled FROM users WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    .map(|row| -> Result<AdminStanding, tokio_postgres::Error> {
        Ok(AdminStanding {
            admin: row.try_get(0)?,
            disabled: row.try_get(1)?,
        })
    })
    .transpose()?;
    Ok((standing, other_admins))
}

/// Revokes, at `now`, every not-yet-revoked session and API key of user
/// `user_id`: what disabling an account means. Expired sessions and keys are
/// marked too, so that nothing of a disabled account reads as live.
async fn end_every_credential(
    client: &impl GenericClient,
    user_id: Uuid,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    sql::execute(
        client,
        "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        &[&user_id, &now],
    )
    .await?;
    revoke_user_api_keys(client, user_id, now).await?;
    Ok(())
}

/// Narrows the scopes of every not-yet-revoked session and API key of user
/// `user_id` to what `role` allows, and ends (revokes at `now`) those left
/// with no scope: what changing a role means for the grants already made.
/// A promotion widens nothing, as every grant is already within the wider
/// role. Meant to run inside the transaction that changes the role; the
/// grants are locked as they are read, so a concurrent rotation returns
/// the narrowed scopes or finishes before.
async fn narrow_grants(
    client: &impl GenericClient,
    user_id: Uuid,
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
        let grants = sql::query(
            client,
            &format!(
                "SELECT id, scope FROM {table} \
                 WHERE user_id = $1 AND revoked_at IS NULL FOR UPDATE"
            ),
            &[&user_id],
        )
        .await?;
        for grant in grants {
            let id: Uuid = grant.try_get(0)?;
            let scope: String = grant.try_get(1)?;
            let granted = parse(&scope)?;
            let narrowed = granted.intersection(allowed);
            if narrowed.is_empty() {
                sql::execute(
                    client,
                    &format!("UPDATE {table} SET revoked_at = $2 WHERE id = $1"),
                    &[&id, &now],
                )
                .await?;
            } else if narrowed != granted {
                sql::execute(
                    client,
                    &format!("UPDATE {table} SET scope = $2 WHERE id = $1"),
                    &[&id, &narrowed.to_string()],
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// One page of [`UserStore::list_users`]: at most `limit` users with `pk`
/// above `after`, matching `search`, in `pk` order.
///
/// `pk` is an identity column: it only grows and is never reused, so a new
/// user always sorts after every existing one, a cursor never skips or
/// repeats a user, and users added meanwhile show up on a later page.
async fn list_user_page(
    client: &impl GenericClient,
    after: Option<i64>,
    search: Option<&str>,
    limit: u32,
) -> Result<UserPage, OperationError> {
    // One row more than asked for tells whether there is a next page.
    let fetch = i64::from(limit) + 1;
    // The statement is assembled from fixed pieces, never from input, so
    // that each variant keeps a plain `pk > $n` range scan on the primary
    // key and is cached on its own.
    let mut conditions = Vec::new();
    let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&fetch];
    if let Some(after) = &after {
        parameters.push(after);
        conditions.push(format!("pk > ${}", parameters.len()));
    }
    if let Some(search) = &search {
        parameters.push(search);
        // `strpos` compares literally, so `%`, `_` and `\` in a search mean
        // themselves, unlike in LIKE. The term arrives normalised by the
        // domain (`UserSearch`: NFKC, lower-case, punycode decoded), and
        // `username` and `email_key` are stored in that same folded form,
        // so no SQL-side folding is needed.
        let n = parameters.len();
        conditions.push(format!(
            "(strpos(username, ${n}) > 0 OR strpos(email_key, ${n}) > 0)"
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let rows = sql::query(
        client,
        &format!("SELECT pk, {USER_COLUMNS} FROM users {filter} ORDER BY pk LIMIT $1"),
        &parameters,
    )
    .await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    let mut users = Vec::with_capacity(limit.min(rows.len()));
    let mut last_pk = None;
    for row in rows.iter().take(limit) {
        last_pk = Some(row.try_get::<_, i64>(0)?);
        users.push(User::try_from(UserRow::read(row, 1)?)?);
    }
    let next_cursor = if more {
        last_pk.map(PageCursor::after_user)
    } else {
        None
    };
    Ok(UserPage { users, next_cursor })
}

/// The updated user, or [`StoreError::NotFound`] when no row matched.
fn user_or_not_found(row: Option<&tokio_postgres::Row>) -> Result<User, OperationError> {
    match row {
        Some(row) => Ok(User::try_from(UserRow::read(row, 0)?)?),
        None => Err(StoreError::NotFound.into()),
    }
}
