//! Attempt limits for a whole deployment: governor on each node first, then
//! the budget every node shares in the store.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use portcullis_domain::UserId;
use portcullis_domain::ports::{
    AttemptBudget, AttemptLimiter, Clock, RateLimited, SharedAttemptCounter,
};
use sha2::{Digest, Sha256};

use crate::limiter::{GovernorAttemptLimiter, address_key};

/// Counts every credential check twice: first against this node's governor
/// limiter (in memory, no round trip, so a flood at one node is refused
/// before it reaches the database), then against the budget all nodes share
/// through the store's [`SharedAttemptCounter`]. With N nodes behind a load
/// balancer a client gets the configured budget, not N times it.
///
/// When the store cannot count (it is unreachable), the attempt is allowed
/// on the strength of the local limiter alone and a warning is logged: the
/// credential check that follows needs the same store, and answers 503
/// itself. Failing closed here would only hide that answer behind a 429.
pub struct DeploymentAttemptLimiter {
    local: Arc<GovernorAttemptLimiter>,
    shared: Arc<dyn SharedAttemptCounter>,
    clock: Arc<dyn Clock>,
    per_ip: AttemptBudget,
    per_user: AttemptBudget,
    api_key_creations: AttemptBudget,
}

impl DeploymentAttemptLimiter {
    /// The same budgets as [`GovernorAttemptLimiter::new`], shared through
    /// `shared`; `local` should have been made with the same budgets.
    pub fn new(
        local: Arc<GovernorAttemptLimiter>,
        shared: Arc<dyn SharedAttemptCounter>,
        clock: Arc<dyn Clock>,
        per_ip_per_minute: NonZeroU32,
        per_user_per_minute: NonZeroU32,
        api_key_creations_per_minute: NonZeroU32,
    ) -> Self {
        Self {
            local,
            shared,
            clock,
            per_ip: AttemptBudget::per_minute(per_ip_per_minute),
            per_user: AttemptBudget::per_minute(per_user_per_minute),
            api_key_creations: AttemptBudget::per_minute(api_key_creations_per_minute),
        }
    }

    /// The local limiter, whose memory the server trims periodically.
    pub fn local(&self) -> &Arc<GovernorAttemptLimiter> {
        &self.local
    }

    async fn spend(
        &self,
        kind: &'static str,
        value: &str,
        budget: AttemptBudget,
    ) -> Result<(), RateLimited> {
        let key = attempt_key(kind, value);
        match self
            .shared
            .spend_attempt(&key, budget, self.clock.now())
            .await
        {
            Ok(outcome) => outcome.inspect_err(|_| {
                let limiter = if kind == "api_key" {
                    "api_key_creation"
                } else {
                    kind
                };
                crate::metrics::rate_limited(limiter, "deployment");
            }),
            Err(error) => {
                tracing::warn!(%error, "the shared attempt budget cannot be read; counting on this node only");
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for DeploymentAttemptLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploymentAttemptLimiter")
            .field("local", &self.local)
            .field("per_ip", &self.per_ip)
            .field("per_user", &self.per_user)
            .field("api_key_creations", &self.api_key_creations)
            .finish_non_exhaustive()
    }
}

/// The key a budget is stored under: a digest, so that the store holds no
/// username or address an attacker typed, and every kind has its own space.
fn attempt_key(kind: &str, value: &str) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update(b"portcullis attempt budget v1\0");
    digest.update(kind.as_bytes());
    digest.update(b"\0");
    digest.update(value.as_bytes());
    digest.finalize().to_vec()
}

#[async_trait]
impl AttemptLimiter for DeploymentAttemptLimiter {
    async fn check_attempt(
        &self,
        client_ip: Option<IpAddr>,
        username: &str,
    ) -> Result<(), RateLimited> {
        self.local.check_attempt(client_ip, username).await?;
        // The same address key as the local limiter: IPv6 by /64.
        let address = client_ip.map_or(IpAddr::from([0, 0, 0, 0]), address_key);
        self.spend("ip", &address.to_string(), self.per_ip).await?;
        self.spend("user", username, self.per_user).await
    }

    async fn check_api_key_creation(&self, user_id: UserId) -> Result<(), RateLimited> {
        self.local.check_api_key_creation(user_id).await?;
        self.spend("api_key", &user_id.to_string(), self.api_key_creations)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use portcullis_domain::StoreError;
    use time::OffsetDateTime;

    use super::*;

    /// A counter that records what it was asked and answers from a script.
    #[derive(Default)]
    struct ScriptedCounter {
        keys: Mutex<Vec<Vec<u8>>>,
        refuse_after: Option<usize>,
        unavailable: bool,
    }

    #[async_trait]
    impl SharedAttemptCounter for ScriptedCounter {
        async fn spend_attempt(
            &self,
            key: &[u8],
            _budget: AttemptBudget,
            _now: OffsetDateTime,
        ) -> Result<Result<(), RateLimited>, StoreError> {
            if self.unavailable {
                return Err(StoreError::Unavailable("down".to_owned()));
            }
            let mut keys = self
                .keys
                .lock()
                .map_err(|_| StoreError::Failed("poisoned".into()))?;
            keys.push(key.to_vec());
            if self.refuse_after.is_some_and(|after| keys.len() > after) {
                return Ok(Err(RateLimited {
                    retry_after: Duration::from_secs(7),
                }));
            }
            Ok(Ok(()))
        }

        async fn forget_refilled_attempts(&self, _now: OffsetDateTime) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    struct FixedClock;
    impl Clock for FixedClock {
        fn now(&self) -> OffsetDateTime {
            OffsetDateTime::UNIX_EPOCH
        }
    }

    fn limiter(counter: Arc<ScriptedCounter>, per_minute: u32) -> DeploymentAttemptLimiter {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        DeploymentAttemptLimiter::new(
            Arc::new(GovernorAttemptLimiter::new(n, n, n)),
            counter,
            Arc::new(FixedClock),
            n,
            n,
            n,
        )
    }

    #[tokio::test]
    async fn spends_an_address_and_a_username_budget_under_digests() {
        let counter = Arc::new(ScriptedCounter::default());
        let limiter = limiter(counter.clone(), 10);
        let client = Some(IpAddr::from([192, 0, 2, 7]));
        assert!(limiter.check_attempt(client, "alice").await.is_ok());
        let keys = counter
            .keys
            .lock()
            .map(|keys| keys.clone())
            .unwrap_or_default();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1]);
        assert_eq!(keys[1], attempt_key("user", "alice"));
        for key in &keys {
            assert_eq!(key.len(), 32);
            assert!(!key.windows(5).any(|window| window == b"alice"));
        }
    }

    #[tokio::test]
    async fn a_refusal_of_the_shared_budget_is_a_refusal() {
        let counter = Arc::new(ScriptedCounter {
            refuse_after: Some(1),
            ..ScriptedCounter::default()
        });
        let limiter = limiter(counter, 10);
        let refused = limiter.check_attempt(None, "alice").await;
        assert_eq!(
            refused,
            Err(RateLimited {
                retry_after: Duration::from_secs(7)
            })
        );
    }

    #[tokio::test]
    async fn the_local_shield_refuses_before_the_store_is_asked() {
        let counter = Arc::new(ScriptedCounter::default());
        let limiter = limiter(counter.clone(), 2);
        for _ in 0..2 {
            assert!(limiter.check_attempt(None, "bob").await.is_ok());
        }
        assert!(limiter.check_attempt(None, "bob").await.is_err());
        // Two allowed attempts, two keys each; the refused one asked nothing.
        assert_eq!(counter.keys.lock().map(|keys| keys.len()).unwrap_or(0), 4);
    }

    #[tokio::test]
    async fn an_unreachable_store_leaves_the_local_limit_in_force() {
        let counter = Arc::new(ScriptedCounter {
            unavailable: true,
            ..ScriptedCounter::default()
        });
        let limiter = limiter(counter, 1);
        assert!(limiter.check_attempt(None, "carol").await.is_ok());
        assert!(limiter.check_attempt(None, "carol").await.is_err());
    }
}
