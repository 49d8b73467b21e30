//! Sessions: activity, expiry, revocation, the cap and the purge.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::ports::Store;
use portcullis_domain::{PageRequest, RefreshOutcome, SessionId, StoreError, UserId};

use super::{insert, is_active, rotate, start};
use crate::fixtures::{
    DAY, HOUR, NO_CAP, at, audit_context, audit_record, named, new_session, profile, t0,
};

/// A new session is active for its user with its scopes, and not for
/// another user or under another id.
pub async fn a_new_session_is_active_for_its_user_only<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let session = start(&*store, &alice, t0()).await;
    let found = store
        .find_active_session(session.id, alice.id, t0(), DAY)
        .await
        .expect("find")
        .expect("a new session is active");
    assert_eq!(found.user, alice);
    assert_eq!(found.scopes, profile());
    for (id, user) in [(session.id, bob.id), (SessionId::random(), alice.id)] {
        assert!(
            store
                .find_active_session(id, user, t0(), DAY)
                .await
                .expect("find")
                .is_none()
        );
    }
}

/// A session ends at its absolute expiry and when unused for the idle
/// timeout, whichever comes first; an enormous idle timeout overflows
/// nothing.
pub async fn a_session_ends_at_its_expiry_or_when_idle<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let session = start(&*store, &alice, t0()).await;
    let active = |now, idle| {
        let store = store.clone();
        let id = session.id;
        async move {
            store
                .find_active_session(id, alice.id, now, idle)
                .await
                .expect("find")
                .is_some()
        }
    };
    let idle = HOUR * 2;
    assert!(active(at(idle - Duration::from_secs(1)), idle).await);
    assert!(
        !active(at(idle), idle).await,
        "idle for exactly the timeout"
    );
    assert!(active(at(DAY - Duration::from_secs(1)), DAY * 7).await);
    assert!(!active(at(DAY), DAY * 7).await, "at the absolute expiry");
    assert!(
        !active(at(DAY), Duration::MAX).await,
        "no overflow past expiry"
    );
    assert!(active(t0(), Duration::MAX).await, "no overflow before it");
}

/// A session of a disabled user is not active, even unrevoked.
pub async fn a_session_of_a_disabled_user_is_not_active<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let session = start(&*store, &alice, t0()).await;
    store
        .set_disabled(&alice.username, true, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("disable");
    assert!(!is_active(&*store, &session, at(HOUR)).await);
}

/// Revoking ends a session once (true, then false); someone else's or an
/// unknown session is not revoked; an expired one reports false.
pub async fn revoking_a_session_ends_it_once_and_only_the_owners<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let session = start(&*store, &alice, t0()).await;
    assert!(
        !store
            .revoke_session(session.id, bob.id, at(HOUR), &audit_record(at(HOUR)))
            .await
            .expect("revoke")
    );
    assert!(
        is_active(&*store, &session, at(HOUR)).await,
        "someone else's stays"
    );
    assert!(
        !store
            .revoke_session(
                SessionId::random(),
                alice.id,
                at(HOUR),
                &audit_record(at(HOUR))
            )
            .await
            .expect("revoke")
    );
    assert!(
        store
            .revoke_session(session.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
            .await
            .expect("revoke")
    );
    assert!(!is_active(&*store, &session, at(HOUR)).await);
    assert!(
        !store
            .revoke_session(session.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
            .await
            .expect("revoke")
    );
    let expired = start(&*store, &alice, t0()).await;
    assert!(
        !store
            .revoke_session(expired.id, alice.id, at(DAY), &audit_record(at(DAY)))
            .await
            .expect("revoke"),
        "an expired session has already ended"
    );
}

/// Revoking all sessions of a user but one ends exactly its unrevoked,
/// unexpired others, counts them, and touches no one else's.
pub async fn revoking_a_users_sessions_counts_and_spares_the_kept_one<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let kept = start(&*store, &alice, at(HOUR)).await;
    let first = start(&*store, &alice, at(HOUR)).await;
    let second = start(&*store, &alice, at(HOUR)).await;
    let already_ended = start(&*store, &alice, at(HOUR)).await;
    assert!(
        store
            .revoke_session(
                already_ended.id,
                alice.id,
                at(HOUR),
                &audit_record(at(HOUR))
            )
            .await
            .expect("revoke")
    );
    let expired = start(&*store, &alice, t0()).await;
    let bobs = start(&*store, &bob, at(HOUR)).await;
    let now = at(DAY);
    let ended = store
        .revoke_user_sessions(alice.id, Some(kept.id), now, &audit_context(now))
        .await
        .expect("revoke all");
    assert_eq!(
        ended, 2,
        "the two live others; not the ended or expired one"
    );
    assert!(is_active(&*store, &kept, now).await);
    for gone in [&first, &second, &expired] {
        assert!(!is_active(&*store, gone, now).await);
    }
    assert!(is_active(&*store, &bobs, now).await);
    assert_eq!(
        store
            .revoke_user_sessions(alice.id, None, now, &audit_context(now))
            .await
            .expect("revoke all"),
        1,
        "then the kept one"
    );
}

/// A session past the cap ends the least recently used ones, atomically
/// with its creation, so exactly `max_active` remain, the new one included.
pub async fn a_session_past_the_cap_ends_the_least_recently_used<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let oldest = start(&*store, &alice, t0()).await;
    let middle = start(&*store, &alice, at(Duration::from_secs(60))).await;
    let newest = start(&*store, &alice, at(Duration::from_secs(120))).await;
    // Using the oldest makes the middle one the least recently used.
    let (outcome, _) = rotate(
        &*store,
        &oldest.refresh_token_hash,
        at(Duration::from_secs(180)),
    )
    .await;
    assert!(
        matches!(outcome, RefreshOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    let added = new_session(&alice, at(Duration::from_secs(240)));
    store
        .create_session(&added, 3, DAY, &audit_record(t0()))
        .await
        .expect("create at the cap");
    let now = at(Duration::from_secs(240));
    assert!(
        !is_active(&*store, &middle, now).await,
        "the least recently used ended"
    );
    for live in [&oldest, &newest, &added] {
        assert!(is_active(&*store, live, now).await);
    }
    let listed = store
        .list_active_sessions(alice.id, now, DAY, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 3);
}

/// Concurrent creations never leave a user above the cap.
pub async fn concurrent_session_creations_never_pass_the_cap<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            let session = new_session(&alice, t0());
            tokio::spawn(async move {
                store
                    .create_session(&session, 4, DAY, &audit_record(t0()))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("creation task")
            .expect("creation succeeds");
    }
    let listed = store
        .list_active_sessions(alice.id, t0(), DAY, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 4, "exactly the cap remains");
}

/// A session for a user that does not exist is not found; nothing is stored.
pub async fn a_session_of_an_unknown_user_is_not_found<S: Store + 'static>(store: Arc<S>) {
    let ghost = named("ghost");
    let session = new_session(&ghost, t0());
    let result = store
        .create_session(&session, NO_CAP, DAY, &audit_record(t0()))
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert!(
        store
            .find_refresh_token_owner(&session.refresh_token_hash)
            .await
            .expect("find owner")
            .is_none()
    );
}

/// The listing shows live sessions only, most recently used first, each
/// ending at the earlier of its expiry and its idle end, with its client
/// details; pages cover every live session exactly once.
pub async fn the_session_listing_is_live_sessions_by_recency_in_exact_pages<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let mut sessions = Vec::new();
    for minute in 0..7 {
        sessions.push(start(&*store, &alice, at(Duration::from_secs(60 * minute))).await);
    }
    // Two more sharing one second, to need the tie-break.
    sessions.push(start(&*store, &alice, at(HOUR)).await);
    sessions.push(start(&*store, &alice, at(HOUR)).await);
    let revoked = start(&*store, &alice, at(HOUR)).await;
    store
        .revoke_session(revoked.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke");
    let now = at(HOUR * 2);
    let idle = HOUR * 3;

    let mut seen = Vec::new();
    let mut page = PageRequest {
        limit: 2,
        after: None,
    };
    loop {
        let listed = store
            .list_active_sessions(alice.id, now, idle, &page)
            .await
            .expect("list");
        assert!(listed.items.len() <= 2);
        seen.extend(listed.items);
        match listed.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let ids: Vec<SessionId> = seen.iter().map(|s| s.id).collect();
    let unique: BTreeSet<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(unique.len(), ids.len(), "no session twice");
    let expected: BTreeSet<String> = sessions.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(
        unique, expected,
        "every live session, and not the revoked one"
    );
    assert!(
        seen.windows(2)
            .all(|pair| pair[0].last_used_at >= pair[1].last_used_at),
        "most recently used first"
    );
    let first = sessions.first().expect("a session");
    let listed_first = seen
        .iter()
        .find(|s| s.id == first.id)
        .expect("the first session is listed");
    assert_eq!(listed_first.created_at, first.created_at);
    assert_eq!(listed_first.last_used_at, first.created_at);
    assert_eq!(
        listed_first.expires_at,
        first.created_at + idle,
        "idle end first"
    );
    assert_eq!(listed_first.ip, first.ip);
    assert_eq!(listed_first.user_agent, first.user_agent);
    let long_idle = store
        .list_active_sessions(alice.id, now, Duration::MAX, &PageRequest::default())
        .await
        .expect("list");
    assert!(
        long_idle
            .items
            .iter()
            .all(|s| s.expires_at <= s.created_at + DAY),
        "without an idle end, the absolute expiry"
    );
    let nobody = store
        .list_active_sessions(UserId::random(), now, idle, &PageRequest::default())
        .await
        .expect("list");
    assert!(nobody.items.is_empty() && nobody.next.is_none());
}

/// The purge deletes sessions that can never be used again, with their
/// refresh tokens, counts them, and keeps live ones with their used tokens
/// (so a replay is still recognised).
pub async fn the_purge_deletes_dead_sessions_and_keeps_reuse_detection<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let live = start(&*store, &alice, at(HOUR)).await;
    let (outcome, _) = rotate(&*store, &live.refresh_token_hash, at(HOUR * 2)).await;
    assert!(
        matches!(outcome, RefreshOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    let revoked = start(&*store, &alice, at(HOUR)).await;
    store
        .revoke_session(revoked.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke");
    let expired = start(&*store, &alice, t0()).await;
    let now = at(DAY + Duration::from_secs(1));
    let purged = store.purge_dead_sessions(now, DAY).await.expect("purge");
    assert_eq!(purged, 2, "the revoked and the expired session");
    for dead in [&revoked, &expired] {
        assert!(
            store
                .find_refresh_token_owner(&dead.refresh_token_hash)
                .await
                .expect("find owner")
                .is_none(),
            "a purged session's tokens are gone"
        );
    }
    let owner = store
        .find_refresh_token_owner(&live.refresh_token_hash)
        .await
        .expect("find owner")
        .expect("a live session keeps its used token");
    assert!(owner.already_used);
    let (outcome, _) = rotate(&*store, &live.refresh_token_hash, now).await;
    assert_eq!(
        outcome,
        RefreshOutcome::Reused {
            session_id: live.id
        }
    );
    assert_eq!(store.purge_dead_sessions(now, DAY).await.expect("purge"), 1);
}
