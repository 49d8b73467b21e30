//! [`SigningKeyStore`] for [`MemoryStore`].

use async_trait::async_trait;
use portcullis_domain::audit::AuditRecord;
use portcullis_domain::ports::SigningKeyStore;
use portcullis_domain::{KeyRotation, KeyState, RotationOutcome, StoreError, StoredSigningKey};
use time::OffsetDateTime;

use super::MemoryStore;

#[async_trait]
impl SigningKeyStore for MemoryStore {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let mut keys = self.state().signing_keys.clone();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        Ok(keys)
    }

    async fn install_signing_keys(
        &self,
        keys: &[StoredSigningKey],
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state
            .signing_keys
            .iter()
            .any(|key| key.state == KeyState::Current)
        {
            return Ok(false);
        }
        let audit_key = self.audit_key()?;
        state.signing_keys.extend_from_slice(keys);
        state.audit.append(&*audit_key, audit);
        Ok(true)
    }

    async fn rotate_signing_keys(
        &self,
        rotation: &KeyRotation,
        audit: &AuditRecord,
    ) -> Result<RotationOutcome, StoreError> {
        let mut state = self.state();
        let Some(retiring) = state
            .signing_keys
            .iter_mut()
            .find(|key| key.kid == rotation.current && key.state == KeyState::Current)
        else {
            return Ok(RotationOutcome::Superseded);
        };
        let audit_key = self.audit_key()?;
        retiring.state = KeyState::Retired;
        retiring.retires_at = Some(rotation.retires_at);
        let mut new_next = rotation.new_next.clone();
        match state
            .signing_keys
            .iter_mut()
            .find(|key| key.state == KeyState::Next)
        {
            Some(next) => {
                next.state = KeyState::Current;
                next.signs_from = rotation.now;
                new_next.state = KeyState::Next;
            }
            None => {
                new_next.state = KeyState::Current;
                new_next.signs_from = rotation.now;
            }
        }
        state.signing_keys.push(new_next);
        state.audit.append(&*audit_key, audit);
        Ok(RotationOutcome::Rotated)
    }

    async fn delete_retired_signing_keys(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.signing_keys.len();
        state.signing_keys.retain(|key| {
            key.state != KeyState::Retired || key.retires_at.is_none_or(|end| end > now)
        });
        Ok(u64::try_from(before - state.signing_keys.len()).unwrap_or(u64::MAX))
    }
}
