//! Copying a deployment: a snapshot exported, imported into a fresh
//! database and exported again is the same, in the same order, and its
//! audit chain verifies there with the same head; a store that holds
//! anything (an audit event alone included) refuses an import and keeps
//! what it has.

use std::time::Duration;

use portcullis_domain::audit::verify_store;
use portcullis_domain::ports::{
    ApiKeyStore, AuditStore, SessionStore, SigningKeyStore, StoreCopy, UserStore,
};
use portcullis_domain::{KeyState, RefreshOutcome, StoreError, StoreSnapshot, UserListQuery};
use portcullis_store_conformance::fixtures::{
    DAY, HOUR, NO_CAP, TestAuditKey, admin, at, audit_context, audit_record, named, new_api_key,
    new_session, new_user, t0, token_hash,
};

use crate::support::{Fresh, signing_key};

/// A store with a bit of everything: an admin and users (one disabled),
/// live, rotated and revoked sessions, live and revoked keys, and a
/// current, a next and a retired signing key.
async fn populated() -> Fresh {
    let fresh = Fresh::new().await;
    let store = &fresh.store;
    let root = admin("root");
    let mut users = vec![root.clone()];
    // Enough users that creation order and id order surely differ.
    for index in 0..12 {
        users.push(named(&format!("user{index}")));
    }
    for user in &users {
        store
            .insert_user(&new_user(user), &audit_record(user.created_at))
            .await
            .expect("insert");
    }
    let alice = &users[1];
    let first = new_session(alice, t0());
    store
        .create_session(&first, NO_CAP, DAY, &audit_record(t0()))
        .await
        .expect("session");
    let rotated = store
        .rotate_refresh_token(
            &first.refresh_token_hash,
            &token_hash(),
            at(HOUR),
            DAY,
            &audit_context(at(HOUR)),
        )
        .await
        .expect("rotate");
    assert!(matches!(rotated, RefreshOutcome::Rotated { .. }));
    let second = new_session(alice, at(HOUR));
    store
        .create_session(&second, NO_CAP, DAY, &audit_record(at(HOUR)))
        .await
        .expect("session");
    store
        .revoke_session(
            second.id,
            alice.id,
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("revoke");
    store
        .create_session(&new_session(&root, t0()), NO_CAP, DAY, &audit_record(t0()))
        .await
        .expect("session");
    let key = new_api_key(alice, t0());
    store
        .create_api_key(&key, 10, &audit_record(t0()))
        .await
        .expect("key");
    let revoked = new_api_key(alice, at(HOUR));
    store
        .create_api_key(&revoked, 10, &audit_record(at(HOUR)))
        .await
        .expect("key");
    store
        .revoke_api_key(
            revoked.id,
            alice.id,
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("revoke key");
    store
        .authenticate_api_key(&key.key_hash, at(HOUR * 3))
        .await
        .expect("authenticate")
        .expect("a live key");
    store
        .set_disabled(&users[2].username, true, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("disable");
    let retired = portcullis_domain::StoredSigningKey {
        retires_at: Some(at(DAY)),
        ..signing_key(KeyState::Retired, t0())
    };
    let keys = [
        retired,
        signing_key(KeyState::Current, at(Duration::from_secs(1))),
        portcullis_domain::StoredSigningKey {
            signs_from: at(HOUR),
            ..signing_key(KeyState::Next, at(Duration::from_secs(2)))
        },
    ];
    assert!(
        store
            .install_signing_keys(&keys, &audit_record(at(HOUR)))
            .await
            .expect("install")
    );
    fresh
}

fn assert_same(left: &StoreSnapshot, right: &StoreSnapshot) {
    assert_eq!(left.users, right.users, "users, in creation order");
    assert_eq!(left.sessions, right.sessions, "sessions");
    assert_eq!(left.refresh_tokens, right.refresh_tokens, "refresh tokens");
    assert_eq!(left.api_keys, right.api_keys, "api keys");
    assert_eq!(left.signing_keys, right.signing_keys, "signing keys");
    assert_eq!(left.audit, right.audit, "the audit log and its ends");
}

#[tokio::test]
async fn an_exported_snapshot_imported_into_a_fresh_database_exports_the_same() {
    let source = populated().await;
    let exported = source.store.export_snapshot().await.expect("export");
    assert_eq!(exported.users.len(), 13);
    assert_eq!(exported.users[0].user.username.as_str(), "root");
    assert_eq!(exported.sessions.len(), 3);
    assert_eq!(exported.refresh_tokens.len(), 4);
    assert_eq!(exported.api_keys.len(), 2);
    assert_eq!(exported.signing_keys.len(), 3);
    // Each change of `populated` appended one event (the rotation and the
    // authentication none).
    assert_eq!(exported.audit.entries.len(), 22);
    let head = exported.audit.anchor.head.expect("a head");
    assert_eq!(head.position.seq, 22);

    let target = Fresh::new().await;
    target
        .store
        .import_snapshot(&exported)
        .await
        .expect("import into an empty store");
    let copied = target
        .store
        .export_snapshot()
        .await
        .expect("export the copy");
    assert_same(&exported, &copied);
    let report = verify_store(&target.store, &TestAuditKey)
        .await
        .expect("read the copy's chain")
        .expect("the copy's chain verifies");
    assert_eq!(report.head, Some(head.position), "the same head");
    assert_eq!(report.events, 22);
    // The copy appends after the copied head.
    let seq = target
        .store
        .append_audit_event(&audit_record(at(DAY)))
        .await
        .expect("append to the copy");
    assert_eq!(seq, 23);

    // The copy lists users in the source's order and keeps every credential
    // working as it did.
    let query = UserListQuery {
        limit: 100,
        after: None,
        search: None,
    };
    let listed = |page: portcullis_domain::UserPage| {
        page.users
            .into_iter()
            .map(|user| user.username.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(target.store.list_users(&query).await.expect("list")),
        listed(source.store.list_users(&query).await.expect("list"))
    );
    let key = &exported.api_keys[0];
    let authenticated = target
        .store
        .authenticate_api_key(&key.key_hash, at(HOUR * 3))
        .await
        .expect("authenticate");
    assert_eq!(
        authenticated.map(|found| found.key_id),
        (key.revoked_at.is_none()).then_some(key.id)
    );
    let used = exported
        .refresh_tokens
        .iter()
        .find(|token| token.used_at.is_some())
        .expect("a used token");
    assert!(matches!(
        target
            .store
            .rotate_refresh_token(
                &used.token_hash,
                &token_hash(),
                at(HOUR * 4),
                DAY,
                &audit_context(at(HOUR * 4)),
            )
            .await
            .expect("rotate"),
        RefreshOutcome::Reused { .. }
    ));
}

#[tokio::test]
async fn a_store_holding_anything_refuses_an_import_and_keeps_what_it_has() {
    let source = populated().await;
    let exported = source.store.export_snapshot().await.expect("export");

    // The source itself is not empty.
    assert!(matches!(
        source.store.import_snapshot(&exported).await,
        Err(StoreError::NotEmpty)
    ));
    // Nor is a store holding a single signing key and nothing else.
    let keyed = Fresh::new().await;
    let key = signing_key(KeyState::Current, t0());
    assert!(
        keyed
            .store
            .install_signing_keys(std::slice::from_ref(&key), &audit_record(t0()))
            .await
            .expect("install")
    );
    assert!(matches!(
        keyed.store.import_snapshot(&exported).await,
        Err(StoreError::NotEmpty)
    ));
    let kept = keyed.store.export_snapshot().await.expect("export");
    assert!(kept.users.is_empty());
    assert_eq!(kept.signing_keys, vec![key]);
    // After the refusals the source is unchanged.
    let again = source.store.export_snapshot().await.expect("export");
    assert_same(&exported, &again);
}

#[tokio::test]
async fn an_empty_snapshot_round_trips_as_empty() {
    let source = Fresh::new().await;
    let exported = source.store.export_snapshot().await.expect("export");
    assert!(exported.is_empty());
    let target = Fresh::new().await;
    target
        .store
        .import_snapshot(&exported)
        .await
        .expect("import");
    assert!(
        target
            .store
            .export_snapshot()
            .await
            .expect("export")
            .is_empty()
    );
}

#[tokio::test]
async fn a_store_holding_only_audit_events_refuses_an_import() {
    let source = populated().await;
    let exported = source.store.export_snapshot().await.expect("export");
    let audited = Fresh::new().await;
    audited
        .store
        .append_audit_event(&audit_record(t0()))
        .await
        .expect("append");
    assert!(matches!(
        audited.store.import_snapshot(&exported).await,
        Err(StoreError::NotEmpty)
    ));
    let kept = audited.store.export_snapshot().await.expect("export");
    assert!(kept.users.is_empty());
    assert_eq!(kept.audit.entries.len(), 1);
    assert_eq!(
        kept.audit.anchor.head.map(|head| head.position.seq),
        Some(1)
    );
}

#[tokio::test]
async fn a_pruned_chain_is_copied_with_its_checkpoint_and_verifies() {
    let source = Fresh::new().await;
    for hour in 0..5_u32 {
        source
            .store
            .append_audit_event(&audit_record(at(HOUR * hour)))
            .await
            .expect("append");
    }
    let pruned = source
        .store
        .prune_audit_events(at(HOUR * 3), &audit_context(at(DAY)))
        .await
        .expect("prune");
    assert_eq!(pruned, 3);
    let exported = source.store.export_snapshot().await.expect("export");
    assert!(exported.audit.anchor.checkpoint.is_some());
    assert!(!exported.is_empty());
    let target = Fresh::new().await;
    target
        .store
        .import_snapshot(&exported)
        .await
        .expect("import");
    let copied = target.store.export_snapshot().await.expect("export");
    assert_same(&exported, &copied);
    let report = verify_store(&target.store, &TestAuditKey)
        .await
        .expect("read")
        .expect("verifies");
    assert_eq!(report.starts_after, 3);
    assert_eq!(report.events, 3, "events 4 and 5, and the pruning's own");
}
