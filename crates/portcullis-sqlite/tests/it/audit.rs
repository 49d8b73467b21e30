//! The audit log on a real database file: tampering with raw SQL on a
//! connection of its own is what `verify_store` must catch; changes that do
//! not happen append nothing; a store without its key writes nothing; a
//! copy verifies; an older file is upgraded.

use std::time::Duration;

use portcullis_domain::audit::{
    AuditAnchor, AuditEvent, AuditQuery, ChainBreak, ChainProblem, ChainReport, SessionEndReason,
    verify_store,
};
use portcullis_domain::ports::{AuditStore, SessionStore, StoreCopy, UserStore};
use portcullis_domain::{NewSession, NewUser, PageRequest, StoreError};
use portcullis_sqlite::SqliteStore;
use portcullis_store_conformance::fixtures::{audit_context, audit_record, test_audit_key};
use time::OffsetDateTime;

use crate::support::{
    DATABASE_FILE, DAY, HOUR, TestDatabase, alice, at, dummy_hash, fresh_token_hash, new_session,
    t0, user, username,
};

/// What `verify_store` says of `db`'s chain, with the tests' key.
async fn verdict(db: &TestDatabase) -> Result<ChainReport, ChainBreak> {
    verify_store(&db.store, &*test_audit_key())
        .await
        .expect("the store can be read")
}

/// A chain of `count` events, the `n`th (from 1) at `t0() + n hours`.
async fn chain_of(count: u64) -> TestDatabase {
    let db = TestDatabase::new();
    for n in 1..=count {
        let seq = db
            .store
            .append_audit_event(&audit_record(at(HOUR * n as u32)))
            .await
            .expect("append");
        assert_eq!(seq, n);
    }
    db
}

/// Runs raw SQL on a connection of its own, behind the store's back.
fn tamper(db: &TestDatabase, sql: &str) {
    db.raw_connection()
        .execute_batch(sql)
        .expect("tampering statement");
}

fn broken(seq: u64, problem: ChainProblem) -> Result<ChainReport, ChainBreak> {
    Err(ChainBreak { seq, problem })
}

#[tokio::test]
async fn an_untouched_chain_verifies_up_to_its_head() {
    let db = chain_of(5).await;

    let report = verdict(&db).await.expect("intact");

    assert_eq!(report.events, 5);
    assert_eq!(report.starts_after, 0);
    assert_eq!(report.head.map(|head| head.seq), Some(5));
}

#[tokio::test]
async fn editing_an_events_details_is_detected_at_its_seq() {
    let db = chain_of(5).await;

    tamper(
        &db,
        "UPDATE audit_log SET details = '{\"forged\":true}' WHERE seq = 3",
    );

    assert_eq!(verdict(&db).await, broken(3, ChainProblem::Altered));
}

#[tokio::test]
async fn deleting_an_event_in_the_middle_is_detected_as_missing() {
    let db = chain_of(5).await;

    tamper(&db, "DELETE FROM audit_log WHERE seq = 3");

    assert_eq!(verdict(&db).await, broken(3, ChainProblem::Missing));
}

#[tokio::test]
async fn swapping_two_events_is_detected_at_the_first_of_them() {
    let db = chain_of(5).await;

    // Each row keeps its content and MAC but takes the other's place.
    tamper(
        &db,
        "UPDATE audit_log SET seq = -1 WHERE seq = 2; \
         UPDATE audit_log SET seq = 2 WHERE seq = 3; \
         UPDATE audit_log SET seq = 3 WHERE seq = -1;",
    );

    assert_eq!(verdict(&db).await, broken(2, ChainProblem::Altered));
}

#[tokio::test]
async fn deleting_the_last_events_is_detected_by_the_sealed_head() {
    let db = chain_of(5).await;

    tamper(&db, "DELETE FROM audit_log WHERE seq >= 4");

    assert_eq!(verdict(&db).await, broken(4, ChainProblem::Missing));
}

#[tokio::test]
async fn emptying_the_log_is_detected_from_its_first_event() {
    let db = chain_of(5).await;

    tamper(&db, "DELETE FROM audit_log");

    assert_eq!(verdict(&db).await, broken(1, ChainProblem::Missing));
}

#[tokio::test]
async fn removing_the_head_row_is_detected_at_the_first_event() {
    let db = chain_of(3).await;

    tamper(&db, "DELETE FROM audit_chain");

    assert_eq!(verdict(&db).await, broken(1, ChainProblem::HeadAltered));
}

#[tokio::test]
async fn moving_the_head_back_over_deleted_events_is_detected() {
    let db = chain_of(5).await;

    // Delete the tail and point the head at the new last event with its
    // real MAC: the seal no longer matches.
    tamper(
        &db,
        "DELETE FROM audit_log WHERE seq >= 4; \
         UPDATE audit_chain SET head_seq = 3, \
         head_mac = (SELECT mac FROM audit_log WHERE seq = 3);",
    );

    assert_eq!(verdict(&db).await, broken(3, ChainProblem::HeadAltered));
}

/// A chain of five events, the first three on day one and the rest a day
/// later, pruned before the second day: the checkpoint seals event 3, and
/// the pruning appended event 6.
async fn pruned_chain() -> TestDatabase {
    let db = TestDatabase::new();
    for moment in [t0(), t0(), at(HOUR), at(DAY), at(DAY + HOUR)] {
        db.store
            .append_audit_event(&audit_record(moment))
            .await
            .expect("append");
    }
    let deleted = db
        .store
        .prune_audit_events(at(DAY), &audit_context(at(DAY * 2)))
        .await
        .expect("prune");
    assert_eq!(deleted, 3);
    db
}

#[tokio::test]
async fn pruning_deletes_the_old_run_seals_a_checkpoint_and_records_itself() {
    let db = pruned_chain().await;

    let report = verdict(&db).await.expect("intact after pruning");
    assert_eq!(report.starts_after, 3);
    assert_eq!(report.events, 3);
    assert_eq!(report.head.map(|head| head.seq), Some(6));
    let anchor = db.store.audit_anchor().await.expect("anchor");
    let checkpoint = anchor.checkpoint.expect("a checkpoint");
    assert_eq!(checkpoint.position.seq, 3);
    assert_eq!(checkpoint.pruned_at, at(DAY * 2));
    let newest = db
        .store
        .list_audit_events(&AuditQuery::default())
        .await
        .expect("list");
    assert_eq!(
        newest
            .items
            .first()
            .map(|entry| (entry.seq, entry.event.as_str())),
        Some((6, "audit.pruned"))
    );
    assert_eq!(
        newest.items.first().map(|entry| entry.details.clone()),
        Some(
            AuditEvent::AuditPruned {
                through_seq: 3,
                count: 3
            }
            .details()
            .to_string()
        )
    );

    // Nothing older is left: pruning again deletes and writes nothing.
    let again = db
        .store
        .prune_audit_events(at(DAY), &audit_context(at(DAY * 3)))
        .await
        .expect("prune again");
    assert_eq!(again, 0);
    assert_eq!(db.store.audit_anchor().await.expect("anchor"), anchor);
    assert_eq!(db.count("audit_log"), 3);
}

#[tokio::test]
async fn altering_the_checkpoint_is_detected() {
    for (sql, seq) in [
        // Hiding the pruning's extent.
        ("UPDATE audit_chain SET checkpoint_seq = 2", 2),
        // Skipping events after it, with a real MAC.
        (
            "UPDATE audit_chain SET checkpoint_seq = 4, \
             checkpoint_mac = (SELECT mac FROM audit_log WHERE seq = 4)",
            4,
        ),
        // Backdating the pruning.
        (
            "UPDATE audit_chain SET checkpoint_at = checkpoint_at - 86400",
            3,
        ),
    ] {
        let db = pruned_chain().await;

        tamper(&db, sql);

        assert_eq!(
            verdict(&db).await,
            broken(seq, ChainProblem::CheckpointAltered),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn pruning_refuses_to_seal_an_event_that_is_gone() {
    let db = TestDatabase::new();
    for moment in [t0(), t0(), at(DAY)] {
        db.store
            .append_audit_event(&audit_record(moment))
            .await
            .expect("append");
    }
    // The event the checkpoint would seal.
    tamper(&db, "DELETE FROM audit_log WHERE seq = 2");

    let result = db
        .store
        .prune_audit_events(at(HOUR), &audit_context(at(DAY * 2)))
        .await;

    assert!(matches!(result, Err(StoreError::Failed(_))), "{result:?}");
    assert_eq!(db.count("audit_log"), 2, "nothing deleted");
    assert_eq!(
        db.store.audit_anchor().await.expect("anchor").checkpoint,
        None
    );
    assert_eq!(verdict(&db).await, broken(2, ChainProblem::Missing));
}

#[tokio::test]
async fn a_change_that_fails_appends_nothing() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let anchor = db.store.audit_anchor().await.expect("anchor");

    let twin = user("alice", "other@example.com");
    let result = db
        .store
        .insert_user(
            &NewUser {
                user: twin,
                password_hash: dummy_hash(),
            },
            &audit_record(t0()),
        )
        .await;

    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(db.count("audit_log"), 1);
    assert_eq!(db.store.audit_anchor().await.expect("anchor"), anchor);
    assert!(verdict(&db).await.is_ok());
}

#[tokio::test]
async fn a_change_that_finds_nothing_to_do_appends_nothing() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    assert!(
        db.store
            .revoke_session(session.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
            .await
            .expect("revoke")
    );
    let before = db.count("audit_log");

    let again = db
        .store
        .revoke_session(session.id, alice.id, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("revoke again");
    let others = db
        .store
        .revoke_user_sessions(alice.id, None, at(HOUR), &audit_context(at(HOUR)))
        .await
        .expect("revoke every session");

    assert!(!again);
    assert_eq!(others, 0);
    assert_eq!(db.count("audit_log"), before);
}

#[tokio::test]
async fn a_store_without_a_key_refuses_changes_and_stores_nothing() {
    let db = TestDatabase::without_audit_key();
    let alice = alice();

    let result = db
        .store
        .insert_user(
            &NewUser {
                user: alice.clone(),
                password_hash: dummy_hash(),
            },
            &audit_record(t0()),
        )
        .await;
    let appended = db.store.append_audit_event(&audit_record(t0())).await;

    assert!(
        matches!(&result, Err(StoreError::Failed(text)) if text.contains("has no key")),
        "{result:?}"
    );
    assert!(
        matches!(appended, Err(StoreError::Failed(_))),
        "{appended:?}"
    );
    assert_eq!(db.store.find_user(alice.id).await.expect("lookup"), None);
    assert_eq!((db.count("audit_log"), db.count("audit_chain")), (0, 0));

    // A key given to a clone is the store's key: the original appends too.
    db.store.clone().set_audit_key(test_audit_key());
    db.insert(&alice).await;
    assert_eq!(db.count("audit_log"), 1);
    assert!(verdict(&db).await.is_ok());
}

#[tokio::test]
async fn the_session_cap_records_each_ended_session_before_the_login() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let oldest = new_session(&alice, t0());
    let older = new_session(&alice, at(HOUR));
    for session in [&oldest, &older] {
        db.store
            .create_session(session, 3, DAY, &audit_record(session.created_at))
            .await
            .expect("session");
    }
    let newest = new_session(&alice, at(HOUR * 2));
    let login = audit_record(newest.created_at).with_event(AuditEvent::LoginSucceeded {
        session_id: newest.id,
    });

    db.store
        .create_session(&newest, 1, DAY, &login)
        .await
        .expect("session over the cap");

    let events = db
        .store
        .list_audit_events(&AuditQuery::default())
        .await
        .expect("list")
        .items;
    let last_three: Vec<(String, String)> = events
        .iter()
        .take(3)
        .rev()
        .map(|entry| (entry.event.clone(), entry.details.clone()))
        .collect();
    let ended = |session: &NewSession| {
        (
            "session.ended".to_owned(),
            AuditEvent::SessionEnded {
                session_id: session.id,
                reason: SessionEndReason::SessionCap,
            }
            .details()
            .to_string(),
        )
    };
    assert_eq!(
        last_three,
        vec![
            ended(&oldest),
            ended(&older),
            (
                "login.succeeded".to_owned(),
                login.event.details().to_string()
            ),
        ],
        "least recently used first, then the login"
    );
    assert!(verdict(&db).await.is_ok());
}

#[tokio::test]
async fn a_reused_refresh_token_is_recorded_about_its_owner() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;
    db.rotate(&session.refresh_token_hash, at(HOUR)).await;

    db.store
        .rotate_refresh_token(
            &session.refresh_token_hash,
            &fresh_token_hash(),
            at(HOUR * 2),
            DAY,
            &audit_context(at(HOUR * 2)),
        )
        .await
        .expect("replay");

    let newest = db
        .store
        .list_audit_events(&AuditQuery::default())
        .await
        .expect("list")
        .items;
    let entry = newest.first().expect("an event");
    assert_eq!(entry.event, "refresh_token.reused");
    assert_eq!(entry.subject_id, Some(alice.id));
    assert_eq!(entry.at, at(HOUR * 2));
}

#[tokio::test]
async fn time_bounds_with_fractions_of_a_second_compare_as_the_stored_whole_seconds_would() {
    let db = TestDatabase::new();
    db.store
        .append_audit_event(&audit_record(t0()))
        .await
        .expect("append");
    let half_past = t0() + Duration::from_millis(500);
    let listed = |since: Option<OffsetDateTime>, until: Option<OffsetDateTime>| {
        let store = db.store.clone();
        async move {
            store
                .list_audit_events(&AuditQuery {
                    since,
                    until,
                    ..AuditQuery::default()
                })
                .await
                .expect("list")
                .items
                .len()
        }
    };

    // The event was at t0() exactly: not at or after half past, but before.
    assert_eq!(listed(Some(half_past), None).await, 0);
    assert_eq!(listed(None, Some(half_past)).await, 1);
    assert_eq!(listed(Some(t0()), None).await, 1);
    assert_eq!(listed(None, Some(t0())).await, 0);
}

#[tokio::test]
async fn the_listing_pages_newest_first_through_every_matching_event() {
    let db = chain_of(7).await;
    let mut seen = Vec::new();
    let mut page = PageRequest {
        limit: 3,
        after: None,
    };
    loop {
        let listed = db
            .store
            .list_audit_events(&AuditQuery {
                page: page.clone(),
                ..AuditQuery::default()
            })
            .await
            .expect("list");
        seen.extend(listed.items.iter().map(|entry| entry.seq));
        match listed.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, vec![7, 6, 5, 4, 3, 2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_form_one_chain_without_gaps() {
    let db = TestDatabase::new();
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let account = user(&format!("user{n}"), &format!("user{n}@example.com"));
                store
                    .insert_user(
                        &NewUser {
                            user: account,
                            password_hash: dummy_hash(),
                        },
                        &audit_record(t0()),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("insert");
    }

    let report = verdict(&db).await.expect("intact");
    assert_eq!(report.events, 24);
    assert_eq!(report.head.map(|head| head.seq), Some(24));
}

#[tokio::test]
async fn a_copy_into_a_fresh_store_verifies_with_the_same_head() {
    let source = TestDatabase::new();
    let alice = alice();
    source.insert(&alice).await;
    let session = source.start_session(&alice, at(HOUR)).await;
    source
        .rotate(&session.refresh_token_hash, at(HOUR * 2))
        .await;
    source
        .store
        .set_disabled(&username("alice"), true, at(DAY), &audit_record(at(DAY)))
        .await
        .expect("disable");
    source
        .store
        .prune_audit_events(at(HOUR * 2), &audit_context(at(DAY * 2)))
        .await
        .expect("prune");
    let source_report = verdict(&source).await.expect("source intact");
    let snapshot = source.store.export_snapshot().await.expect("export");
    assert!(snapshot.audit.anchor.checkpoint.is_some());

    let copy = TestDatabase::new();
    copy.store.import_snapshot(&snapshot).await.expect("import");

    assert_eq!(verdict(&copy).await, Ok(source_report));
    assert_eq!(
        copy.store.audit_anchor().await.expect("anchor"),
        source.store.audit_anchor().await.expect("anchor")
    );
    assert_eq!(
        copy.store.export_snapshot().await.expect("export"),
        snapshot
    );
    // The copy's chain goes on from the copied head.
    let next = copy
        .store
        .append_audit_event(&audit_record(at(DAY * 3)))
        .await
        .expect("append to the copy");
    assert_eq!(
        Some(next),
        source_report.head.map(|head| head.seq + 1),
        "the next seq after the copied head"
    );
    assert!(verdict(&copy).await.is_ok());
}

#[tokio::test]
async fn an_import_into_a_store_holding_audit_rows_is_refused() {
    let source = chain_of(2).await;
    let snapshot = source.store.export_snapshot().await.expect("export");

    // A target whose only content is one event.
    let target = TestDatabase::new();
    target
        .store
        .append_audit_event(&audit_record(t0()))
        .await
        .expect("append");
    let with_event = target.store.import_snapshot(&snapshot).await;
    // And one whose only content is a head row.
    tamper(&target, "DELETE FROM audit_log");
    let with_head = target.store.import_snapshot(&snapshot).await;

    assert!(
        matches!(with_event, Err(StoreError::NotEmpty)),
        "{with_event:?}"
    );
    assert!(
        matches!(with_head, Err(StoreError::NotEmpty)),
        "{with_head:?}"
    );
    assert_eq!(target.count("audit_log"), 0);
}

#[tokio::test]
async fn a_database_of_schema_four_is_upgraded_with_an_empty_audit_log() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join(DATABASE_FILE);
    let alice = alice();
    {
        // A file as the release before the audit log left it.
        let connection = rusqlite::Connection::open(&path).expect("raw connection");
        for migration in [
            include_str!("../../migrations/0001_initial.sql"),
            include_str!("../../migrations/0002_api_keys.sql"),
            include_str!("../../migrations/0003_email_key.sql"),
            include_str!("../../migrations/0004_signing_keys.sql"),
        ] {
            connection.execute_batch(migration).expect("migration");
        }
        connection
            .pragma_update(None, "user_version", 4)
            .expect("set user_version");
        connection
            .execute(
                "INSERT INTO users (id, username, email, email_key, password_hash, role, \
                 created_at, updated_at) \
                 VALUES (?1, 'alice', 'alice@example.com', 'alice@example.com', 'hash', 'user', \
                 ?2, ?2)",
                (alice.id.to_string(), t0().unix_timestamp()),
            )
            .expect("insert alice");
    }

    let store = SqliteStore::open(&path).expect("open and upgrade");
    store.set_audit_key(test_audit_key());

    let version: i64 = rusqlite::Connection::open(&path)
        .expect("raw connection")
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version");
    assert_eq!(version, 5);
    assert_eq!(
        store.find_user(alice.id).await.expect("lookup"),
        Some(alice.clone())
    );
    assert_eq!(
        store.audit_anchor().await.expect("anchor"),
        AuditAnchor::default(),
        "an empty chain has no head"
    );
    // The first change after the upgrade starts the chain.
    store
        .set_disabled(&username("alice"), true, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("disable");
    let events = store
        .list_audit_events(&AuditQuery::default())
        .await
        .expect("list")
        .items;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].seq, 1);
    assert_eq!(
        events[0].subject_id,
        Some(alice.id),
        "about the account changed"
    );
    let report = verify_store(&store, &*test_audit_key())
        .await
        .expect("read")
        .expect("intact");
    assert_eq!(report.events, 1);
}
