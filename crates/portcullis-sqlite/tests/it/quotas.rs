//! The bounds on a user's credentials: the live API-key cap (atomic under
//! concurrency), the active-session cap (least recently used ended in the
//! creating transaction), and keyset pages of both listings.

use std::collections::HashSet;
use std::sync::Arc;

use portcullis_domain::ports::{ApiKeyStore, SessionStore};
use portcullis_domain::{PageCursor, PageRequest, StoreError, User};
use tokio::sync::Barrier;

use crate::support::{DAY, HOUR, TestDatabase, alice, at, new_api_key, new_session, t0};
use portcullis_store_conformance::fixtures::audit_record;

/// Creates `count` keys of `user`, all at `t0()`.
async fn keys_at_t0(db: &TestDatabase, user: &User, count: usize) {
    for _ in 0..count {
        db.store
            .create_api_key(&new_api_key(user, t0()), 1_000, &audit_record(t0()))
            .await
            .expect("create");
    }
}

#[tokio::test]
async fn of_concurrent_key_creations_at_the_cap_none_takes_the_user_past_it() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    keys_at_t0(&db, &alice, 7).await;
    let attempts = 12;
    let barrier = Arc::new(Barrier::new(attempts));

    let tasks: Vec<_> = (0..attempts)
        .map(|_| {
            let store = db.store.clone();
            let barrier = Arc::clone(&barrier);
            let key = new_api_key(&alice, at(HOUR));
            tokio::spawn(async move {
                barrier.wait().await;
                store.create_api_key(&key, 10, &audit_record(t0())).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => created += 1,
            Err(StoreError::ApiKeyLimitReached) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    assert_eq!(created, 3, "exactly the room left");
    assert_eq!(db.count("api_keys"), 10);
}

#[tokio::test]
async fn revoked_and_expired_keys_do_not_count_towards_the_cap() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let revoked = new_api_key(&alice, t0());
    db.create_key(&revoked).await;
    db.store
        .revoke_api_key(revoked.id, alice.id, t0(), &audit_record(t0()))
        .await
        .expect("revoke");
    let mut expired = new_api_key(&alice, t0());
    expired.expires_at = Some(at(HOUR));
    db.create_key(&expired).await;

    let first = db
        .store
        .create_api_key(&new_api_key(&alice, at(DAY)), 1, &audit_record(t0()))
        .await;
    let second = db
        .store
        .create_api_key(&new_api_key(&alice, at(DAY)), 1, &audit_record(t0()))
        .await;

    assert!(first.is_ok(), "{first:?}");
    assert!(
        matches!(second, Err(StoreError::ApiKeyLimitReached)),
        "{second:?}"
    );
}

#[tokio::test]
async fn a_session_beyond_the_cap_ends_the_least_recently_used_one_in_the_same_creation() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let oldest = new_session(&alice, t0());
    let middle = new_session(&alice, at(HOUR));
    let newest = new_session(&alice, at(HOUR * 2));
    for session in [&oldest, &middle, &newest] {
        db.store
            .create_session(session, 3, DAY, &audit_record(t0()))
            .await
            .expect("create");
    }
    // Using the oldest makes the middle one the least recently used.
    db.rotate(&oldest.refresh_token_hash, at(HOUR * 3)).await;

    let another = new_session(&alice, at(HOUR * 4));
    db.store
        .create_session(&another, 3, DAY, &audit_record(t0()))
        .await
        .expect("create");

    let active: HashSet<_> = db
        .store
        .list_active_sessions(alice.id, at(HOUR * 4), DAY, &PageRequest::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|session| session.id)
        .collect();
    assert_eq!(
        active,
        HashSet::from([oldest.id, newest.id, another.id]),
        "the least recently used session ended"
    );
    assert_eq!(
        db.session_use(middle.id).revoked_at,
        Some(at(HOUR * 4).unix_timestamp())
    );
}

#[tokio::test]
async fn concurrent_sessions_never_leave_the_user_above_the_cap() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let attempts = 10;
    let barrier = Arc::new(Barrier::new(attempts));

    let tasks: Vec<_> = (0..attempts)
        .map(|_| {
            let store = db.store.clone();
            let barrier = Arc::clone(&barrier);
            let session = new_session(&alice, t0());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .create_session(&session, 4, DAY, &audit_record(t0()))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("create");
    }

    let listed = db
        .store
        .list_active_sessions(alice.id, t0(), DAY, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 4);
}

#[tokio::test]
async fn key_pages_return_every_key_exactly_once_even_when_keys_share_a_second() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    keys_at_t0(&db, &alice, 12).await;
    for hour in 1..=5 {
        db.create_key(&new_api_key(&alice, at(HOUR * hour))).await;
    }
    let whole = db
        .store
        .list_api_keys(alice.id, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(whole.items.len(), 17);
    assert_eq!(whole.next, None);

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = db
            .store
            .list_api_keys(alice.id, &PageRequest { limit: 4, after })
            .await
            .expect("page");
        pages += 1;
        assert!(page.items.len() <= 4);
        seen.extend(page.items.into_iter().map(|key| key.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }

    assert_eq!(pages, 5);
    let in_order: Vec<_> = whole.items.into_iter().map(|key| key.id).collect();
    assert_eq!(seen, in_order, "the same keys in the same order, each once");
}

#[tokio::test]
async fn session_pages_return_every_session_exactly_once_in_recency_order() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    for hour in [0, 0, 0, 1, 2] {
        db.store
            .create_session(
                &new_session(&alice, at(HOUR * hour)),
                100,
                DAY,
                &audit_record(t0()),
            )
            .await
            .expect("create");
    }
    let now = at(HOUR * 3);
    let whole = db
        .store
        .list_active_sessions(alice.id, now, DAY, &PageRequest::default())
        .await
        .expect("list");

    let first = db
        .store
        .list_active_sessions(
            alice.id,
            now,
            DAY,
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .expect("page");
    let second = db
        .store
        .list_active_sessions(
            alice.id,
            now,
            DAY,
            &PageRequest {
                limit: 2,
                after: first.next.clone(),
            },
        )
        .await
        .expect("page");
    let third = db
        .store
        .list_active_sessions(
            alice.id,
            now,
            DAY,
            &PageRequest {
                limit: 2,
                after: second.next.clone(),
            },
        )
        .await
        .expect("page");

    assert_eq!(third.next, None);
    let paged: Vec<_> = [first.items, second.items, third.items]
        .into_iter()
        .flatten()
        .map(|session| session.id)
        .collect();
    let whole: Vec<_> = whole.items.into_iter().map(|session| session.id).collect();
    assert_eq!(paged, whole);
    assert_eq!(paged.len(), 5);
}

#[tokio::test]
async fn a_cursor_the_store_did_not_make_is_invalid() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let garbled = PageRequest {
        limit: 10,
        after: Some(PageCursor::new("not-a-cursor")),
    };

    let keys = db.store.list_api_keys(alice.id, &garbled).await;
    let sessions = db
        .store
        .list_active_sessions(alice.id, t0(), DAY, &garbled)
        .await;

    assert!(matches!(keys, Err(StoreError::InvalidCursor)), "{keys:?}");
    assert!(
        matches!(sessions, Err(StoreError::InvalidCursor)),
        "{sessions:?}"
    );
}
