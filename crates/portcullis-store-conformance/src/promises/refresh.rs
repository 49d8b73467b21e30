//! Refresh-token rotation and reuse detection.

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::ports::Store;
use portcullis_domain::{NewSession, RefreshOutcome};

use super::{insert, is_active, rotate, start};
use crate::fixtures::{DAY, HOUR, at, audit_context, audit_record, named, profile, t0, token_hash};

/// Rotating the current token returns the session, its user and scopes;
/// the replacement becomes current (and rotates in turn), and the use moves
/// the idle window.
pub async fn rotating_the_current_token_makes_the_replacement_current<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let session = start(&*store, &alice, t0()).await;
    let (outcome, replacement) = rotate(&*store, &session.refresh_token_hash, at(HOUR * 20)).await;
    assert_eq!(
        outcome,
        RefreshOutcome::Rotated {
            user: alice.clone(),
            session_id: session.id,
            scopes: profile(),
        }
    );
    let owner = store
        .find_refresh_token_owner(&replacement)
        .await
        .expect("find owner")
        .expect("the replacement is stored");
    assert_eq!(owner.session_id, session.id);
    assert!(!owner.already_used);
    // Used at 20 h: with a one-day idle timeout the session would have gone
    // idle at 24 h without that use; the absolute expiry is still 24 h, so
    // check the idle window with a shorter timeout.
    let idle = HOUR * 10;
    assert!(
        store
            .find_active_session(session.id, alice.id, at(HOUR * 23), idle)
            .await
            .expect("find")
            .is_some(),
        "the rotation at 20 h moved the idle window past 23 h"
    );
    let (again, _) = rotate(&*store, &replacement, at(HOUR * 21)).await;
    assert!(matches!(again, RefreshOutcome::Rotated { .. }), "{again:?}");
}

/// Replaying a used token ends the whole session, and then even its current
/// token is rejected; a replay of an already ended session is still reuse.
pub async fn replaying_a_used_token_ends_the_session<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let session = start(&*store, &alice, t0()).await;
    let (_, current) = rotate(&*store, &session.refresh_token_hash, at(HOUR)).await;
    let (replay, _) = rotate(&*store, &session.refresh_token_hash, at(HOUR * 2)).await;
    assert_eq!(
        replay,
        RefreshOutcome::Reused {
            session_id: session.id
        }
    );
    assert!(!is_active(&*store, &session, at(HOUR * 2)).await);
    let (after, _) = rotate(&*store, &current, at(HOUR * 2)).await;
    assert_eq!(after, RefreshOutcome::Rejected);
    let (replay_again, _) = rotate(&*store, &session.refresh_token_hash, at(HOUR * 3)).await;
    assert_eq!(
        replay_again,
        RefreshOutcome::Reused {
            session_id: session.id
        }
    );
}

/// The current token of a revoked, expired or idle session, or of a
/// disabled user, is rejected, and the token stays unused.
pub async fn a_token_of_an_ended_session_is_rejected_without_change<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let revoked = start(&*store, &alice, t0()).await;
    store
        .revoke_session(revoked.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke");
    let expired = start(&*store, &alice, t0()).await;
    let idle = start(&*store, &alice, t0()).await;
    let disabled = start(&*store, &bob, t0()).await;
    store
        .set_disabled(&bob.username, true, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("disable");

    let cases: [(&str, &NewSession, _, Duration); 4] = [
        ("revoked", &revoked, at(HOUR * 2), DAY),
        ("expired", &expired, at(DAY), DAY * 2),
        ("idle", &idle, at(HOUR * 2), HOUR),
        ("disabled", &disabled, at(HOUR * 2), DAY),
    ];
    for (what, session, now, idle_timeout) in cases {
        let outcome = store
            .rotate_refresh_token(
                &session.refresh_token_hash,
                &token_hash(),
                now,
                idle_timeout,
                &audit_context(now),
            )
            .await
            .expect("present");
        assert_eq!(outcome, RefreshOutcome::Rejected, "{what}");
        let owner = store
            .find_refresh_token_owner(&session.refresh_token_hash)
            .await
            .expect("find owner")
            .expect("the token is still stored");
        assert!(
            !owner.already_used,
            "{what}: a rejection marks nothing used"
        );
    }
    let (unknown, replacement) = rotate(&*store, &token_hash(), t0()).await;
    assert_eq!(unknown, RefreshOutcome::Rejected);
    assert!(
        store
            .find_refresh_token_owner(&replacement)
            .await
            .expect("find owner")
            .is_none(),
        "an unknown token stores no replacement"
    );
}

/// Of N concurrent rotations of one token exactly one rotates; the others
/// are reuse, which ends the session.
pub async fn of_concurrent_rotations_of_one_token_exactly_one_rotates<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let session = start(&*store, &alice, t0()).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let presented = session.refresh_token_hash.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh_token(
                        &presented,
                        &token_hash(),
                        at(HOUR),
                        DAY,
                        &audit_context(at(HOUR)),
                    )
                    .await
            })
        })
        .collect();
    let mut rotated = 0;
    for task in tasks {
        match task.await.expect("rotation task").expect("present") {
            RefreshOutcome::Rotated { .. } => rotated += 1,
            RefreshOutcome::Reused { session_id } => assert_eq!(session_id, session.id),
            RefreshOutcome::Rejected => panic!("a concurrent rotation is never merely rejected"),
        }
    }
    assert_eq!(rotated, 1, "exactly one of the concurrent rotations wins");
    assert!(
        !is_active(&*store, &session, at(HOUR)).await,
        "the replays ended it"
    );
}

/// The owner of a token is found, current or used, whatever the state of
/// its session; an unknown token has none.
pub async fn the_owner_of_a_token_is_found_in_any_state<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let session = start(&*store, &alice, t0()).await;
    let (_, current) = rotate(&*store, &session.refresh_token_hash, at(HOUR)).await;
    store
        .revoke_session(session.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke");
    for (token, used) in [(&session.refresh_token_hash, true), (&current, false)] {
        let owner = store
            .find_refresh_token_owner(token)
            .await
            .expect("find owner")
            .expect("the owner is found after revocation");
        assert_eq!(owner.session_id, session.id);
        assert_eq!(owner.user_id, alice.id);
        assert_eq!(owner.scopes, profile());
        assert_eq!(owner.already_used, used);
    }
    assert!(
        store
            .find_refresh_token_owner(&token_hash())
            .await
            .expect("find owner")
            .is_none()
    );
}
