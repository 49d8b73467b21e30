//! The admin side of `UserStore`: listing users page by page, changing
//! accounts, and the guard that keeps at least one enabled admin.

use std::sync::Arc;

use portcullis_domain::ports::{SessionStore, UserStore};
use portcullis_domain::{
    AdminUserChanges, ConflictField, EmailAddress, FullName, PageCursor, Role, Scope, ScopeSet,
    StoreError, User, UserId, UserListQuery, UserPage, UserSearch,
};
use tokio::sync::Barrier;

use crate::support::{
    DAY, HOUR, TestDatabase, admin, alice, at, new_api_key, new_session, t0, user,
};
use portcullis_store_conformance::fixtures::audit_record;

/// The next page after `after` of at most `limit` users matching `search`.
async fn page(
    db: &TestDatabase,
    after: Option<PageCursor>,
    limit: u32,
    search: Option<&str>,
) -> UserPage {
    db.store
        .list_users(&UserListQuery {
            after,
            limit,
            search: search.map(UserSearch::new),
        })
        .await
        .expect("list users")
}

/// Every user matching `search`, page by page; also returns the page sizes.
async fn every_page(
    db: &TestDatabase,
    limit: u32,
    search: Option<&str>,
) -> (Vec<User>, Vec<usize>) {
    let mut users = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = page(db, after, limit, search).await;
        sizes.push(page.users.len());
        users.extend(page.users);
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => return (users, sizes),
        }
    }
}

/// `name` with the email `name@example.com`.
fn named(name: &str) -> User {
    user(name, &format!("{name}@example.com"))
}

fn usernames(users: &[User]) -> Vec<&str> {
    users.iter().map(|user| user.username.as_str()).collect()
}

#[tokio::test]
async fn seven_users_in_pages_of_three_come_as_three_three_and_one_in_creation_order() {
    let db = TestDatabase::new();
    // Inserted out of alphabetical order: the listing follows creation.
    let names = [
        "grace", "alan", "edsger", "barbara", "ken", "donald", "frances",
    ];
    for name in names {
        db.insert(&named(name)).await;
    }

    let first = page(&db, None, 3, None).await;
    let second = page(&db, first.next_cursor.clone(), 3, None).await;
    let third = page(&db, second.next_cursor.clone(), 3, None).await;

    assert_eq!(usernames(&first.users), ["grace", "alan", "edsger"]);
    assert_eq!(usernames(&second.users), ["barbara", "ken", "donald"]);
    assert_eq!(usernames(&third.users), ["frances"]);
    assert!(first.next_cursor.is_some());
    assert!(second.next_cursor.is_some());
    assert_ne!(first.next_cursor, second.next_cursor);
    assert_eq!(third.next_cursor, None);
}

#[tokio::test]
async fn a_last_page_that_is_exactly_full_has_no_next_cursor() {
    let db = TestDatabase::new();
    for name in ["alan", "barbara", "grace"] {
        db.insert(&named(name)).await;
    }

    let only = page(&db, None, 3, None).await;
    let (all, sizes) = every_page(&db, 1, None).await;

    assert_eq!(only.users.len(), 3);
    assert_eq!(only.next_cursor, None);
    assert_eq!(usernames(&all), ["alan", "barbara", "grace"]);
    assert_eq!(sizes, [1, 1, 1]);
    let empty = TestDatabase::new();
    assert_eq!(
        page(&empty, None, 10, None).await,
        UserPage {
            users: Vec::new(),
            next_cursor: None
        }
    );
}

#[tokio::test]
async fn a_zero_limit_is_treated_as_one_so_a_cursor_always_moves_forward() {
    let db = TestDatabase::new();
    for name in ["alan", "barbara"] {
        db.insert(&named(name)).await;
    }

    let first = page(&db, None, 0, None).await;
    let second = page(&db, first.next_cursor, 0, None).await;

    assert_eq!(usernames(&first.users), ["alan"]);
    assert_eq!(usernames(&second.users), ["barbara"]);
    assert_eq!(second.next_cursor, None);
}

#[tokio::test]
async fn users_added_between_pages_are_neither_repeated_nor_skipped_and_appear_later() {
    let db = TestDatabase::new();
    for name in ["user1", "user2", "user3", "user4", "user5"] {
        db.insert(&named(name)).await;
    }

    let first = page(&db, None, 2, None).await;
    db.insert(&named("late1")).await;
    let second = page(&db, first.next_cursor, 2, None).await;
    db.insert(&named("late2")).await;
    let mut rest = Vec::new();
    let mut after = second.next_cursor;
    while let Some(cursor) = after {
        let next = page(&db, Some(cursor), 2, None).await;
        rest.extend(next.users);
        after = next.next_cursor;
    }

    let mut seen = first.users.clone();
    seen.extend(second.users);
    seen.extend(rest);
    assert_eq!(
        usernames(&seen),
        [
            "user1", "user2", "user3", "user4", "user5", "late1", "late2"
        ]
    );
}

#[tokio::test]
async fn a_deleted_user_at_the_cursor_does_not_disturb_the_next_page() {
    let db = TestDatabase::new();
    let users: Vec<User> = ["user1", "user2", "user3", "user4"]
        .into_iter()
        .map(named)
        .collect();
    for user in &users {
        db.insert(user).await;
    }

    let first = page(&db, None, 2, None).await;
    db.store
        .delete_user(users[1].id, &audit_record(t0()))
        .await
        .expect("delete");
    let second = page(&db, first.next_cursor, 2, None).await;

    assert_eq!(usernames(&second.users), ["user3", "user4"]);
    assert_eq!(second.next_cursor, None);
}

#[tokio::test]
async fn search_matches_a_substring_of_username_or_email_in_any_case() {
    let db = TestDatabase::new();
    db.insert(&user("alice", "alice@example.com")).await;
    db.insert(&user("bob", "Bob.Builder@Example.ORG")).await;
    db.insert(&user("carol", "carol@example.com")).await;
    db.insert(&user("malcolm", "mal@example.net")).await;

    let by_username = page(&db, None, 10, Some("LIC")).await;
    let by_email = page(&db, None, 10, Some("example.org")).await;
    let by_email_upper = page(&db, None, 10, Some("BUILDER@")).await;
    let by_either = page(&db, None, 10, Some("al")).await;
    let nothing = page(&db, None, 10, Some("zed")).await;

    assert_eq!(usernames(&by_username.users), ["alice"]);
    assert_eq!(usernames(&by_email.users), ["bob"]);
    assert_eq!(usernames(&by_email_upper.users), ["bob"]);
    // "al" is in alice (both), malcolm (username) and mal@ (email), once each.
    assert_eq!(usernames(&by_either.users), ["alice", "malcolm"]);
    assert!(nothing.users.is_empty());
    assert_eq!(nothing.next_cursor, None);
}

#[tokio::test]
async fn search_treats_percent_underscore_and_backslash_literally() {
    let db = TestDatabase::new();
    db.insert(&user("plain", "plain@example.com")).await;
    db.insert(&user("snake_case", "snake@example.com")).await;
    db.insert(&user("percent", "100%sure@example.com")).await;
    db.insert(&user("dotted.name", "dotted@example.com")).await;

    let percent = page(&db, None, 10, Some("%")).await;
    let underscore = page(&db, None, 10, Some("_")).await;
    let like_pattern = page(&db, None, 10, Some("p%n")).await;
    let backslash = page(&db, None, 10, Some("\\")).await;

    assert_eq!(usernames(&percent.users), ["percent"]);
    assert_eq!(usernames(&underscore.users), ["snake_case"]);
    assert!(like_pattern.users.is_empty(), "{like_pattern:?}");
    assert!(backslash.users.is_empty(), "{backslash:?}");
}

#[tokio::test]
async fn search_results_page_with_cursors_like_the_full_listing() {
    let db = TestDatabase::new();
    for index in 0..7 {
        db.insert(&named(&format!("team{index}"))).await;
        db.insert(&named(&format!("other{index}"))).await;
    }

    let (found, sizes) = every_page(&db, 3, Some("TEAM")).await;

    assert_eq!(
        usernames(&found),
        [
            "team0", "team1", "team2", "team3", "team4", "team5", "team6"
        ]
    );
    assert_eq!(sizes, [3, 3, 1]);
}

#[tokio::test]
async fn an_admin_can_change_role_email_and_full_name_and_the_change_is_stamped() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    let email = EmailAddress::parse("alice@example.org").expect("email");
    let name = FullName::parse("Alice Liddell").expect("name");
    let now = at(HOUR);

    let updated = db
        .store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                role: Some(Role::Admin),
                email: Some(email.clone()),
                full_name: Some(Some(name.clone())),
                disabled: None,
            },
            now,
            &audit_record(now),
        )
        .await
        .expect("update");

    let expected = User {
        role: Role::Admin,
        email,
        full_name: Some(name),
        ..alice.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(
        db.store.find_user(alice.id).await.expect("lookup"),
        Some(expected.clone())
    );
    assert_eq!(updated_at(&db, &alice), now.unix_timestamp());

    let cleared = db
        .store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                full_name: Some(None),
                ..AdminUserChanges::default()
            },
            at(HOUR * 2),
            &audit_record(at(HOUR * 2)),
        )
        .await
        .expect("clear the name");
    assert_eq!(
        cleared,
        User {
            full_name: None,
            ..expected
        }
    );
}

#[tokio::test]
async fn an_admin_change_to_a_taken_email_is_an_email_conflict_and_changes_nothing() {
    let db = TestDatabase::new();
    let alice = alice();
    db.insert(&alice).await;
    db.insert(&named("bob")).await;

    let result = db
        .store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                email: Some(EmailAddress::parse("BOB@example.com").expect("email")),
                role: Some(Role::Admin),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await;

    assert!(
        matches!(result, Err(StoreError::Conflict(ConflictField::Email))),
        "{result:?}"
    );
    assert_eq!(
        db.store.find_user(alice.id).await.expect("lookup"),
        Some(alice.clone())
    );
    assert_eq!(updated_at(&db, &alice), t0().unix_timestamp());
}

#[tokio::test]
async fn an_admin_change_to_an_unknown_user_is_not_found() {
    let db = TestDatabase::new();

    let result = db
        .store
        .admin_update_user(
            UserId::random(),
            &AdminUserChanges {
                disabled: Some(true),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await;

    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn disabling_through_an_admin_change_revokes_every_session_and_api_key_of_the_user() {
    let db = TestDatabase::new();
    let alice = alice();
    let bob = named("bob");
    db.insert(&alice).await;
    db.insert(&bob).await;
    let session = db.start_session(&alice, t0()).await;
    db.start_session(&alice, t0()).await;
    let key = new_api_key(&alice, t0());
    db.create_key(&key).await;
    db.create_key(&new_api_key(&alice, t0())).await;
    db.start_session(&bob, t0()).await;
    db.create_key(&new_api_key(&bob, t0())).await;
    let now = at(HOUR);

    let disabled = db
        .store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                disabled: Some(true),
                ..AdminUserChanges::default()
            },
            now,
            &audit_record(now),
        )
        .await
        .expect("disable");

    assert!(disabled.disabled);
    assert_eq!(db.unrevoked_credentials(&alice), (0, 0));
    assert_eq!(
        db.session_use(session.id).revoked_at,
        Some(now.unix_timestamp())
    );
    assert_eq!(db.key_use(key.id).revoked_at, Some(now.unix_timestamp()));
    assert_eq!(db.unrevoked_credentials(&bob), (1, 1));

    // Enabling again revives nothing.
    let enabled = db
        .store
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
    assert!(!enabled.disabled);
    assert_eq!(db.unrevoked_credentials(&alice), (0, 0));
}

#[tokio::test]
async fn a_change_that_does_not_disable_leaves_sessions_and_keys_alone() {
    let db = TestDatabase::new();
    let root = admin("root");
    let alice = alice();
    db.insert(&root).await;
    db.insert(&alice).await;
    db.start_session(&alice, t0()).await;
    db.create_key(&new_api_key(&alice, t0())).await;

    db.store
        .admin_update_user(
            alice.id,
            &AdminUserChanges {
                role: Some(Role::Admin),
                disabled: Some(false),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("promote");

    assert_eq!(db.unrevoked_credentials(&alice), (1, 1));
}

#[tokio::test]
async fn the_only_enabled_admin_can_be_neither_demoted_nor_disabled() {
    let db = TestDatabase::new();
    let root = admin("root");
    db.insert(&root).await;
    db.insert(&alice()).await;
    db.start_session(&root, t0()).await;
    db.create_key(&new_api_key(&root, t0())).await;

    let demote = db
        .store
        .admin_update_user(
            root.id,
            &AdminUserChanges {
                role: Some(Role::User),
                full_name: Some(Some(FullName::parse("Root").expect("name"))),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await;
    let disable = db
        .store
        .admin_update_user(
            root.id,
            &AdminUserChanges {
                disabled: Some(true),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await;

    assert!(matches!(demote, Err(StoreError::LastAdmin)), "{demote:?}");
    assert!(matches!(disable, Err(StoreError::LastAdmin)), "{disable:?}");
    assert_eq!(
        db.store.find_user(root.id).await.expect("lookup"),
        Some(root.clone())
    );
    assert_eq!(updated_at(&db, &root), t0().unix_timestamp());
    assert_eq!(db.unrevoked_credentials(&root), (1, 1));

    // What keeps it an enabled admin is allowed.
    let renamed = db
        .store
        .admin_update_user(
            root.id,
            &AdminUserChanges {
                role: Some(Role::Admin),
                disabled: Some(false),
                full_name: Some(Some(FullName::parse("Root").expect("name"))),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("rename");
    assert_eq!(renamed.role, Role::Admin);
}

#[tokio::test]
async fn of_two_enabled_admins_one_can_be_demoted_but_then_not_the_other() {
    let db = TestDatabase::new();
    let first = admin("first");
    let second = admin("second");
    db.insert(&first).await;
    db.insert(&second).await;

    let demoted = db
        .store
        .admin_update_user(first.id, &demote(), at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("demote one of two");
    let last = db
        .store
        .admin_update_user(second.id, &demote(), at(HOUR), &audit_record(at(HOUR)))
        .await;

    assert_eq!(demoted.role, Role::User);
    assert!(matches!(last, Err(StoreError::LastAdmin)), "{last:?}");
    let second_now = db
        .store
        .find_user(second.id)
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(second_now.role, Role::Admin);
}

#[tokio::test]
async fn a_disabled_admin_does_not_count_as_the_other_admin() {
    let db = TestDatabase::new();
    let enabled = admin("enabled");
    let disabled = User {
        disabled: true,
        ..admin("disabled")
    };
    db.insert(&enabled).await;
    db.insert(&disabled).await;

    let demote_enabled = db
        .store
        .admin_update_user(enabled.id, &demote(), at(HOUR), &audit_record(at(HOUR)))
        .await;
    let delete_enabled = db.store.delete_user(enabled.id, &audit_record(t0())).await;

    assert!(
        matches!(demote_enabled, Err(StoreError::LastAdmin)),
        "{demote_enabled:?}"
    );
    assert!(
        matches!(delete_enabled, Err(StoreError::LastAdmin)),
        "{delete_enabled:?}"
    );
    // The disabled admin is not guarded: it is not what keeps the system
    // administrable.
    let demoted = db
        .store
        .admin_update_user(disabled.id, &demote(), at(HOUR), &audit_record(at(HOUR)))
        .await
        .expect("demote the disabled admin");
    assert_eq!(demoted.role, Role::User);
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_deleted_but_one_of_two_can() {
    let db = TestDatabase::new();
    let first = admin("first");
    let second = admin("second");
    db.insert(&first).await;
    db.insert(&second).await;
    db.start_session(&second, t0()).await;

    db.store
        .delete_user(first.id, &audit_record(t0()))
        .await
        .expect("delete one of two");
    let last = db.store.delete_user(second.id, &audit_record(t0())).await;

    assert!(matches!(last, Err(StoreError::LastAdmin)), "{last:?}");
    assert_eq!(db.store.find_user(first.id).await.expect("lookup"), None);
    assert_eq!(
        db.store.find_user(second.id).await.expect("lookup"),
        Some(second.clone())
    );
    assert_eq!(db.count("sessions"), 1, "nothing of the last admin deleted");
    // A plain user can still be deleted while only one admin is left.
    let alice = alice();
    db.insert(&alice).await;
    db.store
        .delete_user(alice.id, &audit_record(t0()))
        .await
        .expect("delete a user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_at_once_leave_exactly_one_admin() {
    let db = TestDatabase::new();
    // Several rounds, so that the two changes really do overlap in some.
    for round in 0..10 {
        let pair = [
            admin(&format!("left{round}")),
            admin(&format!("right{round}")),
        ];
        for admin in &pair {
            db.insert(admin).await;
        }
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = pair
            .iter()
            .map(|admin| {
                let store = db.store.clone();
                let barrier = barrier.clone();
                let id = admin.id;
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .admin_update_user(id, &demote(), at(HOUR), &audit_record(at(HOUR)))
                        .await
                })
            })
            .collect();
        let mut demoted = 0;
        let mut refused = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => demoted += 1,
                Err(StoreError::LastAdmin) => refused += 1,
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!((demoted, refused), (1, 1), "round {round}");
        // Leave no admin of this round enabled, so the next round starts
        // with none: the survivor is disabled through the unguarded CLI path.
        for admin in &pair {
            db.store
                .set_disabled(&admin.username, true, t0(), &audit_record(t0()))
                .await
                .expect("retire");
        }
    }
}

fn demote() -> AdminUserChanges {
    AdminUserChanges {
        role: Some(Role::User),
        ..AdminUserChanges::default()
    }
}

/// The stored `updated_at` of `user`.
fn updated_at(db: &TestDatabase, user: &User) -> i64 {
    db.raw_connection()
        .query_row(
            "SELECT updated_at FROM users WHERE id = ?1",
            [user.id.to_string()],
            |row| row.get(0),
        )
        .expect("updated_at")
}

/// The scopes stored for each of `user`'s unrevoked sessions and keys.
fn stored_grants(db: &TestDatabase, user: &User) -> (Vec<String>, Vec<String>) {
    let connection = db.raw_connection();
    let read = |table: &str| -> Vec<String> {
        connection
            .prepare(&format!(
                "SELECT scope FROM {table} WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY scope"
            ))
            .expect("prepare")
            .query_map([user.id.to_string()], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    (read("sessions"), read("api_keys"))
}

/// An admin with one `profile admin` session, one `profile admin` key and
/// one key that carries `admin` alone.
async fn admin_with_admin_grants(db: &TestDatabase, name: &str) -> User {
    let both = ScopeSet::EMPTY.with(Scope::Profile).with(Scope::Admin);
    let boss = admin(name);
    db.insert(&boss).await;
    let mut session = new_session(&boss, t0());
    session.scopes = both;
    db.store
        .create_session(&session, 100, DAY, &audit_record(t0()))
        .await
        .expect("session");
    let mut wide = new_api_key(&boss, t0());
    wide.scopes = both;
    db.create_key(&wide).await;
    let mut admin_only = new_api_key(&boss, t0());
    admin_only.scopes = ScopeSet::EMPTY.with(Scope::Admin);
    db.create_key(&admin_only).await;
    boss
}

#[tokio::test]
async fn demoting_with_set_role_narrows_every_stored_grant_and_ends_the_empty_ones() {
    let db = TestDatabase::new();
    let boss = admin_with_admin_grants(&db, "boss").await;

    db.store
        .set_role(&boss.username, Role::User, t0(), &audit_record(t0()))
        .await
        .expect("demote");
    db.store
        .set_role(&boss.username, Role::Admin, t0(), &audit_record(t0()))
        .await
        .expect("promote again");

    assert_eq!(
        stored_grants(&db, &boss),
        (vec!["profile".to_owned()], vec!["profile".to_owned()]),
        "the admin-only key is revoked, the others keep only profile"
    );
}

#[tokio::test]
async fn demoting_through_an_admin_change_narrows_every_stored_grant_in_the_same_change() {
    let db = TestDatabase::new();
    db.insert(&admin("keeper")).await;
    let boss = admin_with_admin_grants(&db, "boss").await;

    db.store
        .admin_update_user(
            boss.id,
            &AdminUserChanges {
                role: Some(Role::User),
                ..AdminUserChanges::default()
            },
            at(HOUR),
            &audit_record(at(HOUR)),
        )
        .await
        .expect("demote");

    assert_eq!(
        stored_grants(&db, &boss),
        (vec!["profile".to_owned()], vec!["profile".to_owned()])
    );
}
