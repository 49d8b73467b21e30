//! [`UserStore`] for [`SqliteStore`].

use async_trait::async_trait;
use portcullis_domain::ports::UserStore;
use portcullis_domain::{
    NewUser, PasswordHashString, ProfileChanges, Role, SessionId, StoreError, User,
    UserCredentials, UserId, Username,
};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::rows::{USER_COLUMN_COUNT, USER_COLUMNS, UserRow, to_unix};
use crate::sessions::revoke_other_sessions;
use crate::store::{OperationError, SqliteStore};

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, new_user: &NewUser) -> Result<(), StoreError> {
        let user = &new_user.user;
        let id = user.id.to_string();
        let username = user.username.as_str().to_owned();
        let email = user.email.as_str().to_owned();
        let full_name = user.full_name.as_ref().map(|name| name.as_str().to_owned());
        let password_hash = new_user.password_hash.as_str().to_owned();
        let role = user.role.as_str();
        let disabled = user.disabled;
        let created_at = to_unix(user.created_at);
        self.run("insert_user", move |connection| {
            // One statement: the unique indexes decide races between
            // concurrent registrations, and the loser gets a conflict.
            connection
                .prepare_cached(
                    "INSERT INTO users \
                     (id, username, email, full_name, password_hash, role, disabled, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                )?
                .execute(params![
                    id,
                    username,
                    email,
                    full_name,
                    password_hash,
                    role,
                    disabled,
                    created_at
                ])?;
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
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let hash = hash.as_str().to_owned();
        self.run("update_password_hash", move |connection| {
            let changed = connection
                .prepare_cached(
                    "UPDATE users SET password_hash = ?2, updated_at = unixepoch() WHERE id = ?1",
                )?
                .execute(params![id, hash])?;
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
    ) -> Result<User, StoreError> {
        let id = id.to_string();
        let email = changes
            .email
            .as_ref()
            .map(|email| email.as_str().to_owned());
        let change_full_name = changes.full_name.is_some();
        let full_name = changes
            .full_name
            .as_ref()
            .and_then(|name| name.as_ref().map(|name| name.as_str().to_owned()));
        self.run("update_profile", move |connection| {
            // One statement, so there is no read-then-write to guard: NULL
            // parameters leave a column as it is, except that `full_name`
            // needs a separate flag because NULL is also a value it can take.
            let updated = connection
                .prepare_cached(&format!(
                    "UPDATE users SET \
                     email = coalesce(?2, email), \
                     full_name = CASE WHEN ?3 THEN ?4 ELSE full_name END, \
                     updated_at = unixepoch() \
                     WHERE id = ?1 \
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(params![id, email, change_full_name, full_name], |row| {
                    UserRow::read(row, 0)
                })
                .optional()?;
            user_or_not_found(updated)
        })
        .await
    }

    async fn set_disabled(&self, username: &Username, disabled: bool) -> Result<User, StoreError> {
        let username = username.as_str().to_owned();
        self.run("set_disabled", move |connection| {
            // The flag and the end of every session change together or not
            // at all, so a disabled account never keeps a live session.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let updated = transaction
                .prepare_cached(&format!(
                    "UPDATE users SET disabled = ?2, updated_at = unixepoch() \
                     WHERE username = ?1 \
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(params![username, disabled], |row| UserRow::read(row, 0))
                .optional()?;
            let user = user_or_not_found(updated)?;
            if disabled {
                transaction
                    .prepare_cached(
                        "UPDATE sessions SET revoked_at = unixepoch() \
                         WHERE user_id = ?1 AND revoked_at IS NULL",
                    )?
                    .execute([user.id.to_string()])?;
            }
            transaction.commit()?;
            Ok(user)
        })
        .await
    }

    async fn set_role(&self, username: &Username, role: Role) -> Result<User, StoreError> {
        let username = username.as_str().to_owned();
        let role = role.as_str();
        self.run("set_role", move |connection| {
            let updated = connection
                .prepare_cached(&format!(
                    "UPDATE users SET role = ?2, updated_at = unixepoch() \
                     WHERE username = ?1 \
                     RETURNING {USER_COLUMNS}"
                ))?
                .query_row(params![username, role], |row| UserRow::read(row, 0))
                .optional()?;
            user_or_not_found(updated)
        })
        .await
    }

    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHashString,
        keep_session: SessionId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let hash = hash.as_str().to_owned();
        let keep_session = keep_session.to_string();
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
            revoke_other_sessions(&transaction, &id, Some(&keep_session), now)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        let id = id.to_string();
        self.run("delete_user", move |connection| {
            // One statement, atomic with its cascades: the foreign keys (on
            // for every pooled connection) delete the user's sessions and,
            // through them, their refresh tokens.
            let deleted = connection
                .prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute([&id])?;
            if deleted == 0 {
                return Err(StoreError::NotFound.into());
            }
            Ok(())
        })
        .await
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

/// The updated user, or [`StoreError::NotFound`] when no row matched.
fn user_or_not_found(row: Option<UserRow>) -> Result<User, OperationError> {
    match row {
        Some(row) => Ok(User::try_from(row)?),
        None => Err(StoreError::NotFound.into()),
    }
}
