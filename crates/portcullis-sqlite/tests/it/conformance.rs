//! The store conformance suite against the SQLite store: each promise on a
//! fresh database file in its own temporary directory.

use std::sync::Arc;

use crate::support::TestDatabase;

portcullis_store_conformance::store_conformance_suite!(async {
    let TestDatabase { store, directory } = TestDatabase::new();
    (Arc::new(store), directory)
});
