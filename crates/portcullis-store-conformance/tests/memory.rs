//! The in-memory store keeps every promise of the suite, so the domain's
//! tests, which run against it, test what a real backend does.

use std::sync::Arc;

use portcullis_store_conformance::MemoryStore;

portcullis_store_conformance::store_conformance_suite!(async {
    (Arc::new(MemoryStore::default()), ())
});

/// A store without an audit key refuses every audited change and makes
/// none of it, as a real store opened without the master key does; once
/// given the key, it appends.
#[tokio::test]
async fn without_an_audit_key_an_audited_change_fails_and_changes_nothing() {
    use portcullis_domain::StoreError;
    use portcullis_domain::ports::{AuditStore, UserStore};
    use portcullis_store_conformance::fixtures::{
        audit_record, named, new_user, t0, test_audit_key,
    };

    let store = MemoryStore::without_audit_key();
    let alice = named("alice");
    let result = store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await;
    assert!(matches!(result, Err(StoreError::Failed(_))), "{result:?}");
    assert!(store.find_user(alice.id).await.unwrap().is_none());
    assert!(store.append_audit_event(&audit_record(t0())).await.is_err());
    assert_eq!(store.audit_anchor().await.unwrap(), Default::default());

    store.set_audit_key(test_audit_key());
    store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await
        .unwrap();
    let anchor = store.audit_anchor().await.unwrap();
    assert_eq!(anchor.head.map(|head| head.position.seq), Some(1));
}
