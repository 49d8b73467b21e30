//! The database file itself: pragmas, cascades, reopening, migrations.

use portcullis_domain::PageRequest;
use portcullis_domain::ports::{ApiKeyStore, UserStore};
use portcullis_sqlite::{SqliteStore, StorageError};
use portcullis_store_conformance::fixtures::{audit_record, test_audit_key};

use crate::support::{DATABASE_FILE, TestDatabase, alice, new_api_key, t0};

/// The number of migrations this build ships.
const SCHEMA_VERSION: i64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pooled_connections_use_wal_foreign_keys_a_busy_timeout_and_normal_sync() {
    let db = TestDatabase::new();
    // Ask from many tasks at once, so that several pooled connections answer.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { store.pooled_connection_settings().await })
        })
        .collect();

    for task in tasks {
        let settings = task.await.expect("task").expect("settings");
        assert_eq!(settings.journal_mode, "wal");
        assert!(settings.foreign_keys);
        assert_eq!(settings.busy_timeout_ms, 5000);
        assert_eq!(settings.synchronous, 1, "NORMAL");
        assert!(settings.secure_delete, "deleted content is overwritten");
    }
}

#[tokio::test]
async fn the_database_file_is_in_wal_mode() {
    let db = TestDatabase::new();
    let connection = rusqlite::Connection::open(db.path()).expect("raw connection");

    let mode: String = connection
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal mode");

    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn deleting_a_user_row_cascades_to_its_sessions_and_refresh_tokens() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    db.start_session(&alice, t0()).await;
    db.start_session(&alice, t0()).await;
    let connection = db.raw_connection();
    let count = |table: &str| -> i64 {
        connection
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .expect("count")
    };
    assert_eq!((count("sessions"), count("refresh_tokens")), (2, 2));

    connection
        .execute("DELETE FROM users WHERE id = ?1", [alice.id.to_string()])
        .expect("delete user");

    assert_eq!((count("sessions"), count("refresh_tokens")), (0, 0));
}

#[tokio::test]
async fn reopening_an_existing_database_keeps_its_data_and_does_not_rerun_migrations() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let version = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .expect("raw connection")
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version")
    };
    let path = db.path();
    assert_eq!(version(&path), SCHEMA_VERSION);
    let TestDatabase { store, directory } = db;
    drop(store);

    // The migrations create their tables without IF NOT EXISTS: running one
    // again would fail the open.
    let reopened = SqliteStore::open(&path).expect("reopen");

    assert_eq!(
        reopened.find_user(alice.id).await.expect("lookup"),
        Some(alice)
    );
    assert_eq!(version(&path), SCHEMA_VERSION);
    drop(directory);
}

#[tokio::test]
async fn opening_a_database_newer_than_this_build_fails_with_a_migration_error() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join(DATABASE_FILE);
    rusqlite::Connection::open(&path)
        .expect("raw connection")
        .pragma_update(None, "user_version", 99)
        .expect("set user_version");

    let result = SqliteStore::open(&path);

    assert!(
        matches!(result, Err(StorageError::Migration(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn opening_a_file_in_a_missing_directory_fails_with_an_open_error() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("missing").join(DATABASE_FILE);

    let result = SqliteStore::open(&path);

    assert!(matches!(result, Err(StorageError::Open(_))), "{result:?}");
}

#[tokio::test]
async fn only_the_given_refresh_token_hash_is_stored() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let session = db.start_session(&alice, t0()).await;

    let stored: Vec<(Vec<u8>, String, i64, Option<i64>)> = db
        .raw_connection()
        .prepare("SELECT token_hash, session_id, created_at, used_at FROM refresh_tokens")
        .expect("prepare")
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");

    let expected = vec![(
        session.refresh_token_hash.as_bytes().to_vec(),
        session.id.to_string(),
        t0().unix_timestamp(),
        None,
    )];
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn a_database_of_the_first_schema_is_upgraded_keeping_its_accounts() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join(DATABASE_FILE);
    let alice = alice();
    {
        // A file as the first release left it: migration 1 only.
        let connection = rusqlite::Connection::open(&path).expect("raw connection");
        connection
            .execute_batch(include_str!("../../migrations/0001_initial.sql"))
            .expect("migration 1");
        connection
            .pragma_update(None, "user_version", 1)
            .expect("set user_version");
        connection
            .execute(
                "INSERT INTO users (id, username, email, password_hash, role, created_at, updated_at) \
                 VALUES (?1, 'alice', 'alice@example.com', 'hash', 'user', ?2, ?2)",
                (alice.id.to_string(), t0().unix_timestamp()),
            )
            .expect("insert alice");
    }

    let store = SqliteStore::open(&path).expect("open and upgrade");
    store.set_audit_key(test_audit_key());

    assert_eq!(
        store.find_user(alice.id).await.expect("lookup"),
        Some(alice.clone())
    );
    let version: i64 = rusqlite::Connection::open(&path)
        .expect("raw connection")
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version");
    assert_eq!(version, SCHEMA_VERSION);
    let key = new_api_key(&alice, t0());
    store
        .create_api_key(&key, 100, &audit_record(t0()))
        .await
        .expect("create a key");
    assert_eq!(
        store
            .list_api_keys(alice.id, &PageRequest::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn a_held_write_lock_makes_the_write_probe_fail_as_unavailable_within_about_a_second() {
    use portcullis_domain::StoreError;

    let db = TestDatabase::new();
    db.store.ensure_writable().await.expect("writable at first");
    let lock = SqliteStore::hold_write_lock_for_tests(&db.path()).expect("take the write lock");

    let started = std::time::Instant::now();
    let probed = db.store.ensure_writable().await;
    let waited = started.elapsed();

    assert!(
        matches!(probed, Err(StoreError::Unavailable(_))),
        "{probed:?}"
    );
    assert!(
        waited >= std::time::Duration::from_millis(900)
            && waited < std::time::Duration::from_secs(4),
        "waited {waited:?}"
    );
    db.store.check_health().await.expect("reads still work");
    drop(lock);
    db.store.ensure_writable().await.expect("writable again");
    // The probe gave the pooled connections their usual wait back.
    for _ in 0..4 {
        let settings = db
            .store
            .pooled_connection_settings()
            .await
            .expect("settings");
        assert_eq!(settings.busy_timeout_ms, 5000);
    }
}

/// The schema itself refuses a second current or next signing key, and a
/// retired key without its end (or a live one with one), whatever a writer
/// does.
#[test]
fn the_schema_allows_one_current_and_one_next_signing_key() {
    let db = TestDatabase::new();
    let connection = rusqlite::Connection::open(db.directory.path().join(DATABASE_FILE))
        .expect("raw connection");
    let insert = |kid: &str, state: &str, retires_at: Option<i64>| {
        connection.execute(
            "INSERT INTO signing_keys (kid, algorithm, state, created_at, signs_from, \
             retires_at, public_key, sealed_private_key) \
             VALUES (?1, 'EdDSA', ?2, 0, 0, ?3, x'00', x'00')",
            rusqlite::params![kid, state, retires_at],
        )
    };
    insert("a", "current", None).expect("the first current key");
    insert("b", "next", None).expect("the first next key");
    assert!(
        insert("c", "current", None).is_err(),
        "a second current key"
    );
    assert!(insert("d", "next", None).is_err(), "a second next key");
    assert!(
        insert("e", "retired", None).is_err(),
        "retired without an end"
    );
    assert!(insert("f", "next", Some(1)).is_err(), "live with an end");
    insert("g", "retired", Some(1)).expect("a retired key");
    insert("h", "retired", Some(2)).expect("another retired key");
}
