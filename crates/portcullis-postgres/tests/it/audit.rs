//! The audit log on PostgreSQL: one chain however many nodes (stores with
//! pools of their own) append at once, tampering behind the store's back
//! found by `verify_store` at the right place, and nothing appended by a
//! change that does not happen or by a store without its key.

use std::collections::BTreeSet;
use std::time::Duration;

use portcullis_domain::audit::{
    AuditContext, AuditEvent, AuditQuery, AuditRecord, ChainBreak, ChainProblem, ChainReport,
    LoginCredential, LoginFailure, SealedAuditEntry, SessionEndReason, verify_store,
};
use portcullis_domain::ports::{AuditStore, SessionStore, UserStore};
use portcullis_domain::{
    ClientInfo, PageCursor, PageRequest, RefreshOutcome, StoreError, User, UserId,
};
use portcullis_postgres::testing::TestDatabase;
use portcullis_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_conformance::fixtures::{
    DAY, HOUR, NO_CAP, TestAuditKey, at, audit_context, audit_record, named, new_session, new_user,
    t0, token_hash,
};

use crate::support::{Fresh, keyed_store, raw_client};

/// Every stored entry, in `seq` order.
async fn chain(store: &PostgresStore) -> Vec<SealedAuditEntry> {
    let mut entries = Vec::new();
    loop {
        let after = entries
            .last()
            .map_or(0, |sealed: &SealedAuditEntry| sealed.entry.seq);
        let page = store
            .audit_chain_page(after, 500)
            .await
            .expect("chain page");
        if page.is_empty() {
            return entries;
        }
        entries.extend(page);
    }
}

async fn verify(store: &PostgresStore) -> Result<ChainReport, ChainBreak> {
    verify_store(store, &TestAuditKey)
        .await
        .expect("read the chain")
}

/// The seqs of `entries`, which must be exactly 1..=n.
fn assert_gapless(entries: &[SealedAuditEntry], n: u64) {
    let seqs: Vec<u64> = entries.iter().map(|sealed| sealed.entry.seq).collect();
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "seq 1..={n} without gaps"
    );
}

/// A failed login of `user` at minute `minute`, with every client field
/// set, so that each entry's content differs from the others'.
fn failed_login(minute: u64, user: Option<UserId>) -> AuditRecord {
    let context = AuditContext {
        at: at(Duration::from_secs(60 * minute)),
        actor_id: user,
        client: ClientInfo {
            ip: Some("192.0.2.7".parse().expect("ip")),
            user_agent: Some("audit-test/1.0".to_owned()),
            request_id: Some(format!("request-{minute}")),
        },
    };
    context.record(
        user,
        AuditEvent::LoginFailed {
            reason: LoginFailure::WrongPassword,
            credential: LoginCredential::Password,
        },
    )
}

/// `n` appended events, one a minute from [`t0`].
async fn chain_of(store: &PostgresStore, n: u64) {
    let user = Some(UserId::random());
    for minute in 0..n {
        store
            .append_audit_event(&failed_login(minute, user))
            .await
            .expect("append");
    }
}

/// The login record of `session` of `user`.
fn login(user: &User, session: &portcullis_domain::NewSession) -> AuditRecord {
    audit_context(session.created_at).record(
        Some(user.id),
        AuditEvent::LoginSucceeded {
            session_id: session.id,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_nodes_appending_at_once_write_one_gapless_chain_that_verifies() {
    const TASKS_PER_NODE: u64 = 8;
    const APPENDS_PER_TASK: u64 = 20;
    const SESSIONS_PER_NODE: u64 = 10;
    let database = TestDatabase::create().await;
    let nodes = [keyed_store(&database).await, keyed_store(&database).await];
    let alice = named("alice");
    nodes[0]
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await
        .expect("insert");

    let mut appends = Vec::new();
    let mut logins = Vec::new();
    for node in &nodes {
        for task in 0..TASKS_PER_NODE {
            let node = node.clone();
            appends.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for append in 0..APPENDS_PER_TASK {
                    let record = failed_login(task * APPENDS_PER_TASK + append, None);
                    seqs.push(node.append_audit_event(&record).await.expect("append"));
                }
                seqs
            }));
        }
        for _ in 0..SESSIONS_PER_NODE {
            let node = node.clone();
            let alice = alice.clone();
            logins.push(tokio::spawn(async move {
                let session = new_session(&alice, t0());
                node.create_session(&session, NO_CAP, DAY, &login(&alice, &session))
                    .await
                    .expect("create session");
            }));
        }
    }
    let mut returned = BTreeSet::new();
    for task in appends {
        for seq in task.await.expect("append task") {
            assert!(returned.insert(seq), "seq {seq} returned twice");
        }
    }
    for task in logins {
        task.await.expect("login task");
    }

    let n = 1 + 2 * TASKS_PER_NODE * APPENDS_PER_TASK + 2 * SESSIONS_PER_NODE;
    let entries = chain(&nodes[1]).await;
    assert_gapless(&entries, n);
    let logins = entries
        .iter()
        .filter(|sealed| sealed.entry.event == "login.succeeded")
        .count();
    assert_eq!(logins as u64, 2 * SESSIONS_PER_NODE);
    for node in &nodes {
        let report = verify(node).await.expect("the chain verifies");
        assert_eq!(report.events, n);
        assert_eq!(report.head.map(|head| head.seq), Some(n));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn the_first_appends_of_two_nodes_on_an_empty_database_make_one_chain() {
    // Several rounds, as the race is on the creation of the head row.
    for _ in 0..3 {
        let database = TestDatabase::create().await;
        let nodes = [keyed_store(&database).await, keyed_store(&database).await];
        let mut tasks = Vec::new();
        for (index, node) in nodes.iter().enumerate() {
            for task in 0..4_u64 {
                let node = node.clone();
                tasks.push(tokio::spawn(async move {
                    node.append_audit_event(&failed_login(task * 2 + index as u64, None))
                        .await
                        .expect("first append")
                }));
            }
        }
        let mut seqs = BTreeSet::new();
        for task in tasks {
            assert!(seqs.insert(task.await.expect("task")));
        }
        assert_eq!(seqs, (1..=8).collect());
        assert_gapless(&chain(&nodes[0]).await, 8);
        assert_eq!(
            verify(&nodes[1])
                .await
                .expect("verifies")
                .head
                .map(|head| head.seq),
            Some(8)
        );
    }
}

/// Tampers with a fresh chain of six events through `sql` on a connection
/// of its own, then verifies.
async fn tampered(sql: &str) -> Result<ChainReport, ChainBreak> {
    let fresh = Fresh::new().await;
    chain_of(&fresh.store, 6).await;
    verify(&fresh.store).await.expect("intact before");
    let client = raw_client(&fresh.database).await;
    client.batch_execute(sql).await.expect("tamper");
    verify(&fresh.store).await
}

fn broken(seq: u64, problem: ChainProblem) -> Result<ChainReport, ChainBreak> {
    Err(ChainBreak { seq, problem })
}

#[tokio::test]
async fn an_edited_event_is_found_altered() {
    assert_eq!(
        tampered(
            "UPDATE audit_log SET details = '{\"reason\":\"unknown_user\",\
             \"credential\":\"password\"}' WHERE seq = 3"
        )
        .await,
        broken(3, ChainProblem::Altered)
    );
    assert_eq!(
        tampered("UPDATE audit_log SET at = at + 1 WHERE seq = 4").await,
        broken(4, ChainProblem::Altered)
    );
}

#[tokio::test]
async fn a_deleted_middle_event_is_found_missing() {
    assert_eq!(
        tampered("DELETE FROM audit_log WHERE seq = 3").await,
        broken(3, ChainProblem::Missing)
    );
}

#[tokio::test]
async fn two_events_swapped_are_found_altered_at_the_first() {
    // Every column but `seq`, MACs included, trades places.
    assert_eq!(
        tampered(
            "UPDATE audit_log AS a SET at = b.at, event = b.event, actor_id = b.actor_id, \
             subject_id = b.subject_id, ip = b.ip, user_agent = b.user_agent, \
             request_id = b.request_id, details = b.details, mac = b.mac \
             FROM audit_log AS b WHERE (a.seq, b.seq) IN ((2, 3), (3, 2))"
        )
        .await,
        broken(2, ChainProblem::Altered)
    );
}

#[tokio::test]
async fn a_truncated_tail_or_log_is_found_missing() {
    assert_eq!(
        tampered("DELETE FROM audit_log WHERE seq >= 5").await,
        broken(5, ChainProblem::Missing)
    );
    assert_eq!(
        tampered("TRUNCATE audit_log").await,
        broken(1, ChainProblem::Missing)
    );
}

#[tokio::test]
async fn a_removed_or_rolled_back_head_is_found() {
    // The head removed: the events are there, the chain's end is not.
    assert_eq!(
        tampered("DELETE FROM audit_chain").await,
        broken(1, ChainProblem::HeadAltered)
    );
    // The tail deleted and the head moved back to the new last event
    // (whose MAC is readable): the head's seal does not cover it.
    assert_eq!(
        tampered(
            "DELETE FROM audit_log WHERE seq > 4; \
             UPDATE audit_chain SET head_seq = 4, \
             head_mac = (SELECT mac FROM audit_log WHERE seq = 4)"
        )
        .await,
        broken(4, ChainProblem::HeadAltered)
    );
}

#[tokio::test]
async fn an_altered_checkpoint_is_found() {
    let fresh = Fresh::new().await;
    chain_of(&fresh.store, 6).await;
    // The first four are older than minute 4.
    let pruned = fresh
        .store
        .prune_audit_events(at(Duration::from_secs(60 * 4)), &audit_context(at(DAY)))
        .await
        .expect("prune");
    assert_eq!(pruned, 4);
    let report = verify(&fresh.store).await.expect("intact after pruning");
    assert_eq!(report.starts_after, 4);
    assert_eq!(report.events, 3, "events 5 and 6, and the pruning's own");
    let client = raw_client(&fresh.database).await;
    client
        .batch_execute("UPDATE audit_chain SET checkpoint_seq = 3")
        .await
        .expect("tamper");
    assert_eq!(
        verify(&fresh.store).await,
        broken(3, ChainProblem::CheckpointAltered)
    );
    client
        .batch_execute(
            "UPDATE audit_chain SET checkpoint_seq = 4, checkpoint_at = checkpoint_at - 1",
        )
        .await
        .expect("tamper");
    assert_eq!(
        verify(&fresh.store).await,
        broken(4, ChainProblem::CheckpointAltered)
    );
}

#[tokio::test]
async fn pruning_deletes_the_old_run_seals_a_checkpoint_and_records_itself() {
    let Fresh {
        store,
        database: _database,
    } = Fresh::new().await;
    assert_eq!(
        store
            .prune_audit_events(at(DAY), &audit_context(at(DAY)))
            .await
            .expect("prune an empty log"),
        0
    );
    assert_eq!(
        store.audit_anchor().await.expect("anchor"),
        Default::default(),
        "pruning an empty log writes nothing"
    );
    chain_of(&store, 5).await;
    // An event out of time order: the run from the start stops before it.
    store
        .append_audit_event(&failed_login(0, None))
        .await
        .expect("append");
    let pruned = store
        .prune_audit_events(at(Duration::from_secs(60 * 3)), &audit_context(at(DAY)))
        .await
        .expect("prune");
    assert_eq!(pruned, 3);
    let entries = chain(&store).await;
    let seqs: Vec<u64> = entries.iter().map(|sealed| sealed.entry.seq).collect();
    assert_eq!(seqs, vec![4, 5, 6, 7]);
    let last = &entries[3].entry;
    assert_eq!(last.event, "audit.pruned");
    assert_eq!(last.details, r#"{"count":3,"through_seq":3}"#);
    let anchor = store.audit_anchor().await.expect("anchor");
    let checkpoint = anchor.checkpoint.expect("a checkpoint");
    assert_eq!(checkpoint.position.seq, 3);
    assert_eq!(checkpoint.pruned_at, at(DAY));
    verify(&store).await.expect("the pruned chain verifies");

    // Nothing left that is older: nothing written.
    let again = store
        .prune_audit_events(at(Duration::from_secs(60 * 3)), &audit_context(at(DAY)))
        .await
        .expect("prune again");
    assert_eq!(again, 0);
    assert_eq!(store.audit_anchor().await.expect("anchor"), anchor);

    // Everything older: through the head, the pruning record included.
    let all = store
        .prune_audit_events(at(DAY * 2), &audit_context(at(DAY * 2)))
        .await
        .expect("prune all");
    assert_eq!(all, 4);
    let entries = chain(&store).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entry.seq, 8);
    assert_eq!(entries[0].entry.details, r#"{"count":4,"through_seq":7}"#);
    let report = verify(&store).await.expect("verifies");
    assert_eq!((report.starts_after, report.events), (7, 1));
}

#[tokio::test]
async fn the_listing_filters_and_pages_newest_first() {
    let Fresh {
        store,
        database: _database,
    } = Fresh::new().await;
    let alice = UserId::random();
    let admin = UserId::random();
    for minute in 0..10 {
        store
            .append_audit_event(&failed_login(minute, Some(alice)))
            .await
            .expect("append");
    }
    // An admin acting on alice, and alice acting on no one.
    let by_admin = AuditContext {
        actor_id: Some(admin),
        ..AuditContext::system(at(HOUR))
    };
    store
        .append_audit_event(&by_admin.record(Some(alice), AuditEvent::AccountDeleted))
        .await
        .expect("append");
    let by_alice = AuditContext {
        actor_id: Some(alice),
        ..AuditContext::system(at(HOUR * 2))
    };
    store
        .append_audit_event(&by_alice.record(None, AuditEvent::PasswordChanged))
        .await
        .expect("append");
    store
        .append_audit_event(&audit_record(at(HOUR * 3)))
        .await
        .expect("append");

    let seqs = |page: &portcullis_domain::Page<portcullis_domain::audit::AuditEntry>| {
        page.items.iter().map(|entry| entry.seq).collect::<Vec<_>>()
    };
    let list = |query: AuditQuery| {
        let store = store.clone();
        async move { store.list_audit_events(&query).await }
    };
    let everything = list(AuditQuery::default()).await.expect("list");
    assert_eq!(seqs(&everything), (1..=13).rev().collect::<Vec<_>>());
    assert_eq!(everything.next, None);

    // Subject or actor.
    let of_alice = list(AuditQuery {
        user: Some(alice),
        ..AuditQuery::default()
    })
    .await
    .expect("list");
    assert_eq!(seqs(&of_alice), (1..=12).rev().collect::<Vec<_>>());
    let of_admin = list(AuditQuery {
        user: Some(admin),
        ..AuditQuery::default()
    })
    .await
    .expect("list");
    assert_eq!(seqs(&of_admin), vec![11]);

    // By name, and by time: since inclusive, until exclusive.
    let named_events = list(AuditQuery {
        events: vec!["account.deleted".to_owned(), "password.changed".to_owned()],
        ..AuditQuery::default()
    })
    .await
    .expect("list");
    assert_eq!(seqs(&named_events), vec![13, 12, 11]);
    let window = list(AuditQuery {
        since: Some(at(Duration::from_secs(60 * 2))),
        until: Some(at(Duration::from_secs(60 * 5))),
        ..AuditQuery::default()
    })
    .await
    .expect("list");
    assert_eq!(seqs(&window), vec![5, 4, 3]);

    // Exact pages: every event once, in order, and no next after the last.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = list(AuditQuery {
            user: Some(alice),
            page: PageRequest { limit: 5, after },
            ..AuditQuery::default()
        })
        .await
        .expect("page");
        assert!(page.items.len() <= 5);
        seen.extend(seqs(&page));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, (1..=12).rev().collect::<Vec<_>>());
    // A zero limit is one item, not a panic or an empty page.
    let one = list(AuditQuery {
        page: PageRequest {
            limit: 0,
            after: None,
        },
        ..AuditQuery::default()
    })
    .await
    .expect("list");
    assert_eq!(seqs(&one), vec![13]);
    assert!(one.next.is_some());
    // Another listing's cursor is refused.
    assert!(matches!(
        list(AuditQuery {
            page: PageRequest {
                limit: 5,
                after: Some(PageCursor::after_user(3)),
            },
            ..AuditQuery::default()
        })
        .await,
        Err(StoreError::InvalidCursor)
    ));
}

#[tokio::test]
async fn each_change_appends_its_events_in_order_and_a_change_that_does_not_happen_appends_nothing()
{
    let Fresh {
        store,
        database: _database,
    } = Fresh::new().await;
    let alice = named("alice");
    store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await
        .expect("insert");
    // Refused or empty changes: a conflict, an unknown user, a session
    // that is not there, a session of an unknown user.
    let same_name = portcullis_store_conformance::fixtures::user("alice", "other@example.com");
    assert!(matches!(
        store
            .insert_user(&new_user(&same_name), &audit_record(t0()))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .delete_user(UserId::random(), &audit_record(t0()))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        !store
            .revoke_session(
                portcullis_domain::SessionId::random(),
                alice.id,
                t0(),
                &audit_record(t0())
            )
            .await
            .expect("revoke")
    );
    assert_eq!(
        store
            .revoke_user_sessions(alice.id, None, t0(), &audit_context(t0()))
            .await
            .expect("revoke all"),
        0
    );
    let stranger = named("stranger");
    assert!(matches!(
        store
            .create_session(
                &new_session(&stranger, t0()),
                NO_CAP,
                DAY,
                &audit_record(t0())
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(chain(&store).await.len(), 1, "only the insert appended");

    // A login past the cap of two: the eviction first, then the login.
    let first = new_session(&alice, t0());
    store
        .create_session(&first, 2, DAY, &login(&alice, &first))
        .await
        .expect("first");
    let second = new_session(&alice, at(HOUR));
    store
        .create_session(&second, 2, DAY, &login(&alice, &second))
        .await
        .expect("second");
    let third = new_session(&alice, at(HOUR * 2));
    store
        .create_session(&third, 2, DAY, &login(&alice, &third))
        .await
        .expect("third");
    let entries = chain(&store).await;
    let tail: Vec<(&str, &str)> = entries[3..]
        .iter()
        .map(|sealed| (sealed.entry.event.as_str(), sealed.entry.details.as_str()))
        .collect();
    let ended = AuditEvent::SessionEnded {
        session_id: first.id,
        reason: SessionEndReason::SessionCap,
    }
    .details()
    .to_string();
    let logged_in = AuditEvent::LoginSucceeded {
        session_id: third.id,
    }
    .details()
    .to_string();
    assert_eq!(
        tail,
        vec![
            ("session.ended", ended.as_str()),
            ("login.succeeded", logged_in.as_str())
        ]
    );
    assert!(
        entries[3..]
            .iter()
            .all(|sealed| sealed.entry.subject_id == Some(alice.id))
    );

    // A replayed refresh token: recorded about its owner, even though it
    // changes only the session.
    let rotated = store
        .rotate_refresh_token(
            &second.refresh_token_hash,
            &token_hash(),
            at(HOUR * 3),
            DAY,
            &audit_context(at(HOUR * 3)),
        )
        .await
        .expect("rotate");
    assert!(matches!(rotated, RefreshOutcome::Rotated { .. }));
    assert_eq!(chain(&store).await.len(), 5, "a rotation appends nothing");
    let replayed = store
        .rotate_refresh_token(
            &second.refresh_token_hash,
            &token_hash(),
            at(HOUR * 4),
            DAY,
            &audit_context(at(HOUR * 4)),
        )
        .await
        .expect("replay");
    assert!(matches!(replayed, RefreshOutcome::Reused { .. }));
    let entries = chain(&store).await;
    let reused = &entries.last().expect("an entry").entry;
    assert_eq!(reused.seq, 6);
    assert_eq!(reused.event, "refresh_token.reused");
    assert_eq!(reused.subject_id, Some(alice.id));

    // Ending the rest counts them.
    assert_eq!(
        store
            .revoke_user_sessions(alice.id, None, at(HOUR * 5), &audit_context(at(HOUR * 5)))
            .await
            .expect("revoke all"),
        1
    );
    let entries = chain(&store).await;
    let ended = &entries.last().expect("an entry").entry;
    assert_eq!(ended.event, "sessions.ended");
    assert_eq!(ended.details, r#"{"count":1,"kept_current":false}"#);
    verify(&store).await.expect("verifies");
}

#[tokio::test]
async fn a_store_without_a_key_refuses_every_change_and_its_clones_share_the_key_once_set() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::open(database.url(), &PostgresOptions::default())
        .await
        .expect("open");
    let alice = named("alice");
    let refused = store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Failed(text)) if text.contains("audit log has no key")),
        "{refused:?}"
    );
    assert!(
        store
            .find_credentials(&alice.username)
            .await
            .expect("read")
            .is_none(),
        "the change rolled back with the append"
    );
    assert!(matches!(
        store.append_audit_event(&audit_record(t0())).await,
        Err(StoreError::Failed(_))
    ));
    assert!(matches!(
        store
            .prune_audit_events(at(DAY), &audit_context(at(DAY)))
            .await,
        Err(StoreError::Failed(_))
    ));
    assert_eq!(
        store.audit_anchor().await.expect("anchor"),
        Default::default()
    );
    assert!(chain(&store).await.is_empty());
    let client = raw_client(&database).await;
    let rows: i64 = client
        .query_one("SELECT count(*) FROM audit_chain", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 0, "not even the head row");

    // A key given to a clone is the key of every clone.
    let clone = store.clone();
    clone.set_audit_key(portcullis_store_conformance::fixtures::test_audit_key());
    store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await
        .expect("insert with the key");
    assert_eq!(verify(&store).await.expect("verifies").events, 1);
}

/// A transaction that holds the chain's head (here: another session, as a
/// stuck or slow audited write would) makes an append give up within the
/// head's lock timeout, answered as busy (`Unavailable`), leaving no waiter
/// behind; the store is not taken for unreachable, so the next operation
/// runs at once, and appends work again when the head is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_head_makes_an_append_busy_within_the_lock_timeout_and_no_outage() {
    let Fresh { store, database } = Fresh::new().await;
    chain_of(&store, 2).await;
    let mut holder = raw_client(&database).await;
    let holding = holder.transaction().await.expect("begin");
    holding
        .query_one(
            "SELECT head_seq FROM audit_chain WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .expect("the head, locked");

    let started = std::time::Instant::now();
    let refused = store.append_audit_event(&failed_login(3, None)).await;
    let waited = started.elapsed();
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(text)) if text.contains("55P03")),
        "busy, by the lock timeout: {refused:?}"
    );
    assert!(
        waited >= Duration::from_millis(2_000) && waited < Duration::from_millis(2_900),
        "gave up at the lock timeout, before the 3 s deadline: {waited:?}"
    );
    // Not an outage: the next operation is served at once.
    store.check_health().await.expect("still reachable");
    let waiting: i64 = holder_count_of_waiters(&database).await;
    assert_eq!(waiting, 0, "no append left waiting on the server");

    holding.rollback().await.expect("release the head");
    assert_eq!(
        store
            .append_audit_event(&failed_login(4, None))
            .await
            .expect("appends again"),
        3
    );
    assert_eq!(verify(&store).await.expect("whole").events, 3);
}

/// Sessions of the test database waiting for a lock.
async fn holder_count_of_waiters(database: &TestDatabase) -> i64 {
    raw_client(database)
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}
