//! `UserStore`: accounts, uniqueness, profile and password changes,
//! disabling, deletion.

use portcullis_domain::ports::{SessionStore, UserStore};
use portcullis_domain::{
    ConflictField, EmailAddress, FullName, NewUser, PasswordHashString, ProfileChanges, Role,
    SessionId, StoreError, UserId,
};

use crate::support::{
    HOUR, TestDatabase, admin, alice, dummy_hash, new_api_key, t0, user, username,
};
use portcullis_store_conformance::fixtures::audit_record;

#[tokio::test]
async fn an_inserted_user_is_found_by_username_in_any_case() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;

    let found = db
        .store
        .find_credentials(&username("ALICE"))
        .await
        .expect("lookup");

    let credentials = found.expect("alice is found");
    assert_eq!(credentials.user, alice);
    assert_eq!(credentials.password_hash, dummy_hash());
    let missing = db
        .store
        .find_credentials(&username("bob"))
        .await
        .expect("lookup");
    assert!(missing.is_none());
}

#[tokio::test]
async fn a_row_stored_in_upper_case_is_found_and_blocks_the_lower_case_username() {
    // The domain lower-cases usernames, so only a row written some other way
    // can differ in case; the NOCASE column must still treat it as the same.
    let db = TestDatabase::new();
    let id = UserId::random();
    db.raw_connection()
        .execute(
            "INSERT INTO users (id, username, email, password_hash, role, created_at, updated_at) \
             VALUES (?1, 'ALICE', 'upper@example.com', 'hash', 'user', 0, 0)",
            [id.to_string()],
        )
        .expect("raw insert");

    let found = db
        .store
        .find_credentials(&username("alice"))
        .await
        .expect("lookup");
    assert_eq!(found.map(|credentials| credentials.user.id), Some(id));

    let result = db
        .store
        .insert_user(
            &NewUser {
                user: alice(),
                password_hash: dummy_hash(),
            },
            &audit_record(t0()),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(ConflictField::Username))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_duplicate_username_differing_only_in_case_is_a_username_conflict() {
    let db = TestDatabase::new();
    db.insert(&user("alice", "alice@example.com")).await;

    let result = db
        .store
        .insert_user(
            &NewUser {
                user: user("ALICE", "someone.else@example.com"),
                password_hash: dummy_hash(),
            },
            &audit_record(t0()),
        )
        .await;

    assert!(
        matches!(result, Err(StoreError::Conflict(ConflictField::Username))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_duplicate_email_differing_only_in_case_is_an_email_conflict() {
    let db = TestDatabase::new();
    db.insert(&user("alice", "alice@example.com")).await;

    let result = db
        .store
        .insert_user(
            &NewUser {
                user: user("bob", "Alice@EXAMPLE.com"),
                password_hash: dummy_hash(),
            },
            &audit_record(t0()),
        )
        .await;

    assert!(
        matches!(result, Err(StoreError::Conflict(ConflictField::Email))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_inserts_of_one_username_exactly_one_succeeds() {
    let db = TestDatabase::new();
    // Several rounds, so that the two inserts really do overlap in some.
    for round in 0..10 {
        let name = format!("racer{round}");
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = ["first", "second"]
            .into_iter()
            .map(|contender| {
                let store = db.store.clone();
                let barrier = barrier.clone();
                let new_user = NewUser {
                    user: user(&name, &format!("{contender}.{round}@example.com")),
                    password_hash: dummy_hash(),
                };
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.insert_user(&new_user, &audit_record(t0())).await
                })
            })
            .collect();
        let mut successes = 0;
        let mut conflicts = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => successes += 1,
                Err(StoreError::Conflict(ConflictField::Username)) => conflicts += 1,
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!((successes, conflicts), (1, 1), "round {round}");
    }
}

#[tokio::test]
async fn find_user_finds_by_id_and_returns_none_for_an_unknown_id() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;

    assert_eq!(
        db.store.find_user(alice.id).await.expect("lookup"),
        Some(alice)
    );
    assert_eq!(
        db.store.find_user(UserId::random()).await.expect("lookup"),
        None
    );
}

#[tokio::test]
async fn update_password_hash_replaces_the_hash_and_reports_an_unknown_id_as_not_found() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let new_hash = PasswordHashString::new("$argon2id$v=19$m=65536,t=3,p=1$bmV3$bmV3aGFzaA".into());

    db.store
        .update_password_hash(alice.id, &new_hash, t0())
        .await
        .expect("update");

    let credentials = db
        .store
        .find_credentials(&alice.username)
        .await
        .expect("lookup")
        .expect("alice exists");
    assert_eq!(credentials.password_hash, new_hash);
    let unknown = db
        .store
        .update_password_hash(UserId::random(), &new_hash, t0())
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

#[tokio::test]
async fn update_profile_changes_the_email_and_sets_and_clears_the_full_name() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let new_email = EmailAddress::parse("alice@example.org").expect("email");
    let name = FullName::parse("Alice Liddell").expect("name");

    let updated = db
        .store
        .update_profile(
            alice.id,
            &ProfileChanges {
                email: Some(new_email.clone()),
                full_name: Some(Some(name.clone())),
            },
            t0(),
            &audit_record(t0()),
        )
        .await
        .expect("update");
    assert_eq!(updated.email, new_email);
    assert_eq!(updated.full_name, Some(name.clone()));

    // Leaving both out changes nothing.
    let unchanged = db
        .store
        .update_profile(
            alice.id,
            &ProfileChanges::default(),
            t0(),
            &audit_record(t0()),
        )
        .await
        .expect("update");
    assert_eq!(unchanged, updated);

    let cleared = db
        .store
        .update_profile(
            alice.id,
            &ProfileChanges {
                email: None,
                full_name: Some(None),
            },
            t0(),
            &audit_record(t0()),
        )
        .await
        .expect("update");
    assert_eq!(cleared.full_name, None);
    assert_eq!(cleared.email, new_email);
    assert_eq!(
        db.store.find_user(alice.id).await.expect("lookup"),
        Some(cleared)
    );
}

#[tokio::test]
async fn update_profile_to_a_taken_email_is_an_email_conflict_and_changes_nothing() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    db.insert(&user("bob", "bob@example.com")).await;

    let result = db
        .store
        .update_profile(
            alice.id,
            &ProfileChanges {
                email: Some(EmailAddress::parse("BOB@example.com").expect("email")),
                full_name: Some(Some(FullName::parse("Alice").expect("name"))),
            },
            t0(),
            &audit_record(t0()),
        )
        .await;

    assert!(
        matches!(result, Err(StoreError::Conflict(ConflictField::Email))),
        "{result:?}"
    );
    assert_eq!(
        db.store.find_user(alice.id).await.expect("lookup"),
        Some(alice)
    );
}

#[tokio::test]
async fn update_profile_of_an_unknown_id_is_not_found() {
    let db = TestDatabase::new();

    let result = db
        .store
        .update_profile(
            UserId::random(),
            &ProfileChanges::default(),
            t0(),
            &audit_record(t0()),
        )
        .await;

    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn disabling_a_user_revokes_all_of_its_sessions_and_enabling_does_not_revive_them() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let first = db.start_session(&alice, t0()).await;
    let second = db.start_session(&alice, t0()).await;
    let bobs = db.start_session(&bob, t0()).await;
    let now = t0() + HOUR;

    let disabled = db
        .store
        .set_disabled(&alice.username, true, t0(), &audit_record(t0()))
        .await
        .expect("disable");
    assert!(disabled.disabled);

    for session in [&first, &second] {
        let active = db
            .store
            .find_active_session(session.id, alice.id, now, HOUR * 2)
            .await
            .expect("lookup");
        assert!(active.is_none());
    }
    let revoked: i64 = db
        .raw_connection()
        .query_row(
            "SELECT count(*) FROM sessions WHERE user_id = ?1 AND revoked_at IS NOT NULL",
            [alice.id.to_string()],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(revoked, 2);
    // Other users' sessions are untouched.
    let bobs_active = db
        .store
        .find_active_session(bobs.id, bob.id, now, HOUR * 2)
        .await
        .expect("lookup");
    assert!(bobs_active.is_some());

    let enabled = db
        .store
        .set_disabled(&alice.username, false, t0(), &audit_record(t0()))
        .await
        .expect("enable");
    assert!(!enabled.disabled);
    let still_revoked = db
        .store
        .find_active_session(first.id, alice.id, now, HOUR * 2)
        .await
        .expect("lookup");
    assert!(still_revoked.is_none());
}

#[tokio::test]
async fn disabling_an_unknown_user_is_not_found() {
    let db = TestDatabase::new();

    let result = db
        .store
        .set_disabled(&username("nobody"), true, t0(), &audit_record(t0()))
        .await;

    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn set_role_changes_the_role_and_reports_an_unknown_user_as_not_found() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;

    let promoted = db
        .store
        .set_role(&username("ALICE"), Role::Admin, t0(), &audit_record(t0()))
        .await
        .expect("set role");

    assert_eq!(promoted.role, Role::Admin);
    let stored = db
        .store
        .find_user(alice.id)
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(stored.role, Role::Admin);
    let unknown = db
        .store
        .set_role(&username("nobody"), Role::Admin, t0(), &audit_record(t0()))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

#[tokio::test]
async fn a_row_that_no_longer_parses_is_unavailable_without_echoing_its_content() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    db.raw_connection()
        .execute(
            "UPDATE users SET full_name = 'bell' || char(7) || 'secretvalue' WHERE id = ?1",
            [alice.id.to_string()],
        )
        .expect("corrupt the row");

    let result = db.store.find_user(alice.id).await;

    let Err(StoreError::Failed(text)) = result else {
        panic!("expected a failure, got {result:?}");
    };
    assert!(text.contains("corrupt row"), "{text}");
    assert!(!text.contains("secretvalue"), "{text}");
    let credentials = db.store.find_credentials(&alice.username).await;
    assert!(
        matches!(credentials, Err(StoreError::Failed(_))),
        "{credentials:?}"
    );
}

#[tokio::test]
async fn health_check_passes_on_a_readable_store_and_fails_without_the_users_table() {
    let db = TestDatabase::new();
    db.store.check_health().await.expect("healthy");

    db.raw_connection()
        .execute_batch("PRAGMA foreign_keys=OFF; DROP TABLE refresh_tokens; DROP TABLE sessions; DROP TABLE users;")
        .expect("drop tables");

    let result = db.store.check_health().await;
    assert!(matches!(result, Err(StoreError::Failed(_))), "{result:?}");
}

#[tokio::test]
async fn changing_the_password_replaces_the_hash_and_keeps_only_the_given_session_active() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let kept = db.start_session(&alice, t0()).await;
    let other = db.start_session(&alice, t0()).await;
    let another = db.start_session(&alice, t0()).await;
    let bobs = db.start_session(&bob, t0()).await;
    let new_hash = PasswordHashString::new("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA".into());
    let now = t0() + HOUR;

    db.store
        .change_password(alice.id, &new_hash, Some(kept.id), now, &audit_record(now))
        .await
        .expect("change password");

    let credentials = db
        .store
        .find_credentials(&alice.username)
        .await
        .expect("lookup")
        .expect("alice exists");
    assert_eq!(credentials.password_hash, new_hash);
    let updated_at: i64 = db
        .raw_connection()
        .query_row(
            "SELECT updated_at FROM users WHERE id = ?1",
            [alice.id.to_string()],
            |row| row.get(0),
        )
        .expect("updated_at");
    assert_eq!(updated_at, now.unix_timestamp());
    let active = |session_id, user_id| {
        let store = db.store.clone();
        async move {
            store
                .find_active_session(session_id, user_id, now, HOUR * 2)
                .await
                .expect("lookup")
                .is_some()
        }
    };
    assert!(active(kept.id, alice.id).await);
    assert!(!active(other.id, alice.id).await);
    assert!(!active(another.id, alice.id).await);
    assert_eq!(
        db.session_use(other.id).revoked_at,
        Some(now.unix_timestamp())
    );
    assert!(active(bobs.id, bob.id).await);
}

#[tokio::test]
async fn changing_the_password_without_a_session_to_keep_ends_every_session_of_the_user() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let first = db.start_session(&alice, t0()).await;
    let second = db.start_session(&alice, t0()).await;
    db.start_session(&bob, t0()).await;
    let now = t0() + HOUR;

    db.store
        .change_password(alice.id, &dummy_hash(), None, now, &audit_record(now))
        .await
        .expect("change password");

    for session in [&first, &second] {
        assert_eq!(
            db.session_use(session.id).revoked_at,
            Some(now.unix_timestamp())
        );
    }
    assert_eq!(db.unrevoked_credentials(&alice).0, 0);
    assert_eq!(db.unrevoked_credentials(&bob).0, 1);
}

#[tokio::test]
async fn disabling_through_set_disabled_also_revokes_the_users_api_keys_only() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let key = new_api_key(&alice, t0());
    db.create_key(&key).await;
    db.create_key(&new_api_key(&bob, t0())).await;
    db.start_session(&alice, t0()).await;

    db.store
        .set_disabled(&alice.username, true, t0(), &audit_record(t0()))
        .await
        .expect("disable");

    assert_eq!(db.unrevoked_credentials(&alice), (0, 0));
    assert!(db.key_use(key.id).revoked_at.is_some());
    assert_eq!(db.unrevoked_credentials(&bob), (0, 1));
    // Enabling again does not bring the key back.
    db.store
        .set_disabled(&alice.username, false, t0(), &audit_record(t0()))
        .await
        .expect("enable");
    assert_eq!(db.unrevoked_credentials(&alice), (0, 0));
}

#[tokio::test]
async fn the_command_line_can_disable_and_demote_the_last_admin_as_the_recovery_tool() {
    let db = TestDatabase::new();
    let root = admin("root");
    db.insert(&root).await;

    let disabled = db
        .store
        .set_disabled(&root.username, true, t0(), &audit_record(t0()))
        .await
        .expect("disable the only admin");
    let demoted = db
        .store
        .set_role(&root.username, Role::User, t0(), &audit_record(t0()))
        .await
        .expect("demote the only admin");

    assert!(disabled.disabled);
    assert_eq!(demoted.role, Role::User);
}

#[tokio::test]
async fn changing_the_password_of_an_unknown_user_is_not_found() {
    let db = TestDatabase::new();

    let result = db
        .store
        .change_password(
            UserId::random(),
            &dummy_hash(),
            Some(SessionId::random()),
            t0(),
            &audit_record(t0()),
        )
        .await;

    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn deleting_a_user_removes_its_sessions_and_refresh_tokens_and_no_one_elses() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = user("bob", "bob@example.com");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let session = db.start_session(&alice, t0()).await;
    db.rotate(&session.refresh_token_hash, t0() + HOUR).await;
    db.start_session(&alice, t0()).await;
    let bobs = db.start_session(&bob, t0()).await;
    assert_eq!((db.count("sessions"), db.count("refresh_tokens")), (3, 4));

    db.store
        .delete_user(alice.id, &audit_record(t0()))
        .await
        .expect("delete");

    assert_eq!(db.store.find_user(alice.id).await.expect("lookup"), None);
    assert_eq!((db.count("sessions"), db.count("refresh_tokens")), (1, 1));
    assert_eq!(db.token_used_at(&bobs.refresh_token_hash), Some(None));
    assert_eq!(db.store.find_user(bob.id).await.expect("lookup"), Some(bob));
}

#[tokio::test]
async fn deleting_an_unknown_user_is_not_found() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;

    let unknown = db
        .store
        .delete_user(UserId::random(), &audit_record(t0()))
        .await;
    db.store
        .delete_user(alice.id, &audit_record(t0()))
        .await
        .expect("delete");
    let twice = db.store.delete_user(alice.id, &audit_record(t0())).await;

    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    assert!(matches!(twice, Err(StoreError::NotFound)), "{twice:?}");
}
