//! `SessionStore`: ending sessions, listing the live ones, purging the dead.

use std::time::Duration;

use portcullis_domain::ports::SessionStore;
use portcullis_domain::{NewSession, PageRequest, SessionId, SessionInfo, UserId};

use crate::support::{DAY, HOUR, TestDatabase, alice, at, t0, unix_at, user};
use portcullis_store_conformance::fixtures::{audit_context, audit_record};

/// Whether `session` of `user_id` is active at `now` with a day's idle timeout.
async fn is_active(
    db: &TestDatabase,
    session: &NewSession,
    user_id: UserId,
    now: time::OffsetDateTime,
) -> bool {
    db.store
        .find_active_session(session.id, user_id, now, DAY)
        .await
        .expect("lookup")
        .is_some()
}

#[tokio::test]
async fn revoking_a_session_ends_it_once_and_a_second_revocation_reports_false() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    let first = db
        .store
        .revoke_session(session.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke");
    let second = db
        .store
        .revoke_session(
            session.id,
            alice.id,
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("revoke again");

    assert!(first);
    assert!(!second);
    assert_eq!(db.session_use(session.id).revoked_at, Some(unix_at(HOUR)));
    assert!(!is_active(&db, &session, alice.id, at(HOUR)).await);
}

#[tokio::test]
async fn revoking_another_users_session_or_an_unknown_one_reports_false_and_changes_nothing() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let session = db.start_session(&alice, t0()).await;

    let as_bob = db
        .store
        .revoke_session(session.id, bob.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke");
    let unknown = db
        .store
        .revoke_session(
            SessionId::random(),
            alice.id,
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("revoke");

    assert!(!as_bob);
    assert!(!unknown);
    assert_eq!(db.session_use(session.id).revoked_at, None);
    assert!(is_active(&db, &session, alice.id, at(HOUR)).await);
}

#[tokio::test]
async fn revoking_an_expired_session_reports_false_and_leaves_it_unmarked() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    let revoked = db
        .store
        .revoke_session(
            session.id,
            alice.id,
            session.expires_at,
            &audit_record(session.expires_at),
        )
        .await
        .expect("revoke");

    assert!(!revoked);
    assert_eq!(db.session_use(session.id).revoked_at, None);
}

#[tokio::test]
async fn revoking_all_sessions_of_a_user_ends_only_its_live_ones_and_counts_them() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let first = db.start_session(&alice, t0()).await;
    let second = db.start_session(&alice, t0()).await;
    let already_revoked = db.start_session(&alice, t0()).await;
    db.set_session_column(already_revoked.id, "revoked_at", unix_at(HOUR));
    let expired = db.start_session(&alice, t0()).await;
    db.set_session_column(expired.id, "expires_at", unix_at(HOUR));
    let bobs = db.start_session(&bob, t0()).await;

    let count = db
        .store
        .revoke_user_sessions(alice.id, None, at(HOUR * 2), &audit_context(at(HOUR * 2)))
        .await
        .expect("revoke all");

    assert_eq!(count, 2);
    for session in [&first, &second] {
        assert_eq!(
            db.session_use(session.id).revoked_at,
            Some(unix_at(HOUR * 2))
        );
    }
    assert_eq!(
        db.session_use(already_revoked.id).revoked_at,
        Some(unix_at(HOUR))
    );
    assert!(is_active(&db, &bobs, bob.id, at(HOUR * 2)).await);
}

#[tokio::test]
async fn revoking_all_sessions_of_a_user_but_one_keeps_that_one_active() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let first = db.start_session(&alice, t0()).await;
    let kept = db.start_session(&alice, t0()).await;
    let third = db.start_session(&alice, t0()).await;

    let count = db
        .store
        .revoke_user_sessions(alice.id, Some(kept.id), at(HOUR), &audit_context(at(HOUR)))
        .await
        .expect("revoke others");

    assert_eq!(count, 2);
    assert!(is_active(&db, &kept, alice.id, at(HOUR)).await);
    assert!(!is_active(&db, &first, alice.id, at(HOUR)).await);
    assert!(!is_active(&db, &third, alice.id, at(HOUR)).await);
}

#[tokio::test]
async fn listing_shows_only_live_sessions_most_recently_used_first_ending_at_the_earlier_limit() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let now = at(HOUR * 10);
    let idle = HOUR * 4;
    // Live: ends at its last use plus the idle timeout (13 h), before its expiry.
    let recent = db.start_session(&alice, t0()).await;
    db.set_session_column(recent.id, "last_used_at", unix_at(HOUR * 9));
    // Live: ends at its absolute expiry (11 h), before last use plus idle (12 h).
    let ending_soon = db.start_session(&alice, at(HOUR)).await;
    db.set_session_column(ending_soon.id, "last_used_at", unix_at(HOUR * 8));
    db.set_session_column(ending_soon.id, "expires_at", unix_at(HOUR * 11));
    // Live: used when `ending_soon` was, but started later, so listed first.
    let started_later = db.start_session(&alice, at(HOUR * 2)).await;
    db.set_session_column(started_later.id, "last_used_at", unix_at(HOUR * 8));
    // Dead: revoked, expired right now, idle right now.
    let revoked = db.start_session(&alice, t0()).await;
    db.set_session_column(revoked.id, "last_used_at", unix_at(HOUR * 9));
    db.set_session_column(revoked.id, "revoked_at", unix_at(HOUR * 9));
    let expired = db.start_session(&alice, t0()).await;
    db.set_session_column(expired.id, "last_used_at", unix_at(HOUR * 9));
    db.set_session_column(expired.id, "expires_at", unix_at(HOUR * 10));
    let idle_session = db.start_session(&alice, t0()).await;
    db.set_session_column(idle_session.id, "last_used_at", unix_at(HOUR * 6));
    // Someone else's.
    let bobs = db.start_session(&bob, t0()).await;
    db.set_session_column(bobs.id, "last_used_at", unix_at(HOUR * 9));

    let listed = db
        .store
        .list_active_sessions(alice.id, now, idle, &PageRequest::default())
        .await
        .expect("list")
        .items;

    let info = |session: &NewSession, last_used: Duration, ends: Duration| SessionInfo {
        id: session.id,
        created_at: session.created_at,
        last_used_at: at(last_used),
        expires_at: at(ends),
        ip: session.ip.clone(),
        user_agent: session.user_agent.clone(),
    };
    assert_eq!(
        listed,
        vec![
            info(&recent, HOUR * 9, HOUR * 13),
            info(&started_later, HOUR * 8, HOUR * 12),
            info(&ending_soon, HOUR * 8, HOUR * 11),
        ]
    );
}

#[tokio::test]
async fn listing_with_an_enormous_idle_timeout_ends_sessions_at_their_absolute_expiry() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    let listed = db
        .store
        .list_active_sessions(alice.id, at(HOUR), Duration::MAX, &PageRequest::default())
        .await
        .expect("list")
        .items;

    let ends: Vec<_> = listed.iter().map(|info| info.expires_at).collect();
    assert_eq!(ends, vec![session.expires_at]);
}

#[tokio::test]
async fn listing_the_sessions_of_a_user_without_any_is_empty() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;

    let listed = db
        .store
        .list_active_sessions(alice.id, at(HOUR), DAY, &PageRequest::default())
        .await
        .expect("list")
        .items;

    assert!(listed.is_empty());
}

#[tokio::test]
async fn purging_deletes_dead_sessions_with_their_tokens_and_keeps_live_ones_with_used_tokens() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let now = at(HOUR * 10);
    let idle = HOUR * 4;
    // Live, with a used token and a current one.
    let live = db.start_session(&alice, t0()).await;
    db.rotate(&live.refresh_token_hash, at(HOUR * 9)).await;
    // Revoked, also with two tokens.
    let revoked = db.start_session(&alice, t0()).await;
    db.rotate(&revoked.refresh_token_hash, at(HOUR * 9)).await;
    db.set_session_column(revoked.id, "revoked_at", unix_at(HOUR * 9));
    // Expired right now, and idle right now.
    let expired = db.start_session(&alice, t0()).await;
    db.set_session_column(expired.id, "last_used_at", unix_at(HOUR * 9));
    db.set_session_column(expired.id, "expires_at", unix_at(HOUR * 10));
    let idle_session = db.start_session(&alice, t0()).await;
    db.set_session_column(idle_session.id, "last_used_at", unix_at(HOUR * 6));
    assert_eq!((db.count("sessions"), db.count("refresh_tokens")), (4, 6));

    let purged = db
        .store
        .purge_dead_sessions(now, idle)
        .await
        .expect("purge");

    assert_eq!(purged, 3);
    assert_eq!((db.count("sessions"), db.count("refresh_tokens")), (1, 2));
    assert_eq!(
        db.token_used_at(&live.refresh_token_hash),
        Some(Some(unix_at(HOUR * 9)))
    );
    assert!(is_active(&db, &live, alice.id, now).await);
    let again = db
        .store
        .purge_dead_sessions(now, idle)
        .await
        .expect("purge again");
    assert_eq!(again, 0);
}
