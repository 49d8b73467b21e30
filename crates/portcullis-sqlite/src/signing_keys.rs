//! [`SigningKeyStore`] for [`SqliteStore`].

use async_trait::async_trait;
use portcullis_domain::audit::AuditRecord;
use portcullis_domain::ports::SigningKeyStore;
use portcullis_domain::{
    KeyId, KeyRotation, KeyState, RotationOutcome, SealedPrivateKey, SigningAlgorithm, StoreError,
    StoredSigningKey,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::audit::append;
use crate::rows::{corrupt, from_unix, to_unix};
use crate::store::{OperationError, SqliteStore};

/// The columns [`KeyRow::read`] reads, in its order (also for the copy
/// in `snapshot.rs`).
pub(crate) const COLUMNS: &str = "kid, algorithm, state, created_at, signs_from, retires_at, \
                       public_key, sealed_private_key";

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.run("signing_keys", |connection| {
            let rows = connection
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, kid"
                ))?
                .query_map([], KeyRow::read)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows
                .into_iter()
                .map(KeyRow::into_key)
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn install_signing_keys(
        &self,
        keys: &[StoredSigningKey],
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let audit_key = self.audit_key();
        let audit = audit.clone();
        let keys = keys.to_vec();
        self.run("install_signing_keys", move |connection| {
            // The check and the inserts under one write lock: of concurrent
            // installs the first to take it installs, the rest see its keys.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if current_kid(&transaction)?.is_some() {
                return Ok(false);
            }
            for key in &keys {
                insert(&transaction, key, key.state)?;
            }
            append(&transaction, audit_key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(true)
        })
        .await
    }

    async fn rotate_signing_keys(
        &self,
        rotation: &KeyRotation,
        audit: &AuditRecord,
    ) -> Result<RotationOutcome, StoreError> {
        let audit_key = self.audit_key();
        let audit = audit.clone();
        let rotation = rotation.clone();
        self.run("rotate_signing_keys", move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if current_kid(&transaction)?.as_deref() != Some(rotation.current.as_str()) {
                return Ok(RotationOutcome::Superseded);
            }
            let now = to_unix(rotation.now);
            transaction
                .prepare_cached(
                    "UPDATE signing_keys SET state = 'retired', retires_at = ?2 \
                     WHERE kid = ?1",
                )?
                .execute(params![
                    rotation.current.as_str(),
                    to_unix(rotation.retires_at)
                ])?;
            let promoted = transaction
                .prepare_cached(
                    "UPDATE signing_keys SET state = 'current', signs_from = ?1 \
                     WHERE state = 'next'",
                )?
                .execute(params![now])?;
            if promoted == 0 {
                // No next key: the new one signs at once, so one key always
                // signs.
                let new_current = StoredSigningKey {
                    signs_from: rotation.now,
                    ..rotation.new_next.clone()
                };
                insert(&transaction, &new_current, KeyState::Current)?;
            } else {
                insert(&transaction, &rotation.new_next, KeyState::Next)?;
            }
            append(&transaction, audit_key.as_deref(), &audit)?;
            transaction.commit()?;
            Ok(RotationOutcome::Rotated)
        })
        .await
    }

    async fn delete_retired_signing_keys(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = to_unix(now);
        self.run("delete_retired_signing_keys", move |connection| {
            let deleted = connection
                .prepare_cached(
                    "DELETE FROM signing_keys WHERE state = 'retired' AND retires_at <= ?1",
                )?
                .execute(params![now])?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }
}

fn current_kid(connection: &Connection) -> Result<Option<String>, OperationError> {
    Ok(connection
        .prepare_cached("SELECT kid FROM signing_keys WHERE state = 'current'")?
        .query_row([], |row| row.get(0))
        .optional()?)
}

fn insert(
    connection: &Connection,
    key: &StoredSigningKey,
    state: KeyState,
) -> Result<(), OperationError> {
    let retires_at = match state {
        KeyState::Retired => key.retires_at.map(to_unix),
        KeyState::Next | KeyState::Current => None,
    };
    connection
        .prepare_cached(&format!(
            "INSERT INTO signing_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?
        .execute(params![
            key.kid.as_str(),
            key.algorithm.as_str(),
            state.as_str(),
            to_unix(key.created_at),
            to_unix(key.signs_from),
            retires_at,
            key.public_key,
            key.sealed_private_key.as_bytes(),
        ])?;
    Ok(())
}

/// A `signing_keys` row as read, parsed by [`KeyRow::into_key`].
pub(crate) struct KeyRow {
    kid: String,
    algorithm: String,
    state: String,
    created_at: i64,
    signs_from: i64,
    retires_at: Option<i64>,
    public_key: Vec<u8>,
    sealed_private_key: Vec<u8>,
}

impl KeyRow {
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            kid: row.get(0)?,
            algorithm: row.get(1)?,
            state: row.get(2)?,
            created_at: row.get(3)?,
            signs_from: row.get(4)?,
            retires_at: row.get(5)?,
            public_key: row.get(6)?,
            sealed_private_key: row.get(7)?,
        })
    }

    pub(crate) fn into_key(self) -> Result<StoredSigningKey, StoreError> {
        let time = |seconds: i64, column: &str| {
            from_unix(seconds).ok_or_else(|| corrupt("signing_keys", column))
        };
        Ok(StoredSigningKey {
            kid: KeyId::parse(&self.kid).map_err(|_| corrupt("signing_keys", "kid"))?,
            algorithm: SigningAlgorithm::parse(&self.algorithm)
                .ok_or_else(|| corrupt("signing_keys", "algorithm"))?,
            state: KeyState::parse(&self.state).ok_or_else(|| corrupt("signing_keys", "state"))?,
            created_at: time(self.created_at, "created_at")?,
            signs_from: time(self.signs_from, "signs_from")?,
            retires_at: self
                .retires_at
                .map(|seconds| time(seconds, "retires_at"))
                .transpose()?,
            public_key: self.public_key,
            sealed_private_key: SealedPrivateKey::from_sealed(self.sealed_private_key),
        })
    }
}
