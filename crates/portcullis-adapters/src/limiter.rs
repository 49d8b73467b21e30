//! Rate limits with governor behind the domain's `AttemptLimiter` port.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use async_trait::async_trait;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use portcullis_domain::UserId;
use portcullis_domain::ports::{AttemptLimiter, RateLimited};

/// governor keyed limiters behind the domain's [`AttemptLimiter`] port: one
/// keyed by client address (IPv6 by /64, the usual smallest allocation, so a
/// host cannot rotate through its own addresses), one by username, and one
/// by user id for API-key creations.
///
/// governor never forgets keys on its own (STACK-NOTES 12): call
/// [`retain_recent`](Self::retain_recent) periodically.
#[derive(Debug)]
pub struct GovernorAttemptLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
    api_key_creations: DefaultKeyedRateLimiter<UserId>,
}

impl GovernorAttemptLimiter {
    /// Credential checks allowed per client address per minute unless
    /// configured otherwise: ten, enough for a person who mistypes and far
    /// too few for a guessing script.
    pub const DEFAULT_PER_IP_PER_MINUTE: NonZeroU32 = per_minute(10);

    /// Credential checks allowed per username per minute unless configured
    /// otherwise.
    pub const DEFAULT_PER_USER_PER_MINUTE: NonZeroU32 = per_minute(10);

    /// API-key creations allowed per user per minute unless configured
    /// otherwise.
    pub const DEFAULT_API_KEY_CREATIONS_PER_MINUTE: NonZeroU32 = per_minute(10);

    /// Allows `per_ip_per_minute` attempts per client address,
    /// `per_user_per_minute` per username and `api_key_creations_per_minute`
    /// API-key creations per user, each with a burst of the same size.
    pub fn new(
        per_ip_per_minute: NonZeroU32,
        per_user_per_minute: NonZeroU32,
        api_key_creations_per_minute: NonZeroU32,
    ) -> Self {
        Self {
            per_ip: RateLimiter::keyed(Quota::per_minute(per_ip_per_minute)),
            per_user: RateLimiter::keyed(Quota::per_minute(per_user_per_minute)),
            api_key_creations: RateLimiter::keyed(Quota::per_minute(api_key_creations_per_minute)),
        }
    }

    /// Forgets keys whose budget is full again and releases their memory.
    pub fn retain_recent(&self) {
        self.per_ip.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_user.retain_recent();
        self.per_user.shrink_to_fit();
        self.api_key_creations.retain_recent();
        self.api_key_creations.shrink_to_fit();
    }

    /// How many keys are remembered (all limiters).
    pub fn len(&self) -> usize {
        self.per_ip.len() + self.per_user.len() + self.api_key_creations.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The limiter key of an address: IPv4 as is, IPv6 by its /64 network.
pub fn address_key(address: IpAddr) -> IpAddr {
    match portcullis_domain::canonical_ip(address) {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

// governor answers at once from memory: nothing here awaits.
#[async_trait]
impl AttemptLimiter for GovernorAttemptLimiter {
    async fn check_attempt(
        &self,
        client_ip: Option<IpAddr>,
        username: &str,
    ) -> Result<(), RateLimited> {
        let refuse = |not_until: governor::NotUntil<_>| RateLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        };
        // Without a socket address (in-process tests) all such callers share
        // one budget rather than escaping the limit.
        let address = client_ip.map_or(IpAddr::from([0, 0, 0, 0]), address_key);
        self.per_ip.check_key(&address).map_err(|not_until| {
            crate::metrics::rate_limited("ip", "node");
            refuse(not_until)
        })?;
        self.per_user
            .check_key(&username.to_owned())
            .map_err(|not_until| {
                crate::metrics::rate_limited("user", "node");
                refuse(not_until)
            })?;
        Ok(())
    }

    async fn check_api_key_creation(&self, user_id: UserId) -> Result<(), RateLimited> {
        self.api_key_creations
            .check_key(&user_id)
            .map_err(|not_until| {
                crate::metrics::rate_limited("api_key_creation", "node");
                RateLimited {
                    retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                }
            })
    }
}

/// A quota for the constants above; zero fails the build, not a request.
const fn per_minute(attempts: u32) -> NonZeroU32 {
    match NonZeroU32::new(attempts) {
        Some(attempts) => attempts,
        None => panic!("a quota allows at least one attempt"),
    }
}
