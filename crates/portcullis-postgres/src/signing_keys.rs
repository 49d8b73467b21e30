//! [`SigningKeyStore`] for [`PostgresStore`].

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use portcullis_domain::audit::AuditRecord;
use portcullis_domain::ports::SigningKeyStore;
use portcullis_domain::{
    KeyId, KeyRotation, KeyState, RotationOutcome, SealedPrivateKey, SigningAlgorithm, StoreError,
    StoredSigningKey,
};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::rows::{corrupt, optional_time, time, to_unix};
use crate::sql;
use crate::store::{OperationError, PostgresStore};

pub(crate) const COLUMNS: &str = "kid, algorithm, state, created_at, signs_from, retires_at, \
                                  public_key, sealed_private_key";

/// Taken by every change of the key set that reads before it writes: the
/// mode conflicts with itself and with every write (so installs and
/// rotations take turns, each seeing what the previous one committed) but
/// not with reads, so nodes keep loading keys meanwhile.
const LOCK_KEYS: &str = "LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE";

#[async_trait]
impl SigningKeyStore for PostgresStore {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.run(
            "signing_keys",
            |client| async move { all_keys(&client).await },
        )
        .await
    }

    async fn install_signing_keys(
        &self,
        keys: &[StoredSigningKey],
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        self.run("install_signing_keys", move |mut client| async move {
            // The check and the inserts under the table lock: of concurrent
            // installs the first to take it installs, the rest see its keys.
            let transaction = client.transaction().await?;
            transaction.batch_execute(LOCK_KEYS).await?;
            if current_kid(&transaction).await?.is_some() {
                return Ok(false);
            }
            for key in keys {
                insert(&transaction, key, key.state).await?;
            }
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn rotate_signing_keys(
        &self,
        rotation: &KeyRotation,
        audit: &AuditRecord,
    ) -> Result<RotationOutcome, StoreError> {
        self.run("rotate_signing_keys", move |mut client| async move {
            let transaction = client.transaction().await?;
            transaction.batch_execute(LOCK_KEYS).await?;
            if current_kid(&transaction).await?.as_deref() != Some(rotation.current.as_str()) {
                return Ok(RotationOutcome::Superseded);
            }
            let now = to_unix(rotation.now);
            sql::execute(
                &transaction,
                "UPDATE signing_keys SET state = 'retired', retires_at = $2 WHERE kid = $1",
                &[&rotation.current.as_str(), &to_unix(rotation.retires_at)],
            )
            .await?;
            let promoted = sql::execute(
                &transaction,
                "UPDATE signing_keys SET state = 'current', signs_from = $1 \
                 WHERE state = 'next'",
                &[&now],
            )
            .await?;
            if promoted == 0 {
                // No next key: the new one signs at once, so one key always
                // signs.
                let new_current = StoredSigningKey {
                    signs_from: rotation.now,
                    ..rotation.new_next.clone()
                };
                insert(&transaction, &new_current, KeyState::Current).await?;
            } else {
                insert(&transaction, &rotation.new_next, KeyState::Next).await?;
            }
            self.append_audit(&transaction, std::slice::from_ref(audit))
                .await?;
            transaction.commit().await?;
            Ok(RotationOutcome::Rotated)
        })
        .await
    }

    async fn delete_retired_signing_keys(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = to_unix(now);
        self.run("delete_retired_signing_keys", move |client| async move {
            Ok(sql::execute(
                &client,
                "DELETE FROM signing_keys WHERE state = 'retired' AND retires_at <= $1",
                &[&now],
            )
            .await?)
        })
        .await
    }
}

/// Every key, oldest first (creation time, then kid).
pub(crate) async fn all_keys(
    client: &impl GenericClient,
) -> Result<Vec<StoredSigningKey>, OperationError> {
    let rows = sql::query(
        client,
        &format!("SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, kid"),
        &[],
    )
    .await?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        keys.push(read_key(row)?);
    }
    Ok(keys)
}

async fn current_kid(client: &impl GenericClient) -> Result<Option<String>, OperationError> {
    let row = sql::query_opt(
        client,
        "SELECT kid FROM signing_keys WHERE state = 'current'",
        &[],
    )
    .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Stores `key` in `state` (a retired key keeps its `retires_at`; the
/// others have none).
pub(crate) async fn insert(
    client: &impl GenericClient,
    key: &StoredSigningKey,
    state: KeyState,
) -> Result<(), OperationError> {
    let retires_at = match state {
        KeyState::Retired => key.retires_at.map(to_unix),
        KeyState::Next | KeyState::Current => None,
    };
    sql::execute(
        client,
        &format!("INSERT INTO signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        &[
            &key.kid.as_str(),
            &key.algorithm.as_str(),
            &state.as_str(),
            &to_unix(key.created_at),
            &to_unix(key.signs_from),
            &retires_at,
            &key.public_key,
            &key.sealed_private_key.as_bytes(),
        ],
    )
    .await?;
    Ok(())
}

/// A `signing_keys` row ([`COLUMNS`]) parsed.
fn read_key(row: &Row) -> Result<StoredSigningKey, OperationError> {
    let kid: String = row.try_get(0)?;
    let algorithm: String = row.try_get(1)?;
    let state: String = row.try_get(2)?;
    Ok(StoredSigningKey {
        kid: KeyId::parse(&kid).map_err(|_| corrupt("signing_keys", "kid"))?,
        algorithm: SigningAlgorithm::parse(&algorithm)
            .ok_or_else(|| corrupt("signing_keys", "algorithm"))?,
        state: KeyState::parse(&state).ok_or_else(|| corrupt("signing_keys", "state"))?,
        created_at: time(row.try_get(3)?, "signing_keys", "created_at")?,
        signs_from: time(row.try_get(4)?, "signing_keys", "signs_from")?,
        retires_at: optional_time(row.try_get(5)?, "signing_keys", "retires_at")?,
        public_key: row.try_get(6)?,
        sealed_private_key: SealedPrivateKey::from_sealed(row.try_get(7)?),
    })
}
