//! The store conformance suite against the PostgreSQL store: each promise
//! on a fresh database of its own, with the test audit key.

use std::sync::Arc;

use portcullis_postgres::testing::TestDatabase;
use portcullis_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_conformance::fixtures::test_audit_key;

portcullis_store_conformance::store_conformance_suite!(async {
    let database = TestDatabase::create().await;
    let store = PostgresStore::open(database.url(), &PostgresOptions::default())
        .await
        .expect("open the store on a fresh database");
    store.set_audit_key(test_audit_key());
    (Arc::new(store), database)
});
