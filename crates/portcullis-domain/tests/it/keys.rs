//! The signing keys' life: install, scheduled and forced rotation, deletion.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_domain::ports::SigningKeyStore;
use portcullis_domain::{
    GeneratedKey, KeyError, KeyGenerator, KeyId, KeyLifecycle, KeyPolicy, KeyState, Maintenance,
    SealedPrivateKey, SigningAlgorithm,
};
use time::OffsetDateTime;

use crate::fakes::{ManualClock, MemoryStore};

/// Numbered keys: `k1`, `k2`, ...
#[derive(Default)]
struct NumberedKeys(AtomicUsize);

impl KeyGenerator for NumberedKeys {
    fn generate(&self, algorithm: SigningAlgorithm) -> Result<GeneratedKey, KeyError> {
        let number = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(GeneratedKey {
            kid: KeyId::parse(&format!("k{number}")).expect("kid"),
            algorithm,
            public_key: vec![1; 32],
            sealed_private_key: SealedPrivateKey::from_sealed(vec![2; 48]),
        })
    }
}

const MINUTE: Duration = Duration::from_secs(60);

struct Keys {
    lifecycle: KeyLifecycle,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

impl Keys {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock(Mutex::new(
            OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
        )));
        let lifecycle = KeyLifecycle::new(
            store.clone(),
            Arc::new(NumberedKeys::default()),
            clock.clone(),
            KeyPolicy {
                algorithm: SigningAlgorithm::EdDsa,
                publish_ahead: MINUTE * 10,
                rotation_period: MINUTE * 60,
                verification_window: MINUTE * 15,
            },
        );
        Self {
            lifecycle,
            store,
            clock,
        }
    }

    /// `(kid, state)` of every key, oldest first.
    async fn states(&self) -> Vec<(String, KeyState)> {
        self.store
            .signing_keys()
            .await
            .expect("keys")
            .into_iter()
            .map(|key| (key.kid.to_string(), key.state))
            .collect()
    }
}

fn states(expected: &[(&str, KeyState)]) -> Vec<(String, KeyState)> {
    expected
        .iter()
        .map(|(kid, state)| ((*kid).to_owned(), *state))
        .collect()
}

#[tokio::test]
async fn the_first_start_installs_a_current_and_a_next_key_once() {
    let keys = Keys::new();
    assert!(
        keys.lifecycle
            .install_if_empty(None)
            .await
            .expect("install")
    );
    assert!(!keys.lifecycle.install_if_empty(None).await.expect("again"));
    assert_eq!(
        keys.states().await,
        states(&[("k1", KeyState::Current), ("k2", KeyState::Next)])
    );
    let listed = keys.lifecycle.keys().await.expect("list");
    let start = keys.clock.0.lock().expect("clock").to_owned();
    assert_eq!(listed[0].signs_from, start);
    assert_eq!(
        listed[0].retires_at,
        Some(start + MINUTE * 60),
        "the schedule"
    );
    assert_eq!(
        listed[1].signs_from,
        start + MINUTE * 10,
        "after publish-ahead"
    );
    assert_eq!(listed[1].retires_at, None);
}

#[tokio::test]
async fn an_upgraded_v1_key_is_installed_retired_for_one_token_lifetime() {
    let keys = Keys::new();
    let v1 = GeneratedKey {
        kid: KeyId::parse("v1").expect("kid"),
        algorithm: SigningAlgorithm::Hs256,
        public_key: Vec::new(),
        sealed_private_key: SealedPrivateKey::from_sealed(vec![3; 48]),
    };
    keys.lifecycle
        .install_if_empty(Some(v1))
        .await
        .expect("install");
    let listed = keys.lifecycle.keys().await.expect("list");
    let start = keys.clock.0.lock().expect("clock").to_owned();
    let v1 = listed
        .iter()
        .find(|key| key.kid.as_str() == "v1")
        .expect("v1");
    assert_eq!(v1.state, KeyState::Retired);
    assert_eq!(v1.algorithm, SigningAlgorithm::Hs256);
    assert_eq!(v1.retires_at, Some(start + MINUTE * 15));

    keys.clock.advance(MINUTE * 15);
    let maintenance = keys.lifecycle.maintain().await.expect("maintain");
    assert_eq!(
        maintenance,
        Maintenance {
            rotated: false,
            deleted: 1
        }
    );
    assert_eq!(
        keys.states().await,
        states(&[("k1", KeyState::Current), ("k2", KeyState::Next)])
    );
}

#[tokio::test]
async fn the_schedule_rotates_once_the_period_is_over_and_old_keys_go_after_the_window() {
    let keys = Keys::new();
    keys.lifecycle
        .install_if_empty(None)
        .await
        .expect("install");

    keys.clock.advance(MINUTE * 59);
    assert_eq!(
        keys.lifecycle.maintain().await.expect("maintain"),
        Maintenance::default()
    );

    keys.clock.advance(MINUTE);
    let maintenance = keys.lifecycle.maintain().await.expect("maintain");
    assert!(maintenance.rotated, "the period is over");
    assert_eq!(
        keys.states().await,
        states(&[
            ("k1", KeyState::Retired),
            ("k2", KeyState::Current),
            ("k3", KeyState::Next),
        ])
    );
    assert!(
        !keys.lifecycle.maintain().await.expect("again").rotated,
        "once"
    );

    keys.clock.advance(MINUTE * 14);
    assert_eq!(
        keys.lifecycle.maintain().await.expect("maintain").deleted,
        0
    );
    keys.clock.advance(MINUTE);
    assert_eq!(
        keys.lifecycle.maintain().await.expect("maintain").deleted,
        1,
        "deleted when every token it signed has expired"
    );
    assert_eq!(
        keys.states().await,
        states(&[("k2", KeyState::Current), ("k3", KeyState::Next)])
    );
}

#[tokio::test]
async fn a_forced_rotation_signs_with_the_next_key_at_once() {
    let keys = Keys::new();
    keys.lifecycle
        .install_if_empty(None)
        .await
        .expect("install");
    keys.lifecycle.rotate_now().await.expect("rotate");
    assert_eq!(
        keys.states().await,
        states(&[
            ("k1", KeyState::Retired),
            ("k2", KeyState::Current),
            ("k3", KeyState::Next),
        ])
    );
    let start = keys.clock.0.lock().expect("clock").to_owned();
    let listed = keys.lifecycle.keys().await.expect("list");
    assert_eq!(listed[1].signs_from, start, "k2 signs from the rotation");
    assert_eq!(listed[0].retires_at, Some(start + MINUTE * 15));
}

#[tokio::test]
async fn the_schedule_never_signs_with_a_key_published_for_less_than_publish_ahead() {
    let keys = Keys::new();
    let lifecycle = KeyLifecycle::new(
        keys.store.clone(),
        Arc::new(NumberedKeys::default()),
        keys.clock.clone(),
        KeyPolicy {
            rotation_period: MINUTE * 5,
            ..keys.lifecycle.policy().clone()
        },
    );
    lifecycle.install_if_empty(None).await.expect("install");
    keys.clock.advance(MINUTE * 5);
    assert!(
        !lifecycle.maintain().await.expect("maintain").rotated,
        "the period is over, but k2 has been published for 5 of 10 minutes"
    );
    keys.clock.advance(MINUTE * 5);
    assert!(lifecycle.maintain().await.expect("maintain").rotated);
    assert_eq!(
        keys.states().await,
        states(&[
            ("k1", KeyState::Retired),
            ("k2", KeyState::Current),
            ("k3", KeyState::Next),
        ])
    );
}

#[tokio::test]
async fn new_keys_use_the_policy_algorithm() {
    let keys = Keys::new();
    let lifecycle = KeyLifecycle::new(
        keys.store.clone(),
        Arc::new(NumberedKeys::default()),
        keys.clock.clone(),
        KeyPolicy {
            algorithm: SigningAlgorithm::Es256,
            ..keys.lifecycle.policy().clone()
        },
    );
    lifecycle.install_if_empty(None).await.expect("install");
    let algorithms: Vec<SigningAlgorithm> = lifecycle
        .keys()
        .await
        .expect("list")
        .into_iter()
        .map(|key| key.algorithm)
        .collect();
    assert_eq!(
        algorithms,
        [SigningAlgorithm::Es256, SigningAlgorithm::Es256]
    );
}

#[tokio::test]
async fn maintenance_without_keys_says_so() {
    let keys = Keys::new();
    assert!(matches!(
        keys.lifecycle.maintain().await,
        Err(KeyError::NoCurrentKey)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_several_nodes_maintaining_at_once_one_rotates() {
    let keys = Keys::new();
    keys.lifecycle
        .install_if_empty(None)
        .await
        .expect("install");
    keys.clock.advance(MINUTE * 60);
    let nodes: Vec<_> = (0..8)
        .map(|_| {
            let lifecycle = keys.lifecycle.clone();
            tokio::spawn(async move { lifecycle.maintain().await })
        })
        .collect();
    let mut rotated = 0;
    for node in nodes {
        if node.await.expect("node").expect("maintain").rotated {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);
    let current = keys
        .states()
        .await
        .into_iter()
        .filter(|(_, state)| *state == KeyState::Current)
        .count();
    assert_eq!(current, 1);
}
