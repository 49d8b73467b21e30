//! The store conformance suite against the PostgreSQL store: each promise
//! on a fresh database of its own.

use std::sync::Arc;

use portcullis_postgres::testing::TestDatabase;
use portcullis_postgres::{PostgresOptions, PostgresStore};

portcullis_store_conformance::store_conformance_suite!(async {
    let database = TestDatabase::create().await;
    let store = PostgresStore::open(database.url(), &PostgresOptions::default())
        .await
        .expect("open the store on a fresh database");
    (Arc::new(store), database)
});
