//! Adapters from `portcullis-crypto` to the domain's ports, with the runtime
//! concerns the crypto crate deliberately lacks: hashing on blocking threads
//! with bounded concurrency and a bounded queue.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use portcullis_crypto::{Argon2Hasher, Argon2Workspace, JwtCodec, JwtError, PasswordCheck};
use portcullis_domain::ports::{
    AttemptLimiter, PasswordHasher, PasswordVerification, RateLimited, TokenIssuer, TokenVerifier,
};
use portcullis_domain::{
    API_KEY_PREFIX, AccessTokenClaims, ApiKeyHash, HashingError, Password, PasswordHashString,
    RefreshTokenHash, ScopeSet, SessionId, TokenError, UserId,
};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

/// How much password hashing may happen at once.
#[derive(Debug, Clone, Copy)]
pub struct HashingLimits {
    /// Hashes computed in parallel (one blocking thread each).
    pub max_concurrent: usize,
    /// Further hashes allowed to wait for a slot; beyond that, `Busy` at once.
    pub max_queued: usize,
    /// The longest a queued hash waits before giving up with `Busy`.
    pub max_wait: Duration,
}

impl HashingLimits {
    /// One hash per CPU core, 32 waiting per core, at most 5 s of waiting.
    pub fn for_available_cores() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            max_concurrent: cores,
            max_queued: cores * 32,
            max_wait: Duration::from_secs(5),
        }
    }
}

/// A unit of hashing work, run on one of the pool's threads.
type HashingJob = Box<dyn FnOnce(&Argon2Hasher, &mut Argon2Workspace) + Send>;

/// argon2id behind the domain's [`PasswordHasher`] port, on a fixed pool of
/// `max_concurrent` dedicated threads fed by a bounded queue.
///
/// Each thread owns one [`Argon2Workspace`], so hashing memory is exactly
/// threads × `m` KiB however many requests arrive; tokio's blocking pool is
/// not used because it grows to hundreds of threads under load, and argon2's
/// large buffers then linger in as many allocator arenas. A full queue answers
/// `Busy` at once, a job that waited longer than `max_wait` answers `Busy`
/// without being computed, and a job whose caller has gone is skipped.
#[derive(Clone)]
pub struct BlockingArgon2Hasher {
    jobs: SyncSender<HashingJob>,
    max_wait: Duration,
}

impl std::fmt::Debug for BlockingArgon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingArgon2Hasher")
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl BlockingArgon2Hasher {
    /// Starts the hashing threads. They stop when the last clone is dropped.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread.
    pub fn new(hasher: Argon2Hasher, limits: HashingLimits) -> Self {
        let (jobs, queue) = sync_channel::<HashingJob>(limits.max_queued);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..limits.max_concurrent.max(1) {
            let queue = Arc::clone(&queue);
            let hasher = hasher.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    let mut workspace = Argon2Workspace::new();
                    loop {
                        // The lock is held only while waiting for the next
                        // job; a poisoned lock cannot hide a job, so go on.
                        let next = queue
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        match next {
                            Ok(job) => job(&hasher, &mut workspace),
                            Err(_) => break,
                        }
                    }
                })
                .unwrap_or_else(|error| panic!("cannot start a hashing thread: {error}"));
        }
        Self {
            jobs,
            max_wait: limits.max_wait,
        }
    }

    /// Runs `work` on a hashing thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2Hasher, &mut Argon2Workspace) -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let deadline = Instant::now() + self.max_wait;
        let job: HashingJob = Box::new(move |hasher, workspace| {
            // Too late, or nobody is waiting any more: do not spend the CPU.
            // Dropping `reply` tells a waiting caller it is busy.
            if Instant::now() > deadline || reply.is_closed() {
                return;
            }
            let _ = reply.send(work(hasher, workspace));
        });
        self.jobs.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => HashingError::Busy,
            TrySendError::Disconnected(_) => {
                HashingError::Failed("the hashing threads have stopped".to_owned())
            }
        })?;
        answer.await.map_err(|_| HashingError::Busy)
    }
}

#[async_trait]
impl PasswordHasher for BlockingArgon2Hasher {
    async fn hash_password(&self, password: &Password) -> Result<PasswordHashString, HashingError> {
        let secret = SecretString::from(password.expose().to_owned());
        self.run(move |hasher, workspace| {
            hasher.hash_in(secret.expose_secret().as_bytes(), workspace)
        })
        .await?
        .map(PasswordHashString::new)
        .map_err(|e| HashingError::Failed(e.to_string()))
    }

    async fn verify_password(
        &self,
        password: &Password,
        hash: Option<&PasswordHashString>,
    ) -> Result<PasswordVerification, HashingError> {
        let secret = SecretString::from(password.expose().to_owned());
        let stored = hash.map(|h| h.as_str().to_owned());
        self.run(move |hasher, workspace| {
            let password = secret.expose_secret().as_bytes();
            match stored {
                None => {
                    hasher.verify_dummy_in(password, workspace);
                    Ok(PasswordVerification::Mismatch)
                }
                Some(stored) => match hasher.verify_in(password, &stored, workspace) {
                    Ok(PasswordCheck::Match { needs_rehash }) => {
                        Ok(PasswordVerification::Match { needs_rehash })
                    }
                    Ok(PasswordCheck::Mismatch) => Ok(PasswordVerification::Mismatch),
                    Err(error) => Err(HashingError::Failed(error.to_string())),
                },
            }
        })
        .await?
    }
}

/// RFC 9068 access tokens and opaque refresh tokens behind the domain's
/// [`TokenIssuer`] and [`TokenVerifier`] ports.
#[derive(Debug, Clone)]
pub struct JwtTokens {
    codec: Option<JwtCodec>,
}

impl JwtTokens {
    /// Wraps a configured codec.
    pub fn new(codec: JwtCodec) -> Self {
        Self { codec: Some(codec) }
    }

    /// Opaque tokens only: signing or verifying an access token fails. For
    /// processes that must never touch the signing key (the administration
    /// commands).
    pub fn without_access_tokens() -> Self {
        Self { codec: None }
    }
}

impl TokenIssuer for JwtTokens {
    fn issue_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        let Some(codec) = &self.codec else {
            return Err(TokenError::Signing(
                "this process has no signing key".to_owned(),
            ));
        };
        let issued_at = claims.issued_at.unix_timestamp();
        codec
            .encode(&portcullis_crypto::AccessTokenClaims {
                iss: codec.issuer().to_owned(),
                aud: codec.audience().to_owned(),
                sub: claims.user_id.to_string(),
                exp: claims.expires_at.unix_timestamp(),
                iat: issued_at,
                nbf: issued_at,
                jti: claims.token_id.to_string(),
                sid: claims.session_id.to_string(),
                scope: claims.scopes.to_string(),
            })
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    fn new_refresh_token(&self) -> (String, RefreshTokenHash) {
        let token = portcullis_crypto::generate_opaque_token("");
        let hash = self.hash_refresh_token(&token);
        (token, hash)
    }

    fn hash_refresh_token(&self, token: &str) -> RefreshTokenHash {
        RefreshTokenHash::from_digest(portcullis_crypto::token_digest(token).to_vec())
    }

    fn new_api_key(&self) -> (String, ApiKeyHash) {
        let key = portcullis_crypto::generate_opaque_token(API_KEY_PREFIX);
        let hash = self.hash_api_key(&key);
        (key, hash)
    }

    fn hash_api_key(&self, key: &str) -> ApiKeyHash {
        ApiKeyHash::from_digest(portcullis_crypto::token_digest(key).to_vec())
    }
}

impl TokenVerifier for JwtTokens {
    fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, TokenError> {
        let Some(codec) = &self.codec else {
            return Err(TokenError::Malformed);
        };
        let claims = codec
            .decode(token, now.unix_timestamp())
            .map_err(|error| match error {
                JwtError::Malformed => TokenError::Malformed,
                JwtError::WrongIssuerOrAudience => TokenError::WrongAudience,
                JwtError::Expired => TokenError::Expired,
            })?;
        let uuid = |value: &str| Uuid::parse_str(value).map_err(|_| TokenError::Malformed);
        let time = |value: i64| {
            OffsetDateTime::from_unix_timestamp(value).map_err(|_| TokenError::Malformed)
        };
        Ok(AccessTokenClaims {
            user_id: UserId::from_uuid(uuid(&claims.sub)?),
            session_id: SessionId::from_uuid(uuid(&claims.sid)?),
            scopes: ScopeSet::parse(&claims.scope).map_err(|_| TokenError::Malformed)?,
            token_id: uuid(&claims.jti)?,
            issued_at: time(claims.iat)?,
            expires_at: time(claims.exp)?,
        })
    }
}

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
    match crate::client_ip::canonical(address) {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

impl AttemptLimiter for GovernorAttemptLimiter {
    fn check_attempt(&self, client_ip: Option<IpAddr>, username: &str) -> Result<(), RateLimited> {
        let refuse = |not_until: governor::NotUntil<_>| RateLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        };
        // Without a socket address (in-process tests) all such callers share
        // one budget rather than escaping the limit.
        let address = client_ip.map_or(IpAddr::from([0, 0, 0, 0]), address_key);
        self.per_ip.check_key(&address).map_err(refuse)?;
        self.per_user
            .check_key(&username.to_owned())
            .map_err(refuse)?;
        Ok(())
    }

    fn check_api_key_creation(&self, user_id: UserId) -> Result<(), RateLimited> {
        self.api_key_creations
            .check_key(&user_id)
            .map_err(|not_until| RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })
    }
}

#[cfg(test)]
mod tests {
    use portcullis_crypto::Argon2Policy;

    use super::*;

    fn hasher(policy: Argon2Policy, limits: HashingLimits) -> BlockingArgon2Hasher {
        BlockingArgon2Hasher::new(Argon2Hasher::new(policy).expect("policy"), limits)
    }

    #[tokio::test]
    async fn a_full_hashing_queue_answers_busy_instead_of_waiting() {
        let limits = HashingLimits {
            max_concurrent: 1,
            max_queued: 1,
            max_wait: Duration::from_secs(5),
        };
        // One thread and one queue slot hold at most two jobs; the OWASP
        // cost keeps the first running while the other two are submitted.
        let hasher = hasher(Argon2Policy::OWASP, limits);
        let password = Password::new("correct horse battery staple".to_owned());
        let (first, second, third) = tokio::join!(
            hasher.hash_password(&password),
            hasher.hash_password(&password),
            hasher.hash_password(&password)
        );
        let outcomes = [first, second, third];
        let busy = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(HashingError::Busy)))
            .count();
        let hashed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert!(busy >= 1, "a third job cannot fit: {outcomes:?}");
        assert!(hashed >= 1, "the first job is computed: {outcomes:?}");
        assert_eq!(busy + hashed, 3, "{outcomes:?}");
        // Once the queue drains, hashing works again.
        assert!(hasher.hash_password(&password).await.is_ok());
    }

    #[tokio::test]
    async fn a_job_that_waited_past_its_deadline_is_not_computed() {
        let limits = HashingLimits {
            max_concurrent: 1,
            max_queued: 4,
            max_wait: Duration::ZERO,
        };
        let hasher = hasher(Argon2Policy::OWASP, limits);
        let password = Password::new("correct horse battery staple".to_owned());
        // With no allowed wait, every job has expired by the time a thread
        // picks it up.
        let outcome = hasher.hash_password(&password).await;
        assert!(matches!(outcome, Err(HashingError::Busy)), "{outcome:?}");
    }

    #[tokio::test]
    async fn verification_distinguishes_right_wrong_and_unknown() {
        let hasher = hasher(
            Argon2Policy::insecure_test_policy(),
            HashingLimits::for_available_cores(),
        );
        let password = Password::new("correct horse battery staple".to_owned());
        let hash = hasher.hash_password(&password).await.expect("hash");
        let wrong = Password::new("incorrect horse battery staple".to_owned());
        assert_eq!(
            hasher
                .verify_password(&password, Some(&hash))
                .await
                .expect("verify"),
            PasswordVerification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher
                .verify_password(&wrong, Some(&hash))
                .await
                .expect("verify"),
            PasswordVerification::Mismatch
        );
        assert_eq!(
            hasher
                .verify_password(&password, None)
                .await
                .expect("verify"),
            PasswordVerification::Mismatch
        );
    }

    #[test]
    fn issued_access_tokens_verify_back_to_the_same_claims() {
        let codec = JwtCodec::new(&[7; 32], "portcullis", "portcullis").expect("codec");
        let tokens = JwtTokens::new(codec);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let claims = AccessTokenClaims {
            user_id: UserId::random(),
            session_id: SessionId::random(),
            scopes: ScopeSet::parse("profile admin").expect("scopes"),
            token_id: Uuid::new_v4(),
            issued_at: now,
            expires_at: now + Duration::from_secs(900),
        };
        let token = tokens.issue_access_token(&claims).expect("issue");
        assert_eq!(tokens.verify_access_token(&token, now), Ok(claims));
        let much_later = now + Duration::from_secs(3600);
        assert_eq!(
            tokens.verify_access_token(&token, much_later),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn api_keys_are_prefixed_well_formed_and_hashed() {
        let tokens = JwtTokens::new(JwtCodec::new(&[7; 32], "i", "a").expect("codec"));
        let (key, hash) = tokens.new_api_key();
        assert!(portcullis_domain::is_well_formed_api_key(&key), "{key}");
        assert_eq!(tokens.hash_api_key(&key), hash);
        assert_ne!(tokens.new_api_key().0, key);
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_as_their_digest() {
        let tokens = JwtTokens::new(JwtCodec::new(&[7; 32], "i", "a").expect("codec"));
        let (first, first_hash) = tokens.new_refresh_token();
        let (second, _) = tokens.new_refresh_token();
        assert_ne!(first, second);
        assert!(first.len() >= 43);
        assert_eq!(tokens.hash_refresh_token(&first), first_hash);
        // A SHA-256 digest, not the token itself.
        assert_eq!(first_hash.as_bytes().len(), 32);
        assert_ne!(first_hash.as_bytes(), first.as_bytes());
    }
}
