//! API keys: authentication, recorded use, revocation and the cap.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::ports::Store;
use portcullis_domain::{ApiKeyHash, ApiKeyId, NewApiKey, PageRequest, StoreError};

use super::{authenticates, create_key, insert};
use crate::fixtures::{HOUR, NO_CAP, at, audit_record, digest, named, new_api_key, profile, t0};

/// A key authenticates as its owner with its scopes; its use is recorded at
/// the first use and then at most once a minute, as the listing shows.
pub async fn a_key_authenticates_and_its_use_is_recorded_at_most_once_a_minute<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let key = create_key(&*store, &alice, t0()).await;
    let last_used = |store: Arc<S>| async move {
        let page = store
            .list_api_keys(alice.id, &PageRequest::default())
            .await
            .expect("list");
        page.items.first().expect("the key is listed").last_used_at
    };
    assert_eq!(last_used(store.clone()).await, None, "never used yet");
    let found = store
        .authenticate_api_key(&key.key_hash, at(HOUR))
        .await
        .expect("authenticate")
        .expect("a fresh key authenticates");
    assert_eq!(found.user, alice);
    assert_eq!(found.scopes, profile());
    assert_eq!(found.key_id, key.id);
    assert_eq!(last_used(store.clone()).await, Some(at(HOUR)));
    assert!(authenticates(&*store, &key, at(HOUR + Duration::from_secs(59))).await);
    assert_eq!(
        last_used(store.clone()).await,
        Some(at(HOUR)),
        "within the minute nothing is written"
    );
    assert!(authenticates(&*store, &key, at(HOUR + Duration::from_secs(60))).await);
    assert_eq!(
        last_used(store.clone()).await,
        Some(at(HOUR + Duration::from_secs(60)))
    );
}

/// Revoked, expired and unknown keys, and keys of disabled owners, do not
/// authenticate.
pub async fn unusable_keys_do_not_authenticate<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let revoked = create_key(&*store, &alice, t0()).await;
    assert!(
        store
            .revoke_api_key(revoked.id, alice.id, t0(), &audit_record(t0()))
            .await
            .expect("revoke")
    );
    let expiring = NewApiKey {
        expires_at: Some(at(HOUR)),
        ..new_api_key(&alice, t0())
    };
    store
        .create_api_key(&expiring, NO_CAP, &audit_record(t0()))
        .await
        .expect("create");
    let bobs = create_key(&*store, &bob, t0()).await;
    store
        .set_disabled(&bob.username, true, t0(), &audit_record(t0()))
        .await
        .expect("disable");

    assert!(!authenticates(&*store, &revoked, t0()).await, "revoked");
    assert!(
        authenticates(&*store, &expiring, at(HOUR - Duration::from_secs(1))).await,
        "before its expiry"
    );
    assert!(
        !authenticates(&*store, &expiring, at(HOUR)).await,
        "at its expiry"
    );
    assert!(!authenticates(&*store, &bobs, t0()).await, "disabled owner");
    assert!(
        store
            .authenticate_api_key(&ApiKeyHash::from_digest(digest()), t0())
            .await
            .expect("authenticate")
            .is_none(),
        "unknown"
    );
}

/// The owner's listing is its unrevoked keys, expired ones included, newest
/// first, exactly as stored; pages cover each key once, also when keys
/// share a second; no one else's key appears.
pub async fn the_key_listing_is_unrevoked_keys_newest_first_in_exact_pages<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let mut keys = Vec::new();
    for minute in 0..4 {
        keys.push(create_key(&*store, &alice, at(Duration::from_secs(60 * minute))).await);
    }
    for _ in 0..3 {
        keys.push(create_key(&*store, &alice, at(HOUR)).await);
    }
    let expired = NewApiKey {
        expires_at: Some(at(HOUR * 2)),
        ..new_api_key(&alice, at(HOUR))
    };
    store
        .create_api_key(&expired, NO_CAP, &audit_record(t0()))
        .await
        .expect("create");
    keys.push(expired.clone());
    let revoked = create_key(&*store, &alice, at(HOUR)).await;
    store
        .revoke_api_key(revoked.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke");
    create_key(&*store, &bob, at(HOUR)).await;

    let mut seen = Vec::new();
    let mut page = PageRequest {
        limit: 3,
        after: None,
    };
    loop {
        let listed = store.list_api_keys(alice.id, &page).await.expect("list");
        assert!(listed.items.len() <= 3);
        seen.extend(listed.items);
        match listed.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let ids: Vec<ApiKeyId> = seen.iter().map(|key| key.id).collect();
    let unique: BTreeSet<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(unique.len(), ids.len(), "no key twice");
    let expected: BTreeSet<String> = keys.iter().map(|key| key.id.to_string()).collect();
    assert_eq!(
        unique, expected,
        "every unrevoked key of alice, expired included"
    );
    assert!(
        seen.windows(2)
            .all(|pair| pair[0].created_at >= pair[1].created_at),
        "newest first"
    );
    let listed_expired = seen
        .iter()
        .find(|key| key.id == expired.id)
        .expect("the expired key is listed");
    assert_eq!(listed_expired.name, expired.name.as_str());
    assert_eq!(listed_expired.prefix, expired.prefix);
    assert_eq!(listed_expired.scopes, expired.scopes);
    assert_eq!(listed_expired.created_at, expired.created_at);
    assert_eq!(listed_expired.expires_at, expired.expires_at);
}

/// A key is revoked once, by its owner only.
pub async fn a_key_is_revoked_once_and_only_by_its_owner<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let key = create_key(&*store, &alice, t0()).await;
    assert!(
        !store
            .revoke_api_key(key.id, bob.id, t0(), &audit_record(t0()))
            .await
            .expect("revoke")
    );
    assert!(
        authenticates(&*store, &key, t0()).await,
        "someone else cannot revoke it"
    );
    assert!(
        !store
            .revoke_api_key(ApiKeyId::random(), alice.id, t0(), &audit_record(t0()))
            .await
            .expect("revoke")
    );
    assert!(
        store
            .revoke_api_key(key.id, alice.id, t0(), &audit_record(t0()))
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_api_key(key.id, alice.id, t0(), &audit_record(t0()))
            .await
            .expect("revoke")
    );
    assert!(!authenticates(&*store, &key, t0()).await);
}

/// The cap counts live keys only (revoked and expired ones do not count);
/// at the cap a creation is refused and stores nothing; a key of an unknown
/// user is not found.
pub async fn the_key_cap_counts_live_keys_only<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let revoked = create_key(&*store, &alice, t0()).await;
    store
        .revoke_api_key(revoked.id, alice.id, t0(), &audit_record(t0()))
        .await
        .expect("revoke");
    let expired = NewApiKey {
        expires_at: Some(at(HOUR)),
        ..new_api_key(&alice, t0())
    };
    store
        .create_api_key(&expired, NO_CAP, &audit_record(t0()))
        .await
        .expect("create");
    let now = at(HOUR * 2);
    for _ in 0..2 {
        store
            .create_api_key(&new_api_key(&alice, now), 2, &audit_record(t0()))
            .await
            .expect("below the cap");
    }
    let refused = new_api_key(&alice, now);
    let result = store.create_api_key(&refused, 2, &audit_record(t0())).await;
    assert!(
        matches!(result, Err(StoreError::ApiKeyLimitReached)),
        "{result:?}"
    );
    assert!(
        !authenticates(&*store, &refused, now).await,
        "nothing was stored"
    );

    let ghost = new_api_key(&named("ghost"), now);
    let result = store
        .create_api_key(&ghost, NO_CAP, &audit_record(t0()))
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

/// Of concurrent creations at the cap, none takes the user past it.
pub async fn concurrent_key_creations_never_pass_the_cap<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            let key = new_api_key(&alice, t0());
            tokio::spawn(async move { store.create_api_key(&key, 5, &audit_record(t0())).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("creation task") {
            Ok(()) => created += 1,
            Err(StoreError::ApiKeyLimitReached) => {}
            Err(other) => panic!("a refused creation is ApiKeyLimitReached: {other:?}"),
        }
    }
    assert_eq!(created, 5, "exactly the cap was created");
    let listed = store
        .list_api_keys(alice.id, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 5);
}
