//! An admin's changes to accounts and the last-admin rule.

use std::sync::Arc;

use portcullis_domain::ports::Store;
use portcullis_domain::{AdminUserChanges, ConflictField, FullName, Role, StoreError, UserId};

use super::{authenticates, create_key, insert, is_active, start};
use crate::fixtures::{HOUR, admin, at, audit_record, email_address, named, t0};

fn demote() -> AdminUserChanges {
    AdminUserChanges {
        role: Some(Role::User),
        ..AdminUserChanges::default()
    }
}

fn disable() -> AdminUserChanges {
    AdminUserChanges {
        disabled: Some(true),
        ..AdminUserChanges::default()
    }
}

/// An admin change sets role, email and name together and returns the
/// account as stored; a taken email is a conflict that changes nothing; an
/// unknown id is not found.
pub async fn an_admin_change_applies_every_field_or_none<S: Store + 'static>(store: Arc<S>) {
    let root = admin("root");
    let alice = named("alice");
    insert(&*store, &root).await;
    insert(&*store, &alice).await;
    let full_name = FullName::parse("Alice").expect("valid name");
    let changed = store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                role: Some(Role::Admin),
                email: Some(email_address("alice@corp.example")),
                full_name: Some(Some(full_name.clone())),
                disabled: None,
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("admin change");
    assert_eq!(changed.role, Role::Admin);
    assert_eq!(changed.email, email_address("alice@corp.example"));
    assert_eq!(changed.full_name, Some(full_name));
    assert!(!changed.disabled);
    assert_eq!(
        store.find_user(alice.id).await.expect("find"),
        Some(changed.clone())
    );

    let taken = store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                role: Some(Role::User),
                email: Some(email_address("Root@Example.com")),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(ConflictField::Email))),
        "{taken:?}"
    );
    assert_eq!(
        store.find_user(alice.id).await.expect("find"),
        Some(changed),
        "a refused change changes nothing, not even the role"
    );

    let unknown = store
        .admin_update_user(
            UserId::random(),
            &demote(),
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// Disabling through an admin change ends every session and key of the
/// user for good (enabling again revives neither); a change that does not
/// disable leaves them alone.
pub async fn an_admin_disable_ends_every_credential_and_other_changes_do_not<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let session = start(&*store, &alice, t0()).await;
    let key = create_key(&*store, &alice, t0()).await;
    store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                full_name: Some(None),
                disabled: Some(false),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("harmless change");
    assert!(is_active(&*store, &session, at(HOUR)).await);
    assert!(authenticates(&*store, &key, at(HOUR)).await);

    let disabled = store
        .admin_update_user(alice.id, &disable(), at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("disable");
    assert!(disabled.disabled);
    assert!(!is_active(&*store, &session, at(HOUR)).await);
    assert!(!authenticates(&*store, &key, at(HOUR)).await);

    // Ended, not hidden: enabling the account again revives neither.
    store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                disabled: Some(false),
                ..AdminUserChanges::default()
            },
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("enable");
    assert!(
        !is_active(&*store, &session, at(HOUR * 2)).await,
        "enabling revives no session"
    );
    assert!(
        !authenticates(&*store, &key, at(HOUR * 2)).await,
        "enabling revives no key"
    );
}

/// The only enabled admin can be neither demoted, disabled nor deleted; a
/// disabled admin does not count as another; with two, one can go.
pub async fn the_last_enabled_admin_stays<S: Store + 'static>(store: Arc<S>) {
    let root = admin("root");
    let dormant = admin("dormant");
    insert(&*store, &root).await;
    insert(&*store, &dormant).await;
    store
        .admin_update_user(dormant.id, &disable(), at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("one of two enabled admins can be disabled");
    for (what, result) in [
        (
            "demoted",
            store
                .admin_update_user(root.id, &demote(), at(HOUR), &audit_record(at(HOUR)))
                .await
                .map(|_| ()),
        ),
        (
            "disabled",
            store
                .admin_update_user(root.id, &disable(), at(HOUR), &audit_record(at(HOUR)))
                .await
                .map(|_| ()),
        ),
        (
            "deleted",
            store.delete_user(root.id, &audit_record(t0())).await,
        ),
    ] {
        assert!(
            matches!(result, Err(StoreError::LastAdmin)),
            "the last enabled admin {what}: {result:?}"
        );
    }
    let kept = store.find_user(root.id).await.expect("find").expect("root");
    assert_eq!((kept.role, kept.disabled), (Role::Admin, false));

    let second = admin("second");
    insert(&*store, &second).await;
    store
        .admin_update_user(root.id, &demote(), at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("with another enabled admin, one can be demoted");
    let last = store
        .admin_update_user(second.id, &demote(), at(HOUR), &audit_record(at(HOUR)))
        .await;
    assert!(matches!(last, Err(StoreError::LastAdmin)), "{last:?}");
    store
        .delete_user(root.id, &audit_record(t0()))
        .await
        .expect("a user who is no longer an admin can be deleted");
}

/// Two admins demoting each other at the same moment leave exactly one
/// enabled admin, whichever change wins.
pub async fn two_admins_demoting_each_other_at_once_leave_one<S: Store + 'static>(store: Arc<S>) {
    for round in 0..10 {
        let first = admin(&format!("first{round}"));
        let second = admin(&format!("second{round}"));
        insert(&*store, &first).await;
        insert(&*store, &second).await;
        let tasks: Vec<_> = [first.id, second.id]
            .into_iter()
            .map(|id| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .admin_update_user(id, &demote(), at(HOUR), &audit_record(at(HOUR)))
                        .await
                })
            })
            .collect();
        let mut demoted = 0;
        for task in tasks {
            match task.await.expect("demotion task") {
                Ok(_) => demoted += 1,
                Err(StoreError::LastAdmin) => {}
                Err(other) => panic!("a losing demotion is LastAdmin: {other:?}"),
            }
        }
        assert_eq!(demoted, 1, "round {round}: exactly one demotion wins");
        let mut admins = 0;
        for id in [first.id, second.id] {
            let user = store.find_user(id).await.expect("find").expect("exists");
            admins += usize::from(user.role == Role::Admin);
        }
        assert_eq!(admins, 1, "round {round}: one admin remains");
        // The recovery path (no guard) demotes the survivor, so that the
        // next round's pair are the only enabled admins.
        for survivor in [&first, &second] {
            store
                .set_role(
                    &survivor.username,
                    Role::User,
                    at(HOUR),
                    &audit_record(at(HOUR)),
                )
                .await
                .expect("the recovery path demotes without a guard");
        }
    }
}
