//! The life of the signing keys: installed on first start, rotated on a
//! schedule or on demand, deleted once no token they signed can still be
//! valid. Every node of a deployment runs [`KeyLifecycle::maintain`]; the
//! store's atomic rotation makes one of them rotate.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::audit::{AuditContext, AuditEvent};
use crate::error::StoreError;
use crate::ports::{Clock, SigningKeyStore};
use crate::service::Initiator;
use crate::signing_key::{
    KeyId, KeyRotation, KeyState, RotationOutcome, SealedPrivateKey, SigningAlgorithm,
    StoredSigningKey,
};

/// When keys are made, rotated and deleted.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// What new keys sign with.
    pub algorithm: SigningAlgorithm,
    /// How long a key is published before it signs, so that resource
    /// servers caching the key set know it first.
    pub publish_ahead: Duration,
    /// How long a key signs before the scheduled rotation.
    pub rotation_period: Duration,
    /// How long a token can outlive the moment its key stopped signing: the
    /// access-token lifetime plus the verification leeway.
    pub verification_window: Duration,
}

/// A new key's material, from a [`KeyGenerator`].
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// Its id, derived from the public key (or, for HS256, the secret).
    pub kid: KeyId,
    /// What it signs with.
    pub algorithm: SigningAlgorithm,
    /// The raw public key; empty for HS256.
    pub public_key: Vec<u8>,
    /// The private key, sealed.
    pub sealed_private_key: SealedPrivateKey,
}

/// Makes new key pairs and seals their private halves.
pub trait KeyGenerator: Send + Sync {
    /// A fresh key of `algorithm`.
    fn generate(&self, algorithm: SigningAlgorithm) -> Result<GeneratedKey, KeyError>;
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Making or sealing a key failed. The text is for logs only.
    #[error("key generation failed: {0}")]
    Generation(String),
    /// The store holds keys but none is current: installed by something
    /// other than Portcullis, or damaged.
    #[error("the store holds signing keys but none is current")]
    NoCurrentKey,
}

/// A key as the listing shows it: never any private material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its id.
    pub kid: KeyId,
    /// What it signs with.
    pub algorithm: SigningAlgorithm,
    /// Where it is in its life.
    pub state: KeyState,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it began signing, or the earliest time it may.
    pub signs_from: OffsetDateTime,
    /// When it stops verifying (retired) or is due to stop signing
    /// (current, by the schedule); `None` for a next key.
    pub retires_at: Option<OffsetDateTime>,
}

/// What one [`KeyLifecycle::maintain`] pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Maintenance {
    /// Whether this node rotated (another node may have, too late for it).
    pub rotated: bool,
    /// How many retired keys were deleted.
    pub deleted: u64,
}

/// The key use-cases, over the key store, a generator and the clock.
#[derive(Clone)]
pub struct KeyLifecycle {
    store: Arc<dyn SigningKeyStore>,
    generator: Arc<dyn KeyGenerator>,
    clock: Arc<dyn Clock>,
    policy: KeyPolicy,
}

impl KeyLifecycle {
    /// The use-cases over these ports, under `policy`.
    pub fn new(
        store: Arc<dyn SigningKeyStore>,
        generator: Arc<dyn KeyGenerator>,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
    ) -> Self {
        Self {
            store,
            generator,
            clock,
            policy,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    /// Installs a current and a next key if the store has none: a new
    /// deployment's first start. `upgraded` is the key of a v1 data
    /// directory, installed retired so that the tokens it signed verify
    /// until they expire. Whether this call installed (on several nodes
    /// starting at once, one does).
    pub async fn install_if_empty(&self, upgraded: Option<GeneratedKey>) -> Result<bool, KeyError> {
        if self
            .store
            .signing_keys()
            .await?
            .iter()
            .any(|key| key.state == KeyState::Current)
        {
            return Ok(false);
        }
        let now = self.now();
        let mut keys = Vec::with_capacity(3);
        if let Some(upgraded) = upgraded {
            keys.push(StoredSigningKey {
                state: KeyState::Retired,
                retires_at: Some(later(now, self.policy.verification_window)),
                ..stored(upgraded, now, now)
            });
        }
        keys.push(stored(self.generate()?, now, now));
        keys.push(StoredSigningKey {
            state: KeyState::Next,
            ..stored(self.generate()?, now, later(now, self.policy.publish_ahead))
        });
        let audit = AuditContext::system(now).record(
            None,
            AuditEvent::SigningKeysInstalled {
                kids: keys.iter().map(|key| key.kid.clone()).collect(),
            },
        );
        Ok(self.store.install_signing_keys(&keys, &audit).await?)
    }

    /// One pass of upkeep: deletes the retired keys whose tokens have all
    /// expired, and rotates when the current key's period is over and the
    /// next key has been published for the publish-ahead time.
    pub async fn maintain(&self) -> Result<Maintenance, KeyError> {
        let now = self.now();
        let deleted = self.store.delete_retired_signing_keys(now).await?;
        let keys = self.store.signing_keys().await?;
        let current = current_key(&keys)?;
        let period_over = later(current.signs_from, self.policy.rotation_period) <= now;
        let next_is_known = keys
            .iter()
            .find(|key| key.state == KeyState::Next)
            .is_none_or(|next| next.signs_from <= now);
        let rotated = period_over
            && next_is_known
            && self
                .rotate_from(&keys, now, &AuditContext::system(now))
                .await?
                == RotationOutcome::Rotated;
        Ok(Maintenance { rotated, deleted })
    }

    /// Rotates now, whatever the schedule: the next key signs at once
    /// (an operator's answer to a suspected leak cannot wait for the
    /// publish-ahead time; resource servers fetch a key they do not know).
    pub async fn rotate_now(&self) -> Result<(), KeyError> {
        self.rotate_now_by(&Initiator::command_line()).await
    }

    /// [`rotate_now`](Self::rotate_now) on behalf of `initiator` (an
    /// administrator through the API), who is the rotation's audit actor.
    pub async fn rotate_now_by(&self, initiator: &Initiator) -> Result<(), KeyError> {
        loop {
            let keys = self.store.signing_keys().await?;
            let now = self.now();
            let context = AuditContext {
                at: now,
                actor_id: initiator.actor_id,
                client: initiator.client.clone(),
            };
            // Superseded means another node rotated between the read and
            // the write; rotating again from the new current key is what
            // the operator asked for.
            if self.rotate_from(&keys, now, &context).await? == RotationOutcome::Rotated {
                return Ok(());
            }
        }
    }

    /// Every key as the listing shows it, in the order they sign (by
    /// `signs_from`): retired keys, the current key, the next key.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let mut keys = self.store.signing_keys().await?;
        keys.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
        Ok(keys
            .into_iter()
            .map(|key| {
                let retires_at = match key.state {
                    KeyState::Next => None,
                    KeyState::Current => Some(later(key.signs_from, self.policy.rotation_period)),
                    KeyState::Retired => key.retires_at,
                };
                KeyInfo {
                    kid: key.kid,
                    algorithm: key.algorithm,
                    state: key.state,
                    created_at: key.created_at,
                    signs_from: key.signs_from,
                    retires_at,
                }
            })
            .collect())
    }

    /// Rotates from the current key of `keys` (as read).
    async fn rotate_from(
        &self,
        keys: &[StoredSigningKey],
        now: OffsetDateTime,
        context: &AuditContext,
    ) -> Result<RotationOutcome, KeyError> {
        let current = current_key(keys)?.kid.clone();
        let new_next = StoredSigningKey {
            state: KeyState::Next,
            ..stored(self.generate()?, now, later(now, self.policy.publish_ahead))
        };
        // With no next key, the new one signs at once and none is next.
        let (signs_now, next) = match keys.iter().find(|key| key.state == KeyState::Next) {
            Some(next) => (next.kid.clone(), Some(new_next.kid.clone())),
            None => (new_next.kid.clone(), None),
        };
        let audit = context.record(
            None,
            AuditEvent::SigningKeyRotated {
                retired: current.clone(),
                current: signs_now,
                next,
            },
        );
        Ok(self
            .store
            .rotate_signing_keys(
                &KeyRotation {
                    current,
                    new_next,
                    now,
                    retires_at: later(now, self.policy.verification_window),
                },
                &audit,
            )
            .await?)
    }

    fn generate(&self) -> Result<GeneratedKey, KeyError> {
        self.generator.generate(self.policy.algorithm)
    }

    /// Whole seconds, as the store keeps times.
    fn now(&self) -> OffsetDateTime {
        let now = self.clock.now();
        now.replace_nanosecond(0).unwrap_or(now)
    }
}

fn current_key(keys: &[StoredSigningKey]) -> Result<&StoredSigningKey, KeyError> {
    keys.iter()
        .find(|key| key.state == KeyState::Current)
        .ok_or(KeyError::NoCurrentKey)
}

/// A current key made now; callers adjust the state and times.
fn stored(
    key: GeneratedKey,
    created_at: OffsetDateTime,
    signs_from: OffsetDateTime,
) -> StoredSigningKey {
    StoredSigningKey {
        kid: key.kid,
        algorithm: key.algorithm,
        state: KeyState::Current,
        created_at,
        signs_from,
        retires_at: None,
        public_key: key.public_key,
        sealed_private_key: key.sealed_private_key,
    }
}

/// `time + duration`, saturating far in the future.
fn later(time: OffsetDateTime, duration: Duration) -> OffsetDateTime {
    time::Duration::try_from(duration)
        .ok()
        .and_then(|duration| time.checked_add(duration))
        .unwrap_or(OffsetDateTime::new_utc(
            time::Date::MAX,
            time::Time::MIDNIGHT,
        ))
}
