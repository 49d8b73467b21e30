//! The in-memory store keeps every promise of the suite, so the domain's
//! tests, which run against it, test what a real backend does.

use std::sync::Arc;

use portcullis_store_conformance::MemoryStore;

portcullis_store_conformance::store_conformance_suite!(async {
    (Arc::new(MemoryStore::default()), ())
});
