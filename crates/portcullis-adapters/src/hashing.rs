//! argon2id behind the domain's `PasswordHasher` port, on dedicated threads.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use portcullis_crypto::{Argon2Hasher, Argon2Workspace, PasswordCheck};
use portcullis_domain::ports::{PasswordHasher, PasswordVerification};
use portcullis_domain::{HashingError, Password, PasswordHashString};
use secrecy::{ExposeSecret, SecretString};

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
        metrics::gauge!(crate::metrics::HASHING_QUEUE_CAPACITY).set(limits.max_queued as f64);
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

    /// Runs `work` (an `operation`, `hash` or `verify`, as the duration
    /// metric names it) on a hashing thread.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Argon2Hasher, &mut Argon2Workspace) -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let deadline = Instant::now() + self.max_wait;
        let queue_depth = metrics::gauge!(crate::metrics::HASHING_QUEUE_DEPTH);
        let dequeued = queue_depth.clone();
        let job: HashingJob = Box::new(move |hasher, workspace| {
            dequeued.decrement(1.0);
            // Too late, or nobody is waiting any more: do not spend the CPU.
            // Dropping `reply` tells a waiting caller it is busy.
            if Instant::now() > deadline || reply.is_closed() {
                return;
            }
            let started = Instant::now();
            let result = work(hasher, workspace);
            metrics::histogram!(
                crate::metrics::PASSWORD_HASH_DURATION_SECONDS,
                "operation" => operation
            )
            .record(started.elapsed().as_secs_f64());
            let _ = reply.send(result);
        });
        // Counted before sending, so that a thread taking the job at once
        // never takes the depth below zero.
        queue_depth.increment(1.0);
        self.jobs.try_send(job).map_err(|error| {
            queue_depth.decrement(1.0);
            match error {
                TrySendError::Full(_) => {
                    metrics::counter!(crate::metrics::HASHING_BUSY_TOTAL).increment(1);
                    HashingError::Busy
                }
                TrySendError::Disconnected(_) => {
                    HashingError::Failed("the hashing threads have stopped".to_owned())
                }
            }
        })?;
        answer.await.map_err(|_| {
            metrics::counter!(crate::metrics::HASHING_BUSY_TOTAL).increment(1);
            HashingError::Busy
        })
    }
}

#[async_trait]
impl PasswordHasher for BlockingArgon2Hasher {
    async fn hash_password(&self, password: &Password) -> Result<PasswordHashString, HashingError> {
        let secret = SecretString::from(password.expose().to_owned());
        self.run("hash", move |hasher, workspace| {
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
        self.run("verify", move |hasher, workspace| {
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
}
