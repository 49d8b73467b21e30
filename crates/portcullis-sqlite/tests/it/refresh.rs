//! `SessionStore`: refresh-token rotation, reuse detection and owners.

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::ports::SessionStore;
use portcullis_domain::{RefreshOutcome, RefreshTokenOwner, StoreError};
use tokio::sync::Barrier;

use crate::support::{
    DAY, HOUR, SessionUse, TestDatabase, alice, at, fresh_token_hash, t0, unix_at,
};
use portcullis_store_conformance::fixtures::audit_context;

#[tokio::test]
async fn rotating_the_current_token_makes_the_replacement_current_and_marks_the_session_used() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    let replacement = fresh_token_hash();

    let outcome = db
        .store
        .rotate_refresh_token(
            &session.refresh_token_hash,
            &replacement,
            at(HOUR),
            HOUR * 2,
            &audit_context(at(HOUR)),
        )
        .await
        .expect("rotate");

    assert_eq!(
        outcome,
        RefreshOutcome::Rotated {
            user: alice.clone(),
            session_id: session.id,
            scopes: session.scopes,
        }
    );
    assert_eq!(
        db.token_used_at(&session.refresh_token_hash),
        Some(Some(unix_at(HOUR)))
    );
    assert_eq!(db.token_used_at(&replacement), Some(None));
    let created_at: i64 = db
        .raw_connection()
        .query_row(
            "SELECT created_at FROM refresh_tokens WHERE token_hash = ?1",
            [replacement.as_bytes()],
            |row| row.get(0),
        )
        .expect("replacement row");
    assert_eq!(created_at, unix_at(HOUR));
    assert_eq!(
        db.session_use(session.id),
        SessionUse {
            last_used_at: unix_at(HOUR),
            revoked_at: None
        }
    );
}

#[tokio::test]
async fn the_replacement_token_rotates_in_turn_and_moves_the_idle_window() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    let second = fresh_token_hash();
    let third = fresh_token_hash();
    let idle = HOUR * 2;

    db.store
        .rotate_refresh_token(
            &session.refresh_token_hash,
            &second,
            at(HOUR),
            idle,
            &audit_context(at(HOUR)),
        )
        .await
        .expect("first rotation");
    // Three hours after login but only two minus a second after the last use:
    // without the first rotation the session would be idle by now.
    let later = at(HOUR * 3 - Duration::from_secs(1));
    let outcome = db
        .store
        .rotate_refresh_token(&second, &third, later, idle, &audit_context(later))
        .await
        .expect("second rotation");

    assert!(
        matches!(outcome, RefreshOutcome::Rotated { session_id, .. } if session_id == session.id),
        "{outcome:?}"
    );
    assert_eq!(db.token_used_at(&third), Some(None));
}

#[tokio::test]
async fn replaying_a_used_token_ends_the_whole_session_and_its_replacement_is_rejected() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    let replacement = db.rotate(&session.refresh_token_hash, at(HOUR)).await;

    let replayed = db
        .store
        .rotate_refresh_token(
            &session.refresh_token_hash,
            &fresh_token_hash(),
            at(HOUR * 2),
            DAY,
            &audit_context(at(HOUR * 2)),
        )
        .await
        .expect("replay");

    assert_eq!(
        replayed,
        RefreshOutcome::Reused {
            session_id: session.id
        }
    );
    assert_eq!(
        db.session_use(session.id).revoked_at,
        Some(unix_at(HOUR * 2))
    );
    let active = db
        .store
        .find_active_session(session.id, alice.id, at(HOUR * 2), DAY)
        .await
        .expect("lookup");
    assert!(active.is_none());
    let with_replacement = db
        .store
        .rotate_refresh_token(
            &replacement,
            &fresh_token_hash(),
            at(HOUR * 3),
            DAY,
            &audit_context(at(HOUR * 3)),
        )
        .await
        .expect("rotate replacement");
    assert_eq!(with_replacement, RefreshOutcome::Rejected);
    assert_eq!(db.token_used_at(&replacement), Some(None));
    // Only the original token and the first replacement were ever stored.
    assert_eq!(db.count("refresh_tokens"), 2);
}

#[tokio::test]
async fn replaying_a_used_token_of_an_already_ended_session_is_still_reuse_and_keeps_the_first_end()
{
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    db.rotate(&session.refresh_token_hash, at(HOUR)).await;
    db.set_session_column(session.id, "revoked_at", unix_at(HOUR * 2));

    // Long after the session's absolute expiry, too.
    let replayed = db
        .store
        .rotate_refresh_token(
            &session.refresh_token_hash,
            &fresh_token_hash(),
            at(DAY * 3),
            HOUR,
            &audit_context(at(DAY * 3)),
        )
        .await
        .expect("replay");

    assert_eq!(
        replayed,
        RefreshOutcome::Reused {
            session_id: session.id
        }
    );
    assert_eq!(
        db.session_use(session.id).revoked_at,
        Some(unix_at(HOUR * 2))
    );
}

#[tokio::test]
async fn an_unknown_token_is_rejected_and_stores_nothing() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    db.start_session(&alice, t0()).await;

    let outcome = db
        .store
        .rotate_refresh_token(
            &fresh_token_hash(),
            &fresh_token_hash(),
            at(HOUR),
            DAY,
            &audit_context(at(HOUR)),
        )
        .await
        .expect("rotate");

    assert_eq!(outcome, RefreshOutcome::Rejected);
    assert_eq!(db.count("refresh_tokens"), 1);
}

/// Presents the current token of `session` at `now` and checks it is
/// rejected with nothing changed: the token still unused, no replacement
/// stored, the session's last use and revocation as they were.
async fn assert_rejected_without_change(
    db: &TestDatabase,
    session: &portcullis_domain::NewSession,
    now: time::OffsetDateTime,
    idle_timeout: Duration,
) {
    let before = db.session_use(session.id);
    let replacement = fresh_token_hash();

    let outcome = db
        .store
        .rotate_refresh_token(
            &session.refresh_token_hash,
            &replacement,
            now,
            idle_timeout,
            &audit_context(now),
        )
        .await
        .expect("rotate");

    assert_eq!(outcome, RefreshOutcome::Rejected);
    assert_eq!(db.token_used_at(&session.refresh_token_hash), Some(None));
    assert_eq!(db.token_used_at(&replacement), None);
    assert_eq!(db.session_use(session.id), before);
}

#[tokio::test]
async fn the_current_token_of_a_revoked_session_is_rejected_without_change() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    db.set_session_column(session.id, "revoked_at", unix_at(HOUR));

    assert_rejected_without_change(&db, &session, at(HOUR * 2), DAY).await;
}

#[tokio::test]
async fn the_current_token_of_an_expired_session_is_rejected_without_change() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    // Exactly at the absolute expiry, with an idle timeout that never bites.
    assert_rejected_without_change(&db, &session, session.expires_at, DAY * 2).await;
}

#[tokio::test]
async fn the_current_token_of_an_idle_session_is_rejected_without_change() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    // Exactly one idle timeout after the last use.
    assert_rejected_without_change(&db, &session, at(HOUR), HOUR).await;
}

#[tokio::test]
async fn the_current_token_of_a_disabled_user_is_rejected_without_change() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    // The flag alone, so that the session itself is still active.
    db.raw_connection()
        .execute(
            "UPDATE users SET disabled = 1 WHERE id = ?1",
            [alice.id.to_string()],
        )
        .expect("disable");

    assert_rejected_without_change(&db, &session, at(HOUR), DAY).await;
}

#[tokio::test]
async fn an_enormous_idle_timeout_does_not_overflow_a_rotation() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    let outcome = db
        .store
        .rotate_refresh_token(
            &session.refresh_token_hash,
            &fresh_token_hash(),
            at(HOUR),
            Duration::MAX,
            &audit_context(at(HOUR)),
        )
        .await
        .expect("rotate");

    assert!(
        matches!(outcome, RefreshOutcome::Rotated { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_replacement_that_collides_with_a_stored_token_fails_and_consumes_nothing() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    let other = db.start_session(&alice, t0()).await;

    let result = db
        .store
        .rotate_refresh_token(
            &session.refresh_token_hash,
            &other.refresh_token_hash,
            at(HOUR),
            DAY,
            &audit_context(at(HOUR)),
        )
        .await;

    assert!(matches!(result, Err(StoreError::Failed(_))), "{result:?}");
    assert_eq!(db.token_used_at(&session.refresh_token_hash), Some(None));
    assert_eq!(
        db.session_use(session.id).last_used_at,
        t0().unix_timestamp()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_concurrent_rotations_of_one_token_exactly_one_rotates_and_the_rest_are_reuse() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    let contenders = 20;
    let barrier = Arc::new(Barrier::new(contenders));

    let tasks: Vec<_> = (0..contenders)
        .map(|_| {
            let store = db.store.clone();
            let barrier = barrier.clone();
            let presented = session.refresh_token_hash.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .rotate_refresh_token(
                        &presented,
                        &fresh_token_hash(),
                        at(HOUR),
                        DAY,
                        &audit_context(at(HOUR)),
                    )
                    .await
            })
        })
        .collect();
    let mut rotated = 0;
    let mut reused = 0;
    for task in tasks {
        match task.await.expect("task").expect("rotate") {
            RefreshOutcome::Rotated { session_id, .. } => {
                assert_eq!(session_id, session.id);
                rotated += 1;
            }
            RefreshOutcome::Reused { session_id } => {
                assert_eq!(session_id, session.id);
                reused += 1;
            }
            RefreshOutcome::Rejected => panic!("a concurrent rotation was rejected"),
        }
    }

    assert_eq!((rotated, reused), (1, 19));
    assert_eq!(db.session_use(session.id).revoked_at, Some(unix_at(HOUR)));
    // The original and the one winning replacement.
    assert_eq!(db.count("refresh_tokens"), 2);
}

#[tokio::test]
async fn the_owner_of_a_current_or_used_token_is_found_and_an_unknown_token_has_none() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    let replacement = db.rotate(&session.refresh_token_hash, at(HOUR)).await;
    let expected = RefreshTokenOwner {
        session_id: session.id,
        user_id: alice.id,
        scopes: session.scopes,
        already_used: true,
    };

    let of_used = db
        .store
        .find_refresh_token_owner(&session.refresh_token_hash)
        .await
        .expect("lookup");
    let of_current = db
        .store
        .find_refresh_token_owner(&replacement)
        .await
        .expect("lookup");
    let of_unknown = db
        .store
        .find_refresh_token_owner(&fresh_token_hash())
        .await
        .expect("lookup");

    assert_eq!(of_used, Some(expected.clone()));
    assert_eq!(
        of_current,
        Some(RefreshTokenOwner {
            already_used: false,
            ..expected
        })
    );
    assert_eq!(of_unknown, None);
}

#[tokio::test]
async fn the_owner_of_a_token_is_found_whatever_the_state_of_its_session() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    db.set_session_column(session.id, "revoked_at", unix_at(HOUR));

    let owner = db
        .store
        .find_refresh_token_owner(&session.refresh_token_hash)
        .await
        .expect("lookup");

    assert_eq!(owner.map(|owner| owner.session_id), Some(session.id));
}
