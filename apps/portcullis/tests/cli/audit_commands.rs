//! `portcullis audit verify` and `portcullis audit export` (CONTRACT §8):
//! verify exits 0 on a whole chain and 1 naming the first bad `seq` after
//! rows are edited, deleted, reordered or cut off in the database (by
//! someone who can write it but holds no master key); export prints JSON
//! lines, `--since` filters; on SQLite and on PostgreSQL; and a store with
//! an audit log refuses to run without its master key.

use portcullis_postgres::testing::TestDatabase;
use serde_json::Value;

use super::*;

/// A migrated sandbox with events: two accounts made, one disabled and
/// enabled again, one promoted (each a `user.registered` or
/// `user.updated_by_admin` event).
fn sandbox_with_events() -> Sandbox {
    let sandbox = Sandbox::migrated();
    with_events(&sandbox, |sandbox| sandbox.command());
    sandbox
}

fn with_events(sandbox: &Sandbox, command: impl Fn(&Sandbox) -> Command) {
    create_user(command(sandbox), "ann", &password(20)).assert_success();
    create_user(command(sandbox), "ben", &password(20)).assert_success();
    for args in [
        ["user", "disable", "ann"].as_slice(),
        ["user", "enable", "ann"].as_slice(),
        ["user", "set-role", "ben", "--role", "admin"].as_slice(),
    ] {
        let mut command = command(sandbox);
        command.args(args);
        run(command, None).assert_success();
    }
}

fn verify(mut command: Command) -> Outcome {
    command.args(["audit", "verify"]);
    run(command, None)
}

fn export(mut command: Command, since: Option<&str>) -> Vec<Value> {
    command.args(["audit", "export"]);
    if let Some(since) = since {
        command.args(["--since", since]);
    }
    let outcome = run(command, None);
    outcome.assert_success();
    outcome
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect()
}

/// Runs SQL on the sandbox's SQLite file directly, as an attacker with
/// write access to it would: through Python's sqlite3 module, since SQLite
/// is reached from Rust only through portcullis-sqlite (deny.toml).
fn tamper_sqlite(sandbox: &Sandbox, sql: &str) {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             connection = sqlite3.connect(sys.argv[1])\n\
             connection.executescript(sys.argv[2])\n\
             connection.commit()",
        ])
        .arg(sandbox.data_dir().join("portcullis.db"))
        .arg(sql)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the tampering runs: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts exit 1 and a message naming `seq`.
fn assert_broken_at(outcome: &Outcome, seq: u64, case: &str) {
    assert_eq!(outcome.code(), Some(1), "{case}: {}", outcome.messages());
    assert!(
        outcome
            .stderr
            .contains(&format!("audit chain broken at seq {seq}:")),
        "{case}: names seq {seq}: {}",
        outcome.stderr
    );
}

#[test]
fn verify_passes_on_a_whole_log_and_export_prints_every_event_as_json_lines() {
    let sandbox = sandbox_with_events();
    let whole = verify(sandbox.command());
    whole.assert_success();
    assert!(
        whole
            .stdout
            .contains("the audit log is whole: 5 events, seq 1 to 5; head MAC "),
        "{}",
        whole.stdout
    );

    let events = export(sandbox.command(), None);
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    assert_eq!(
        names,
        [
            "user.registered",
            "user.registered",
            "user.updated_by_admin",
            "user.updated_by_admin",
            "user.updated_by_admin",
        ]
    );
    assert_eq!(events[0]["details"]["username"], "ann");
    assert_eq!(
        events[0]["actor_id"],
        Value::Null,
        "the command line acts as no account"
    );
    assert_eq!(events[2]["details"]["disabled"], true);
    assert_eq!(events[4]["details"]["role"], "admin");
    assert!(
        events
            .iter()
            .all(|e| e["mac"].as_str().is_some_and(|m| m.len() == 64))
    );
    let text = serde_json::to_string(&events).expect("json");
    assert!(!text.contains(&password(20)), "no password in the log");

    assert!(export(sandbox.command(), Some("2999-01-01T00:00:00Z")).is_empty());
    assert_eq!(
        export(sandbox.command(), Some("2000-01-01T00:00:00Z")).len(),
        5
    );
    let mut bad_since = sandbox.command();
    bad_since.args(["audit", "export", "--since", "yesterday"]);
    let refused = run(bad_since, None);
    assert_eq!(
        refused.code(),
        Some(2),
        "a usage error: {}",
        refused.messages()
    );
    assert!(refused.stderr.contains("RFC 3339"), "{}", refused.stderr);
}

#[test]
fn every_kind_of_tampering_on_sqlite_is_named_by_its_first_bad_seq() {
    let cases = [
        (
            "an edited row",
            "UPDATE audit_log SET details = '{\"username\":\"mallory\",\"role\":\"admin\"}' WHERE seq = 2",
            2,
        ),
        ("a deleted row", "DELETE FROM audit_log WHERE seq = 3", 3),
        (
            "two rows swapped",
            "UPDATE audit_log SET seq = -1 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = 4;
             UPDATE audit_log SET seq = 4 WHERE seq = -1",
            3,
        ),
        (
            "the tail cut off",
            "DELETE FROM audit_log WHERE seq >= 4",
            4,
        ),
        ("every row deleted", "DELETE FROM audit_log", 1),
        (
            "a forged actor",
            "UPDATE audit_log SET actor_id = subject_id WHERE seq = 5",
            5,
        ),
    ];
    for (case, sql, seq) in cases {
        let sandbox = sandbox_with_events();
        verify(sandbox.command()).assert_success();
        tamper_sqlite(&sandbox, sql);
        assert_broken_at(&verify(sandbox.command()), seq, case);
    }
}

#[test]
fn a_store_with_an_audit_log_refuses_to_run_without_its_master_key() {
    let sandbox = sandbox_with_events();
    std::fs::remove_file(sandbox.data_dir().join("master-key")).expect("remove the master key");
    let refused = verify(sandbox.command());
    assert_ne!(refused.code(), Some(0));
    assert!(
        refused.messages().contains("master key"),
        "says what is missing: {}",
        refused.messages()
    );
    assert!(
        !sandbox.data_dir().join("master-key").exists(),
        "no new master key was made beside the chain"
    );
}

#[test]
fn tampering_on_postgresql_is_named_by_its_first_bad_seq() {
    let database = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(TestDatabase::create());
    let sandbox = Sandbox::new();
    let on = |sandbox: &Sandbox| {
        let mut command = sandbox.command();
        command.env("PORTCULLIS_DATABASE_URL", database.url());
        command
    };
    let mut migrate = on(&sandbox);
    migrate.arg("migrate");
    run(migrate, None).assert_success();
    with_events(&sandbox, on);
    let whole = verify(on(&sandbox));
    whole.assert_success();
    assert!(whole.stdout.contains("5 events"), "{}", whole.stdout);
    assert_eq!(export(on(&sandbox), None).len(), 5);

    let psql = |sql: &str| {
        let output = Command::new("psql")
            .args([database.url(), "-XAtqc", sql])
            .output()
            .expect("psql runs (Debian's postgresql-client)");
        assert!(
            output.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    psql("UPDATE audit_log SET ip = '203.0.113.9' WHERE seq = 4");
    assert_broken_at(&verify(on(&sandbox)), 4, "an edited row");
    psql("DELETE FROM audit_log WHERE seq = 2");
    assert_broken_at(&verify(on(&sandbox)), 2, "a deleted row before it");
}

/// Cutting the tail off and moving the head back onto the new last event
/// cannot be made good by the next change: the head's seal does not match,
/// so every audited change fails closed (nothing written) instead of
/// sealing the forgery, and verify keeps naming it.
#[test]
fn a_head_moved_back_by_hand_stops_audited_changes_instead_of_being_sealed() {
    let sandbox = sandbox_with_events();
    tamper_sqlite(
        &sandbox,
        "DELETE FROM audit_log WHERE seq = 5;
         UPDATE audit_chain SET head_seq = 4,
             head_mac = (SELECT mac FROM audit_log WHERE seq = 4)",
    );
    assert_broken_at(&verify(sandbox.command()), 4, "the moved head");

    let refused = create_user(sandbox.command(), "carl", &password(20));
    refused.assert_failure();
    assert!(
        refused.messages().contains("altered outside Portcullis"),
        "says why: {}",
        refused.messages()
    );
    let mut carl = sandbox.command();
    carl.args(["user", "disable", "carl"]);
    let outcome = run(carl, None);
    outcome.assert_failure();
    assert!(
        outcome.stderr.contains("no such user"),
        "{}",
        outcome.stderr
    );
    assert_broken_at(&verify(sandbox.command()), 4, "still the moved head");
}

/// With HS256 keys (no sealed signing key in the store) the master key is
/// still the audit chain's: a server given another one refuses to start
/// (exit 2) instead of failing every change at its first append.
#[test]
fn a_server_with_another_master_key_than_the_chain_refuses_to_start() {
    let sandbox = sandbox_with_events();
    let key = sandbox.data_dir().join("master-key");
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
    std::fs::write(&key, other).expect("replace the master key");
    let mut command = sandbox.command();
    command.env("PORTCULLIS_JWT_ALG", "HS256");
    command.args(["serve", "--bind", "127.0.0.1:0"]);
    let outcome = run_with_deadline(command, None, STARTUP_DEADLINE);
    assert_eq!(outcome.code(), Some(2), "{outcome:?}");
    assert!(
        outcome
            .messages()
            .contains("is not the one this database's audit log is chained with"),
        "{}",
        outcome.stderr
    );
    // The commands still open it, so that verify can say what is wrong.
    let refused = verify(sandbox.command());
    assert_eq!(refused.code(), Some(1), "{}", refused.messages());
}
