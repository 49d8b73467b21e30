//! The issuer's key set, fetched from one address, cached for its
//! `max-age`, and fetched again on an unknown `kid`: never more often than
//! the minimum refetch interval, however many requests ask.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CACHE_CONTROL};

use crate::config::AcceptedAlgorithm;
use crate::error::{InvalidToken, VerifyError};
use crate::jwks::{KeySet, RemoteKey, max_age, parse_key_set};

/// How long a key set without `Cache-Control: max-age` is used before it is
/// fetched again.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// The longest a key set is used without fetching it again, whatever its
/// `max-age` says: a key the issuer withdrew stops verifying within it.
const MAX_CACHE_AGE: Duration = Duration::from_secs(3600);

/// The largest key set body read. Portcullis's is well under 2 KiB; the
/// bound keeps a misbehaving server from filling memory.
const MAX_KEY_SET_BYTES: usize = 64 * 1024;

pub(crate) struct KeyCache {
    http: reqwest::Client,
    jwks_uri: String,
    accepted: Vec<AcceptedAlgorithm>,
    max_keys: usize,
    min_refetch_interval: Duration,
    /// What verifications read: swapped whole after every fetch, so a
    /// verification clones one `Arc` and never waits for a fetch.
    snapshot: RwLock<Arc<Snapshot>>,
    /// Held while fetching, so concurrent callers share one fetch; holds the
    /// time of the last attempt, which the rate limit counts from.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Snapshot {
    keys: KeySet,
    /// When the keys should be fetched again; `None` before the first
    /// successful fetch.
    fresh_until: Option<Instant>,
    /// Why the last fetch failed, while it is the latest attempt.
    last_failure: Option<String>,
}

impl KeyCache {
    pub(crate) fn new(
        http: reqwest::Client,
        jwks_uri: String,
        accepted: Vec<AcceptedAlgorithm>,
        max_keys: usize,
        min_refetch_interval: Duration,
    ) -> Self {
        Self {
            http,
            jwks_uri,
            accepted,
            max_keys,
            min_refetch_interval,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            last_attempt: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The key `kid` names.
    ///
    /// A fresh cached key is returned at once. A stale one is returned too
    /// while another caller refreshes the set; otherwise this caller
    /// refreshes it first. An unknown `kid` fetches the set again, unless it
    /// was fetched (or tried) less than the minimum interval ago.
    pub(crate) async fn key(&self, kid: &str) -> Result<RemoteKey, VerifyError> {
        let snapshot = self.snapshot();
        if let Some(key) = snapshot.keys.get(kid) {
            if snapshot.is_fresh(Instant::now()) {
                return Ok(key.clone());
            }
            match self.last_attempt.try_lock() {
                Ok(mut last_attempt) => self.refresh_unless_too_soon(&mut last_attempt).await,
                // Someone is fetching already; the key was good a moment ago.
                Err(_) => return Ok(key.clone()),
            }
        } else {
            let mut last_attempt = self.last_attempt.lock().await;
            self.refresh_unless_too_soon(&mut last_attempt).await;
        }

        let snapshot = self.snapshot();
        match (snapshot.keys.get(kid), &snapshot.last_failure) {
            (Some(key), _) => Ok(key.clone()),
            (None, Some(failure)) => Err(VerifyError::KeysUnavailable(failure.clone())),
            (None, None) => Err(InvalidToken::UnknownKeyId.into()),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        // A panic while swapping an `Arc` cannot leave it half-written.
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace_snapshot(&self, snapshot: Snapshot) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
    }

    async fn refresh_unless_too_soon(&self, last_attempt: &mut Option<Instant>) {
        let now = Instant::now();
        if last_attempt.is_some_and(|last| now.duration_since(last) < self.min_refetch_interval) {
            return;
        }
        *last_attempt = Some(now);
        match self.fetch().await {
            Ok((keys, max_age)) => {
                tracing::debug!(jwks_uri = %self.jwks_uri, keys = keys.len(), "fetched the key set");
                let fresh_for = max_age.unwrap_or(DEFAULT_MAX_AGE).min(MAX_CACHE_AGE);
                self.replace_snapshot(Snapshot {
                    keys,
                    fresh_until: Some(now + fresh_for),
                    last_failure: None,
                });
            }
            Err(failure) => {
                // The keys fetched before stay usable: the issuer keeps a
                // key published while its tokens live, so a cached key is
                // still right while the issuer cannot be reached.
                tracing::warn!(jwks_uri = %self.jwks_uri, %failure, "cannot fetch the key set");
                let previous = self.snapshot();
                self.replace_snapshot(Snapshot {
                    keys: previous.keys.clone(),
                    fresh_until: previous.fresh_until,
                    last_failure: Some(failure),
                });
            }
        }
    }

    /// One GET of the key set: its usable keys and how long it may be kept.
    async fn fetch(&self) -> Result<(KeySet, Option<Duration>), String> {
        let mut response = self
            .http
            .get(&self.jwks_uri)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| format!("GET {}: {error}", self.jwks_uri))?;
        if !response.status().is_success() {
            return Err(format!(
                "GET {}: status {}",
                self.jwks_uri,
                response.status()
            ));
        }
        let max_age = max_age(
            response
                .headers()
                .get(CACHE_CONTROL)
                .and_then(|value| value.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| format!("reading {}: {error}", self.jwks_uri))?
        {
            if body.len() + chunk.len() > MAX_KEY_SET_BYTES {
                return Err(format!(
                    "the key set at {} is larger than {MAX_KEY_SET_BYTES} bytes",
                    self.jwks_uri
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_key_set(&body, &self.accepted, self.max_keys)
            .map_err(|error| format!("{}: {error}", self.jwks_uri))?;
        Ok((keys, max_age))
    }
}

impl Snapshot {
    fn is_fresh(&self, now: Instant) -> bool {
        self.fresh_until.is_some_and(|until| now < until)
    }
}
