//! `ApiKeyStore`: creating, listing, revoking and authenticating keys.

use std::time::Duration;

use portcullis_domain::ports::{ApiKeyStore, AuthenticatedKey, UserStore};
use portcullis_domain::{ApiKeyHash, ApiKeyId, PageRequest, Scope, ScopeSet, StoreError, UserId};

use crate::support::{
    DAY, HOUR, TestDatabase, alice, at, fresh_token_hash, listed, new_api_key, t0, unix_at, user,
};
use portcullis_store_conformance::fixtures::audit_record;

#[tokio::test]
async fn a_users_keys_are_listed_newest_first_expired_ones_included_and_no_one_elses() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let oldest = new_api_key(&alice, t0());
    let middle = new_api_key(&alice, at(HOUR));
    let newest = {
        let mut key = new_api_key(&alice, at(HOUR * 2));
        key.scopes = ScopeSet::EMPTY.with(Scope::Profile).with(Scope::Admin);
        // Already past its expiry when listed: still shown to its owner.
        key.expires_at = Some(at(HOUR * 3));
        key
    };
    for key in [&middle, &oldest, &newest] {
        db.create_key(key).await;
    }
    db.create_key(&new_api_key(&bob, at(HOUR * 5))).await;

    let keys = db
        .store
        .list_api_keys(alice.id, &PageRequest::default())
        .await
        .expect("list")
        .items;

    assert_eq!(
        keys,
        vec![listed(&newest), listed(&middle), listed(&oldest)]
    );
    let nobodys = db
        .store
        .list_api_keys(UserId::random(), &PageRequest::default())
        .await
        .expect("list")
        .items;
    assert!(nobodys.is_empty());
}

#[tokio::test]
async fn keys_created_in_the_same_second_are_listed_in_a_stable_order() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let mut keys: Vec<_> = (0..5).map(|_| new_api_key(&alice, t0())).collect();
    for key in &keys {
        db.create_key(key).await;
    }

    let listed_ids: Vec<ApiKeyId> = db
        .store
        .list_api_keys(alice.id, &PageRequest::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|key| key.id)
        .collect();

    keys.sort_by_key(|key| key.id.to_string());
    let expected: Vec<ApiKeyId> = keys.iter().map(|key| key.id).collect();
    assert_eq!(listed_ids, expected);
}

#[tokio::test]
async fn a_key_for_a_user_that_does_not_exist_is_not_found() {
    let db = TestDatabase::new();
    let ghost = alice();

    let result = db
        .store
        .create_api_key(&new_api_key(&ghost, t0()), 100, &audit_record(t0()))
        .await;

    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert_eq!(db.count("api_keys"), 0);
}

#[tokio::test]
async fn a_revoked_key_leaves_the_listing_and_cannot_be_revoked_twice() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let revoked = new_api_key(&alice, t0());
    let kept = new_api_key(&alice, t0());
    db.create_key(&revoked).await;
    db.create_key(&kept).await;
    let now = at(HOUR);

    let first = db
        .store
        .revoke_api_key(revoked.id, alice.id, now, &audit_record(now))
        .await
        .expect("revoke");
    let second = db
        .store
        .revoke_api_key(
            revoked.id,
            alice.id,
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("revoke again");

    assert!(first);
    assert!(!second);
    assert_eq!(
        db.store
            .list_api_keys(alice.id, &PageRequest::default())
            .await
            .expect("list")
            .items,
        vec![listed(&kept)]
    );
    // The second attempt did not move the time of the revocation.
    assert_eq!(db.key_use(revoked.id).revoked_at, Some(unix_at(HOUR)));
}

#[tokio::test]
async fn someone_elses_key_or_an_unknown_key_is_not_revoked() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let alices = new_api_key(&alice, t0());
    db.create_key(&alices).await;

    let by_bob = db
        .store
        .revoke_api_key(alices.id, bob.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke");
    let unknown = db
        .store
        .revoke_api_key(
            ApiKeyId::random(),
            alice.id,
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("revoke");

    assert!(!by_bob);
    assert!(!unknown);
    assert_eq!(
        db.store
            .list_api_keys(alice.id, &PageRequest::default())
            .await
            .expect("list")
            .items,
        vec![listed(&alices)]
    );
    assert_eq!(db.key_use(alices.id).revoked_at, None);
}

#[tokio::test]
async fn a_valid_key_authenticates_as_its_owner_with_its_scopes() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let mut key = new_api_key(&alice, t0());
    key.scopes = ScopeSet::EMPTY.with(Scope::Admin);
    key.expires_at = Some(t0() + DAY);
    db.create_key(&key).await;

    let found = db
        .store
        .authenticate_api_key(&key.key_hash, at(HOUR))
        .await
        .expect("authenticate");

    assert_eq!(
        found,
        Some(AuthenticatedKey {
            user: alice,
            scopes: key.scopes,
            key_id: key.id
        })
    );
}

#[tokio::test]
async fn revoked_expired_unknown_keys_and_keys_of_disabled_owners_do_not_authenticate() {
    let db = TestDatabase::new();
    let alice = alice();
    let carol = user("carol", "carol@example.com");
    db.insert(&alice).await;
    db.insert(&carol).await;
    let revoked = new_api_key(&alice, t0());
    let expiring = {
        let mut key = new_api_key(&alice, t0());
        key.expires_at = Some(at(HOUR));
        key
    };
    let carols = new_api_key(&carol, t0());
    for key in [&revoked, &expiring, &carols] {
        db.create_key(key).await;
    }
    assert!(
        db.store
            .revoke_api_key(revoked.id, alice.id, t0(), &audit_record(t0()))
            .await
            .expect("revoke")
    );
    db.raw_connection()
        .execute(
            "UPDATE users SET disabled = 1 WHERE id = ?1",
            [carol.id.to_string()],
        )
        .expect("disable carol behind the store's back");
    let authenticate = |hash: ApiKeyHash, seconds: u64| {
        let store = db.store.clone();
        async move {
            store
                .authenticate_api_key(&hash, at(Duration::from_secs(seconds)))
                .await
                .expect("authenticate")
        }
    };

    assert_eq!(authenticate(revoked.key_hash.clone(), 60).await, None);
    // Usable up to the second before its expiry, not at it.
    assert!(
        authenticate(expiring.key_hash.clone(), 3599)
            .await
            .is_some()
    );
    assert_eq!(authenticate(expiring.key_hash.clone(), 3600).await, None);
    assert_eq!(authenticate(carols.key_hash.clone(), 60).await, None);
    let unknown = ApiKeyHash::from_digest(fresh_token_hash().as_bytes().to_vec());
    assert_eq!(authenticate(unknown, 60).await, None);
    // A refused key records no use.
    assert_eq!(db.key_use(revoked.id).last_used_at, None);
    assert_eq!(db.key_use(carols.id).last_used_at, None);
}

#[tokio::test]
async fn the_last_use_is_recorded_at_first_use_and_then_at_most_once_a_minute() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let key = new_api_key(&alice, t0());
    db.create_key(&key).await;
    let use_at = |seconds: u64| {
        let store = db.store.clone();
        let hash = key.key_hash.clone();
        async move {
            store
                .authenticate_api_key(&hash, at(HOUR + Duration::from_secs(seconds)))
                .await
                .expect("authenticate")
                .is_some()
        }
    };
    let last_used = || db.key_use(key.id).last_used_at;
    let first_use = unix_at(HOUR);

    assert!(use_at(0).await);
    assert_eq!(last_used(), Some(first_use));
    assert!(use_at(30).await);
    assert!(use_at(59).await);
    assert_eq!(last_used(), Some(first_use), "not rewritten within 60 s");
    assert!(use_at(60).await);
    assert_eq!(last_used(), Some(first_use + 60));
    assert!(use_at(3600).await);
    assert_eq!(last_used(), Some(first_use + 3600));

    let listed_key = db
        .store
        .list_api_keys(alice.id, &PageRequest::default())
        .await
        .expect("list")
        .items
        .pop()
        .expect("the key is listed");
    assert_eq!(listed_key.last_used_at, Some(at(HOUR * 2)));
}

#[tokio::test]
async fn deleting_the_owner_deletes_its_keys_and_no_one_elses() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let alices = new_api_key(&alice, t0());
    db.create_key(&alices).await;
    db.create_key(&new_api_key(&alice, t0())).await;
    let bobs = new_api_key(&bob, t0());
    db.create_key(&bobs).await;

    db.store
        .delete_user(alice.id, &audit_record(t0()))
        .await
        .expect("delete");

    assert_eq!(db.count("api_keys"), 1);
    let found = db
        .store
        .authenticate_api_key(&alices.key_hash, at(HOUR))
        .await
        .expect("authenticate");
    assert_eq!(found, None);
    assert_eq!(
        db.store
            .list_api_keys(bob.id, &PageRequest::default())
            .await
            .expect("list")
            .items,
        vec![listed(&bobs)]
    );
}

#[tokio::test]
async fn the_stored_row_holds_exactly_what_was_given_and_only_the_hash_of_the_key() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let mut key = new_api_key(&alice, t0());
    key.expires_at = Some(t0() + DAY);
    db.create_key(&key).await;

    type StoredKey = (
        String,
        String,
        String,
        String,
        Vec<u8>,
        String,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let stored: Vec<StoredKey> = db
        .raw_connection()
        .prepare(
            "SELECT id, user_id, name, prefix, key_hash, scope, created_at, \
             last_used_at, expires_at, revoked_at FROM api_keys",
        )
        .expect("prepare")
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                row.get(8)?,
                row.get(9)?,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");

    let expected = vec![(
        key.id.to_string(),
        alice.id.to_string(),
        "ci deploy".to_owned(),
        key.prefix.clone(),
        key.key_hash.as_bytes().to_vec(),
        "profile".to_owned(),
        t0().unix_timestamp(),
        None,
        Some((t0() + DAY).unix_timestamp()),
        None,
    )];
    assert_eq!(stored, expected);
}
