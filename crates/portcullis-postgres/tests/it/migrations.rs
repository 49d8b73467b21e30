//! Connecting and migrating: nodes racing on an empty database, the schema
//! check, the upgrade of a version-1 database, and refusals before
//! anything is touched.

use std::time::{Duration, Instant};

use portcullis_domain::audit::verify_store;
use portcullis_domain::ports::UserStore;
use portcullis_postgres::testing::TestDatabase;
use portcullis_postgres::{PostgresError, PostgresOptions, PostgresStore};
use portcullis_store_conformance::fixtures::{TestAuditKey, audit_record, named, new_user, t0};

use crate::support::{Fresh, raw_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_opening_one_empty_database_at_once_apply_the_schema_once() {
    let database = TestDatabase::create().await;
    let options = PostgresOptions::default();
    let (first, second, third) = tokio::join!(
        PostgresStore::open(database.url(), &options),
        PostgresStore::open(database.url(), &options),
        PostgresStore::open(database.url(), &options),
    );
    for (node, opened) in [first, second, third].into_iter().enumerate() {
        let store = opened.unwrap_or_else(|error| panic!("node {node} failed to open: {error}"));
        assert!(store.schema_is_current().await.expect("schema check"));
    }
    let client = raw_client(&database).await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM portcullis_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("read versions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2], "each version recorded exactly once");
}

#[tokio::test]
async fn a_connected_database_is_current_only_once_migrated_and_migrating_again_applies_nothing() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(database.url(), &PostgresOptions::default())
        .await
        .expect("connect");
    assert!(
        !store.schema_is_current().await.expect("schema check"),
        "an empty database has no schema yet"
    );
    let client = raw_client(&database).await;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .expect("count tables")
        .get(0);
    assert_eq!(tables, 0, "neither connect nor the check creates anything");
    assert_eq!(
        store.migrate().await.expect("migrate"),
        2,
        "the schema, then the audit log"
    );
    assert!(store.schema_is_current().await.expect("schema check"));
    assert_eq!(store.migrate().await.expect("migrate again"), 0);
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused_unchanged() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::open(database.url(), &PostgresOptions::default())
        .await
        .expect("open");
    let client = raw_client(&database).await;
    client
        .execute(
            "INSERT INTO portcullis_schema_migrations (version, applied_at) VALUES (99, 0)",
            &[],
        )
        .await
        .expect("pretend a newer build migrated");
    let refused = store.migrate().await;
    assert!(
        matches!(&refused, Err(PostgresError::Migration(text)) if text.contains("newer")),
        "{refused:?}"
    );
    assert!(!store.schema_is_current().await.expect("schema check"));
}

#[tokio::test]
async fn a_url_that_is_not_a_postgres_url_is_refused() {
    for url in [
        "mysql://root@127.0.0.1/db",
        "host=127.0.0.1 user=postgres",
        "",
    ] {
        let refused = PostgresStore::connect(url, &PostgresOptions::default()).await;
        assert!(matches!(refused, Err(PostgresError::Url(_))), "{url}");
    }
    let refused = PostgresStore::connect(
        "postgres://postgres@127.0.0.1/db?sslmode=sometimes",
        &PostgresOptions::default(),
    )
    .await;
    assert!(matches!(refused, Err(PostgresError::Url(_))), "{refused:?}");
}

#[tokio::test]
async fn an_unreachable_server_fails_to_connect_quickly_and_without_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let started = Instant::now();
    let refused = PostgresStore::connect(
        "postgres://alice:hunter2secret@127.0.0.1:1/portcullis?sslmode=disable",
        &PostgresOptions::default(),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(4));
    let Err(PostgresError::Connect(text)) = refused else {
        panic!("expected a connect error: {refused:?}");
    };
    assert!(!text.contains("hunter2secret"), "{text}");
}

#[tokio::test]
async fn the_redacted_url_has_no_password() {
    let database = TestDatabase::create().await;
    let url = format!("{}&password=hunter2secret", database.url());
    let store = PostgresStore::connect(&url, &PostgresOptions::default())
        .await
        .expect("connect (trust auth ignores the password)");
    let redacted = store.redacted_url();
    assert!(!redacted.contains("hunter2secret"), "{redacted}");
    assert!(redacted.contains(database.name()), "{redacted}");
    assert!(!format!("{store:?}").contains("hunter2secret"));
}

#[tokio::test]
async fn a_database_at_version_1_gets_the_audit_log_and_keeps_its_data() {
    let Fresh { store, database } = Fresh::new().await;
    let alice = named("alice");
    store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await
        .expect("insert");
    // Back to what a build before the audit log left: its accounts, no
    // audit tables, version 1 recorded.
    let client = raw_client(&database).await;
    client
        .batch_execute(
            "DROP TABLE audit_log, audit_chain; \
             DELETE FROM portcullis_schema_migrations WHERE version = 2",
        )
        .await
        .expect("downgrade by hand");
    assert!(!store.schema_is_current().await.expect("schema check"));
    assert_eq!(store.migrate().await.expect("migrate"), 1);
    assert!(store.schema_is_current().await.expect("schema check"));
    assert!(
        store
            .find_credentials(&alice.username)
            .await
            .expect("read")
            .is_some()
    );
    let bob = named("bob");
    store
        .insert_user(&new_user(&bob), &audit_record(t0()))
        .await
        .expect("insert after the upgrade");
    let report = verify_store(&store, &TestAuditKey)
        .await
        .expect("read")
        .expect("verifies");
    assert_eq!(report.head.map(|head| head.seq), Some(1), "a new chain");
}
