//! The signing keys every node shares: installation, rotation, deletion.

use std::collections::HashSet;
use std::sync::Arc;

use portcullis_domain::ports::Store;
use portcullis_domain::{
    KeyId, KeyRotation, KeyState, RotationOutcome, SealedPrivateKey, SigningAlgorithm,
    StoredSigningKey,
};
use time::OffsetDateTime;

use crate::fixtures::{DAY, HOUR, at, audit_record, digest, t0};

/// A key in `state`, made at `created_at`, with random key material so
/// that every key is distinct.
pub(super) fn signing_key(state: KeyState, created_at: OffsetDateTime) -> StoredSigningKey {
    let public_key = digest();
    let kid = KeyId::parse(&hex(&public_key[..12])).expect("kid");
    StoredSigningKey {
        kid,
        algorithm: SigningAlgorithm::EdDsa,
        state,
        created_at,
        signs_from: created_at,
        retires_at: None,
        public_key,
        sealed_private_key: SealedPrivateKey::from_sealed(digest()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A current and a next key, installed.
async fn install<S: Store + ?Sized>(store: &S) -> (StoredSigningKey, StoredSigningKey) {
    let current = signing_key(KeyState::Current, t0());
    let next = StoredSigningKey {
        signs_from: at(HOUR),
        ..signing_key(KeyState::Next, t0())
    };
    assert!(
        store
            .install_signing_keys(&[current.clone(), next.clone()], &audit_record(t0()))
            .await
            .expect("install"),
        "an empty store installs"
    );
    (current, next)
}

pub(super) fn rotation(current: &KeyId, now: OffsetDateTime) -> KeyRotation {
    KeyRotation {
        current: current.clone(),
        new_next: signing_key(KeyState::Next, now),
        now,
        retires_at: now + HOUR,
    }
}

async fn keys_by_state<S: Store + ?Sized>(store: &S, state: KeyState) -> Vec<StoredSigningKey> {
    store
        .signing_keys()
        .await
        .expect("listing keys")
        .into_iter()
        .filter(|key| key.state == state)
        .collect()
}

/// Installed keys come back byte for byte, oldest first; once a current
/// key exists, another install stores nothing.
pub async fn installed_keys_are_kept_exactly_and_installed_once<S: Store + 'static>(store: Arc<S>) {
    assert!(store.signing_keys().await.expect("listing").is_empty());
    let retired = StoredSigningKey {
        algorithm: SigningAlgorithm::Hs256,
        public_key: Vec::new(),
        retires_at: Some(at(HOUR)),
        ..signing_key(KeyState::Retired, t0() - DAY)
    };
    let current = signing_key(KeyState::Current, t0());
    let next = StoredSigningKey {
        algorithm: SigningAlgorithm::Es256,
        signs_from: at(HOUR),
        ..signing_key(KeyState::Next, at(HOUR / 2))
    };
    assert!(
        store
            .install_signing_keys(
                &[next.clone(), current.clone(), retired.clone()],
                &audit_record(t0())
            )
            .await
            .expect("install")
    );
    assert_eq!(
        store.signing_keys().await.expect("listing"),
        vec![retired.clone(), current.clone(), next.clone()],
        "every field kept, oldest first"
    );

    let again = store
        .install_signing_keys(
            &[signing_key(KeyState::Current, at(HOUR))],
            &audit_record(t0()),
        )
        .await
        .expect("second install");
    assert!(!again, "a second install is refused");
    assert_eq!(
        store.signing_keys().await.expect("listing"),
        vec![retired, current, next],
        "and changes nothing"
    );
}

/// Of concurrent installs on an empty store exactly one stores its keys.
pub async fn of_concurrent_installs_exactly_one_installs<S: Store + 'static>(store: Arc<S>) {
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let keys = [
                    signing_key(KeyState::Current, t0()),
                    signing_key(KeyState::Next, t0()),
                ];
                store.install_signing_keys(&keys, &audit_record(t0())).await
            })
        })
        .collect();
    let mut installed = 0;
    for task in tasks {
        if task.await.expect("install task").expect("install") {
            installed += 1;
        }
    }
    assert_eq!(installed, 1, "exactly one install wins");
    assert_eq!(keys_by_state(&*store, KeyState::Current).await.len(), 1);
    assert_eq!(keys_by_state(&*store, KeyState::Next).await.len(), 1);
}

/// A rotation retires the current key until `retires_at`, makes the next
/// key current from `now`, and publishes the new next key; a rotation from
/// a key that is no longer current changes nothing.
pub async fn a_rotation_moves_every_key_one_step_once<S: Store + 'static>(store: Arc<S>) {
    let (current, next) = install(&*store).await;
    let first = rotation(&current.kid, at(HOUR * 2));
    assert_eq!(
        store
            .rotate_signing_keys(&first, &audit_record(t0()))
            .await
            .expect("rotate"),
        RotationOutcome::Rotated
    );
    let keys = store.signing_keys().await.expect("listing");
    let find = |kid: &KeyId| {
        keys.iter()
            .find(|key| &key.kid == kid)
            .cloned()
            .unwrap_or_else(|| panic!("key {kid} is kept"))
    };
    assert_eq!(
        find(&current.kid),
        StoredSigningKey {
            state: KeyState::Retired,
            retires_at: Some(at(HOUR * 3)),
            ..current.clone()
        }
    );
    assert_eq!(
        find(&next.kid),
        StoredSigningKey {
            state: KeyState::Current,
            signs_from: at(HOUR * 2),
            ..next.clone()
        }
    );
    assert_eq!(find(&first.new_next.kid), first.new_next);
    assert_eq!(keys.len(), 3);

    let stale = rotation(&current.kid, at(HOUR * 3));
    assert_eq!(
        store
            .rotate_signing_keys(&stale, &audit_record(t0()))
            .await
            .expect("rotate"),
        RotationOutcome::Superseded,
        "the expected key is retired now"
    );
    assert_eq!(
        store.signing_keys().await.expect("listing"),
        keys,
        "nothing changed"
    );
}

/// Without a next key, the rotation's new key signs at once: one key always
/// signs.
pub async fn a_rotation_without_a_next_key_makes_the_new_key_current<S: Store + 'static>(
    store: Arc<S>,
) {
    let current = signing_key(KeyState::Current, t0());
    assert!(
        store
            .install_signing_keys(std::slice::from_ref(&current), &audit_record(t0()))
            .await
            .expect("install")
    );
    let rotation = rotation(&current.kid, at(HOUR));
    assert_eq!(
        store
            .rotate_signing_keys(&rotation, &audit_record(t0()))
            .await
            .expect("rotate"),
        RotationOutcome::Rotated
    );
    let now_current = keys_by_state(&*store, KeyState::Current).await;
    assert_eq!(
        now_current,
        vec![StoredSigningKey {
            state: KeyState::Current,
            signs_from: at(HOUR),
            ..rotation.new_next.clone()
        }]
    );
    assert!(keys_by_state(&*store, KeyState::Next).await.is_empty());
}

/// Of N concurrent rotations from one current key exactly one rotates, and
/// exactly one key is current afterwards.
pub async fn of_concurrent_rotations_exactly_one_rotates<S: Store + 'static>(store: Arc<S>) {
    let (current, next) = install(&*store).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let rotation = rotation(&current.kid, at(HOUR * 2));
            tokio::spawn(async move {
                store
                    .rotate_signing_keys(&rotation, &audit_record(t0()))
                    .await
            })
        })
        .collect();
    let mut rotated = 0;
    for task in tasks {
        if task.await.expect("rotation task").expect("rotate") == RotationOutcome::Rotated {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1, "exactly one of the concurrent rotations wins");
    let current_now = keys_by_state(&*store, KeyState::Current).await;
    assert_eq!(current_now.len(), 1);
    assert_eq!(current_now[0].kid, next.kid);
    assert_eq!(keys_by_state(&*store, KeyState::Next).await.len(), 1);
    assert_eq!(store.signing_keys().await.expect("listing").len(), 3);
}

/// Deleting removes exactly the retired keys whose time is up; a next or
/// current key is never deleted, however old.
pub async fn only_retired_keys_past_their_time_are_deleted<S: Store + 'static>(store: Arc<S>) {
    let (first, _) = install(&*store).await;
    store
        .rotate_signing_keys(&rotation(&first.kid, at(HOUR)), &audit_record(t0()))
        .await
        .expect("rotate");
    let second = keys_by_state(&*store, KeyState::Current).await.remove(0);
    store
        .rotate_signing_keys(
            &KeyRotation {
                retires_at: at(HOUR * 10),
                ..rotation(&second.kid, at(HOUR * 3))
            },
            &audit_record(t0()),
        )
        .await
        .expect("rotate");
    // `first` retires at HOUR * 2, `second` at HOUR * 10.

    assert_eq!(
        store
            .delete_retired_signing_keys(at(HOUR * 2) - std::time::Duration::from_secs(1))
            .await
            .expect("delete"),
        0,
        "nothing is due yet"
    );
    assert_eq!(
        store
            .delete_retired_signing_keys(at(HOUR * 2))
            .await
            .expect("delete"),
        1,
        "due at its retires_at"
    );
    let kids: HashSet<KeyId> = store
        .signing_keys()
        .await
        .expect("listing")
        .into_iter()
        .map(|key| key.kid)
        .collect();
    assert!(!kids.contains(&first.kid));
    assert!(kids.contains(&second.kid));

    assert_eq!(
        store
            .delete_retired_signing_keys(at(DAY * 365))
            .await
            .expect("delete"),
        1
    );
    assert_eq!(keys_by_state(&*store, KeyState::Current).await.len(), 1);
    assert_eq!(keys_by_state(&*store, KeyState::Next).await.len(), 1);
    assert_eq!(keys_by_state(&*store, KeyState::Retired).await.len(), 0);
}
