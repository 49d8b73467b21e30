//! Accounts: insertion, lookups, conflicts and the writes of one account.

use std::sync::Arc;

use portcullis_domain::ports::Store;
use portcullis_domain::{
    ConflictField, FullName, NewApiKey, NewSession, NewUser, ProfileChanges, Role, Scope, ScopeSet,
    StoreError, UserId,
};

use super::{authenticates, create_key, insert, is_active, start};
use crate::fixtures::{
    DAY, HOUR, NO_CAP, admin, at, audit_record, email_address, hash, name, named, new_api_key,
    new_session, new_user, profile, profile_and_admin, t0, user,
};

/// An inserted user is found by its username and by its id, exactly as
/// given, with its password hash; unknown ones are not found.
pub async fn an_inserted_user_is_found_by_username_and_by_id<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    let credentials = store
        .find_credentials(&alice.username)
        .await
        .expect("find credentials")
        .expect("alice is found by username");
    assert_eq!(credentials.user, alice);
    assert_eq!(credentials.password_hash, hash("first"));
    assert_eq!(
        store.find_user(alice.id).await.expect("find user"),
        Some(alice)
    );
    assert!(
        store
            .find_credentials(&name("bob"))
            .await
            .expect("find")
            .is_none()
    );
    assert!(
        store
            .find_user(UserId::random())
            .await
            .expect("find")
            .is_none()
    );
}

/// A taken username is a username conflict; an email whose canonical key is
/// taken (differing in case only) is an email conflict; nothing is stored.
pub async fn a_taken_username_or_email_is_a_conflict_and_stores_nothing<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = user("alice", "alice@example.com");
    insert(&*store, &alice).await;
    let same_name = user("alice", "other@example.com");
    let result = store
        .insert_user(&new_user(&same_name), &audit_record(t0()))
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(ConflictField::Username))),
        "same username: {result:?}"
    );
    let same_email = user("bob", "ALICE@Example.COM");
    let result = store
        .insert_user(&new_user(&same_email), &audit_record(t0()))
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(ConflictField::Email))),
        "same email in another case: {result:?}"
    );
    assert!(store.find_user(same_name.id).await.expect("find").is_none());
    assert!(
        store
            .find_credentials(&name("bob"))
            .await
            .expect("find")
            .is_none()
    );
}

/// Of concurrent inserts of one username, exactly one succeeds and the
/// others are username conflicts.
pub async fn of_concurrent_inserts_of_one_username_exactly_one_succeeds<S: Store + 'static>(
    store: Arc<S>,
) {
    let attempts: Vec<NewUser> = (0..8)
        .map(|n| new_user(&user("carol", &format!("carol{n}@example.com"))))
        .collect();
    let tasks: Vec<_> = attempts
        .into_iter()
        .map(|attempt| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_user(&attempt, &audit_record(t0())).await })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        match task.await.expect("insert task") {
            Ok(()) => succeeded += 1,
            Err(StoreError::Conflict(ConflictField::Username)) => {}
            Err(other) => panic!("a losing insert must be a username conflict: {other:?}"),
        }
    }
    assert_eq!(succeeded, 1, "exactly one concurrent insert succeeds");
}

/// A new password hash replaces the old one; an unknown id is not found.
pub async fn a_password_hash_update_replaces_the_hash<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    insert(&*store, &alice).await;
    store
        .update_password_hash(alice.id, &hash("second"), at(HOUR))
        .await
        .expect("update hash");
    let stored = store
        .find_credentials(&alice.username)
        .await
        .expect("find")
        .expect("alice");
    assert_eq!(stored.password_hash, hash("second"));
    let unknown = store
        .update_password_hash(UserId::random(), &hash("third"), at(HOUR))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// A profile update changes the email and sets or clears the name; a taken
/// email is a conflict that changes nothing; an unknown id is not found.
pub async fn a_profile_update_changes_only_what_it_names<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let full_name = FullName::parse("Alice Liddell").expect("valid name");
    let changed = store
        .update_profile(
            alice.id,
            &ProfileChanges {
                email: Some(email_address("alice@wonderland.example")),
                full_name: Some(Some(full_name.clone())),
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("update profile");
    assert_eq!(changed.email, email_address("alice@wonderland.example"));
    assert_eq!(changed.full_name, Some(full_name.clone()));
    assert_eq!(changed.username, alice.username);
    assert_eq!(
        store.find_user(alice.id).await.expect("find"),
        Some(changed.clone())
    );

    let taken = store
        .update_profile(
            alice.id,
            &ProfileChanges {
                email: Some(email_address("BOB@example.com")),
                full_name: Some(None),
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
        Some(changed.clone()),
        "a refused change changes nothing, not even the name"
    );

    let cleared = store
        .update_profile(
            alice.id,
            &ProfileChanges {
                email: None,
                full_name: Some(None),
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("clear the name");
    assert_eq!(cleared.full_name, None);
    assert_eq!(cleared.email, changed.email, "no email given keeps it");

    let unknown = store
        .update_profile(
            UserId::random(),
            &ProfileChanges::default(),
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// Disabling ends every session and key of the user (and no one else's);
/// enabling again revives none of them.
pub async fn disabling_ends_every_credential_and_enabling_revives_none<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let session = start(&*store, &alice, t0()).await;
    let key = create_key(&*store, &alice, t0()).await;
    let bobs_session = start(&*store, &bob, t0()).await;
    let bobs_key = create_key(&*store, &bob, t0()).await;

    let disabled = store
        .set_disabled(&alice.username, true, at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("disable");
    assert!(disabled.disabled);
    assert!(!is_active(&*store, &session, at(HOUR)).await);
    assert!(!authenticates(&*store, &key, at(HOUR)).await);

    let enabled = store
        .set_disabled(
            &alice.username,
            false,
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("enable");
    assert!(!enabled.disabled);
    assert!(
        !is_active(&*store, &session, at(HOUR * 2)).await,
        "enabling revives no session"
    );
    assert!(
        !authenticates(&*store, &key, at(HOUR * 2)).await,
        "enabling revives no key"
    );
    assert!(is_active(&*store, &bobs_session, at(HOUR * 2)).await);
    assert!(authenticates(&*store, &bobs_key, at(HOUR * 2)).await);

    let unknown = store
        .set_disabled(&name("nobody"), true, at(HOUR), &audit_record(at(HOUR)))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// A role change narrows every stored grant to the new role's scopes and
/// ends grants left empty; promoting again revives nothing.
pub async fn a_demotion_narrows_every_grant_for_good<S: Store + 'static>(store: Arc<S>) {
    let root = admin("root");
    let dana = admin("dana");
    insert(&*store, &root).await;
    insert(&*store, &dana).await;
    let wide = NewSession {
        scopes: profile_and_admin(),
        ..new_session(&dana, t0())
    };
    let admin_only = NewSession {
        scopes: ScopeSet::EMPTY.with(Scope::Admin),
        ..new_session(&dana, t0())
    };
    let admin_key = NewApiKey {
        scopes: ScopeSet::EMPTY.with(Scope::Admin),
        ..new_api_key(&dana, t0())
    };
    let wide_key = NewApiKey {
        scopes: profile_and_admin(),
        ..new_api_key(&dana, t0())
    };
    for session in [&wide, &admin_only] {
        store
            .create_session(session, NO_CAP, DAY, &audit_record(t0()))
            .await
            .expect("create session");
    }
    for key in [&admin_key, &wide_key] {
        store
            .create_api_key(key, NO_CAP, &audit_record(t0()))
            .await
            .expect("create key");
    }

    let demoted = store
        .set_role(
            &dana.username,
            Role::User,
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("demote");
    assert_eq!(demoted.role, Role::User);
    store
        .set_role(
            &dana.username,
            Role::Admin,
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("promote again");

    let now = at(HOUR * 2);
    let found = store
        .find_active_session(wide.id, dana.id, now, DAY)
        .await
        .expect("find")
        .expect("a narrowed session stays active");
    assert_eq!(found.scopes, profile(), "the admin scope is gone for good");
    assert!(
        store
            .find_active_session(admin_only.id, dana.id, now, DAY)
            .await
            .expect("find")
            .is_none(),
        "a session left with no scope has ended"
    );
    let key = store
        .authenticate_api_key(&wide_key.key_hash, now)
        .await
        .expect("authenticate")
        .expect("a narrowed key still works");
    assert_eq!(key.scopes, profile());
    assert!(
        store
            .authenticate_api_key(&admin_key.key_hash, now)
            .await
            .expect("authenticate")
            .is_none(),
        "a key left with no scope has ended"
    );
    let unknown = store
        .set_role(&name("nobody"), Role::User, now, &audit_record(now))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// A password change replaces the hash and ends every session of the user
/// but the kept one; without one to keep, all of them.
pub async fn a_password_change_ends_every_other_session<S: Store + 'static>(store: Arc<S>) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let kept = start(&*store, &alice, t0()).await;
    let other = start(&*store, &alice, t0()).await;
    let bobs = start(&*store, &bob, t0()).await;
    store
        .change_password(
            alice.id,
            &hash("second"),
            Some(kept.id),
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("change password");
    assert_eq!(
        store
            .find_credentials(&alice.username)
            .await
            .expect("find")
            .expect("alice")
            .password_hash,
        hash("second")
    );
    assert!(
        is_active(&*store, &kept, at(HOUR)).await,
        "the kept session lives"
    );
    assert!(
        !is_active(&*store, &other, at(HOUR)).await,
        "the other one ended"
    );
    assert!(
        is_active(&*store, &bobs, at(HOUR)).await,
        "no one else's ended"
    );

    store
        .change_password(
            alice.id,
            &hash("third"),
            None,
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("change password again");
    assert!(!is_active(&*store, &kept, at(HOUR * 2)).await);

    let unknown = store
        .change_password(
            UserId::random(),
            &hash("x"),
            None,
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// Deleting a user removes it with its sessions, refresh tokens and keys,
/// and nothing of anyone else; an unknown id is not found.
pub async fn deleting_a_user_removes_everything_of_it_and_nothing_else<S: Store + 'static>(
    store: Arc<S>,
) {
    let alice = named("alice");
    let bob = named("bob");
    insert(&*store, &alice).await;
    insert(&*store, &bob).await;
    let session = start(&*store, &alice, t0()).await;
    let key = create_key(&*store, &alice, t0()).await;
    let bobs_session = start(&*store, &bob, t0()).await;
    let bobs_key = create_key(&*store, &bob, t0()).await;

    store
        .delete_user(alice.id, &audit_record(t0()))
        .await
        .expect("delete");
    assert!(store.find_user(alice.id).await.expect("find").is_none());
    assert!(
        store
            .find_credentials(&alice.username)
            .await
            .expect("find")
            .is_none()
    );
    assert!(!is_active(&*store, &session, at(HOUR)).await);
    assert!(
        store
            .find_refresh_token_owner(&session.refresh_token_hash)
            .await
            .expect("find owner")
            .is_none(),
        "the refresh tokens are gone"
    );
    assert!(!authenticates(&*store, &key, at(HOUR)).await);
    assert!(is_active(&*store, &bobs_session, at(HOUR)).await);
    assert!(authenticates(&*store, &bobs_key, at(HOUR)).await);
    // The name is free again.
    insert(&*store, &named("alice")).await;

    let unknown = store
        .delete_user(UserId::random(), &audit_record(t0()))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// The store answers its health and write probes when idle.
pub async fn an_idle_store_is_healthy_and_writable<S: Store + 'static>(store: Arc<S>) {
    store.check_health().await.expect("healthy");
    store.ensure_writable().await.expect("writable");
}
