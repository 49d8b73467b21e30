//! `SessionStore`: creating sessions and the per-request activity check.

use std::time::Duration;

use portcullis_domain::ports::{ActiveSession, SessionStore};
use portcullis_domain::{Scope, ScopeSet, SessionId, StoreError, UserId};

use crate::support::{DAY, HOUR, TestDatabase, alice, new_session, t0, user};
use portcullis_store_conformance::fixtures::audit_record;

#[tokio::test]
async fn a_new_session_is_active_and_yields_its_user_and_scopes() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let mut session = new_session(&alice, t0());
    session.scopes = ScopeSet::EMPTY.with(Scope::Profile).with(Scope::Admin);
    db.store
        .create_session(&session, 100, DAY, &audit_record(t0()))
        .await
        .expect("create");

    let active = db
        .store
        .find_active_session(session.id, alice.id, t0() + HOUR, HOUR * 2)
        .await
        .expect("lookup");

    assert_eq!(
        active,
        Some(ActiveSession {
            user: alice,
            scopes: session.scopes
        })
    );
}

/// A `sessions` row as stored, read with raw SQL.
#[derive(Debug, PartialEq, Eq)]
struct SessionRow {
    user_id: String,
    scope: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    ip: Option<String>,
    user_agent: Option<String>,
}

#[tokio::test]
async fn a_session_is_stored_with_its_client_details_and_last_use_at_creation() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    let row = db
        .raw_connection()
        .query_row(
            "SELECT user_id, scope, created_at, last_used_at, expires_at, revoked_at, ip, user_agent \
             FROM sessions WHERE id = ?1",
            [session.id.to_string()],
            |row| {
                Ok(SessionRow {
                    user_id: row.get(0)?,
                    scope: row.get(1)?,
                    created_at: row.get(2)?,
                    last_used_at: row.get(3)?,
                    expires_at: row.get(4)?,
                    revoked_at: row.get(5)?,
                    ip: row.get(6)?,
                    user_agent: row.get(7)?,
                })
            },
        )
        .expect("session row");

    let created = t0().unix_timestamp();
    let expected = SessionRow {
        user_id: alice.id.to_string(),
        scope: "profile".to_owned(),
        created_at: created,
        last_used_at: created,
        expires_at: (t0() + DAY).unix_timestamp(),
        revoked_at: None,
        ip: session.ip.clone(),
        user_agent: session.user_agent.clone(),
    };
    assert_eq!(row, expected);
}

#[tokio::test]
async fn a_revoked_session_is_not_active() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    db.raw_connection()
        .execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1",
            (session.id.to_string(), t0().unix_timestamp() + 1),
        )
        .expect("revoke");

    let active = db
        .store
        .find_active_session(session.id, alice.id, t0() + HOUR, HOUR * 2)
        .await
        .expect("lookup");

    assert!(active.is_none());
}

#[tokio::test]
async fn a_session_stops_being_active_at_its_absolute_expiry() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    // An idle timeout longer than the session, so only expiry matters here.
    let idle = DAY * 2;

    let just_before = session.expires_at - Duration::from_secs(1);
    let before = db
        .store
        .find_active_session(session.id, alice.id, just_before, idle)
        .await
        .expect("lookup");
    let at = db
        .store
        .find_active_session(session.id, alice.id, session.expires_at, idle)
        .await
        .expect("lookup");

    assert!(before.is_some());
    assert!(at.is_none());
}

#[tokio::test]
async fn a_session_unused_for_the_idle_timeout_is_not_active() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    let just_before = t0() + HOUR - Duration::from_secs(1);
    let before = db
        .store
        .find_active_session(session.id, alice.id, just_before, HOUR)
        .await
        .expect("lookup");
    let at = db
        .store
        .find_active_session(session.id, alice.id, t0() + HOUR, HOUR)
        .await
        .expect("lookup");

    assert!(before.is_some());
    assert!(at.is_none());
}

#[tokio::test]
async fn an_enormous_idle_timeout_does_not_overflow() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    let active = db
        .store
        .find_active_session(session.id, alice.id, t0() + HOUR, Duration::MAX)
        .await
        .expect("lookup");

    assert!(active.is_some());
}

#[tokio::test]
async fn a_session_is_not_active_for_another_user_or_under_another_id() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let session = db.start_session(&alice, t0()).await;
    let now = t0() + HOUR;

    let as_bob = db
        .store
        .find_active_session(session.id, bob.id, now, HOUR * 2)
        .await
        .expect("lookup");
    let as_nobody = db
        .store
        .find_active_session(session.id, UserId::random(), now, HOUR * 2)
        .await
        .expect("lookup");
    let other_id = db
        .store
        .find_active_session(SessionId::random(), alice.id, now, HOUR * 2)
        .await
        .expect("lookup");

    assert!(as_bob.is_none());
    assert!(as_nobody.is_none());
    assert!(other_id.is_none());
}

#[tokio::test]
async fn a_session_of_a_disabled_user_is_not_active_even_if_not_revoked() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    // Flip the flag alone, behind the store's back, to check the query's own
    // `disabled` condition rather than set_disabled's revocation.
    db.raw_connection()
        .execute(
            "UPDATE users SET disabled = 1 WHERE id = ?1",
            [alice.id.to_string()],
        )
        .expect("disable");

    let active = db
        .store
        .find_active_session(session.id, alice.id, t0() + HOUR, HOUR * 2)
        .await
        .expect("lookup");

    assert!(active.is_none());
}

#[tokio::test]
async fn creating_a_session_for_an_unknown_user_is_not_found_and_stores_nothing() {
    let db = TestDatabase::new();
    let ghost = alice();

    let result = db
        .store
        .create_session(&new_session(&ghost, t0()), 100, DAY, &audit_record(t0()))
        .await;

    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    let rows: i64 = db
        .raw_connection()
        .query_row(
            "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM refresh_tokens)",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(rows, 0);
}
