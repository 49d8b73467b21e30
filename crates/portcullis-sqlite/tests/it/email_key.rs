//! The canonical email key (migration 3): filled for existing rows without
//! losing any, written on every insert and email change, and unique.

use portcullis_domain::ports::UserStore;
use portcullis_domain::{
    AdminUserChanges, ConflictField, EmailAddress, NewUser, ProfileChanges, StoreError, User,
    UserId,
};
use portcullis_sqlite::SqliteStore;
use portcullis_store_conformance::fixtures::{audit_record, test_audit_key};

use crate::support::{DATABASE_FILE, TestDatabase, dummy_hash, t0, user};

/// Accounts as a version without canonical keys could have stored them, in
/// creation order: (id, username, email, the key migration 3 must give it).
fn legacy_rows() -> Vec<(String, &'static str, &'static str, String)> {
    let id = || UserId::random().to_string();
    let (alice2, bob, bucher2) = (id(), id(), id());
    vec![
        (
            id(),
            "alice",
            "alice@example.com",
            "alice@example.com".to_owned(),
        ),
        // A full-width `ａ`: the same address as alice's, created later.
        (
            alice2.clone(),
            "alice2",
            "\u{ff41}lice@example.com",
            format!("conflict:{alice2}:alice@example.com"),
        ),
        (
            id(),
            "kate",
            "KATE@Example.com",
            "kate@example.com".to_owned(),
        ),
        // A full-width domain no longer parses at all.
        (
            bob.clone(),
            "bob",
            "bob@\u{ff45}xample.com",
            format!("unparsable:{bob}:bob@example.com"),
        ),
        (
            id(),
            "bucher",
            "user@xn--bcher-kva.example",
            "user@bücher.example".to_owned(),
        ),
        (
            bucher2.clone(),
            "bucher2",
            "USER@bücher.example",
            format!("conflict:{bucher2}:user@bücher.example"),
        ),
    ]
}

fn is_email_conflict<T>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(ConflictField::Email)))
}

fn with_hash(user: &User) -> NewUser {
    NewUser {
        user: user.clone(),
        password_hash: dummy_hash(),
    }
}

#[tokio::test]
async fn migration_three_fills_keys_for_existing_rows_and_keeps_colliding_ones() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join(DATABASE_FILE);
    let rows = legacy_rows();
    {
        // A file at migration 2, written with raw SQL.
        let connection = rusqlite::Connection::open(&path).expect("raw connection");
        connection
            .execute_batch(include_str!("../../migrations/0001_initial.sql"))
            .expect("migration 1");
        connection
            .execute_batch(include_str!("../../migrations/0002_api_keys.sql"))
            .expect("migration 2");
        connection
            .pragma_update(None, "user_version", 2)
            .expect("set user_version");
        for (id, username, email, _) in &rows {
            connection
                .execute(
                    "INSERT INTO users (id, username, email, password_hash, role, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, 'hash', 'user', ?4, ?4)",
                    (id, username, email, t0().unix_timestamp()),
                )
                .expect("insert a legacy row");
        }
    }

    let store = SqliteStore::open(&path).expect("the upgrade succeeds");
    store.set_audit_key(test_audit_key());

    let connection = rusqlite::Connection::open(&path).expect("raw connection");
    let stored: Vec<(String, String, String)> = connection
        .prepare("SELECT id, email, email_key FROM users ORDER BY pk")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let expected: Vec<(String, String, String)> = rows
        .iter()
        .map(|(id, _, email, key)| (id.clone(), (*email).to_owned(), key.clone()))
        .collect();
    assert_eq!(
        stored, expected,
        "every account kept, with its address as it was"
    );
    // Every account stays readable, the unparsable address included.
    for (id, username, email, _) in &rows {
        let id = UserId::from_uuid(id.parse().expect("uuid"));
        let found = store.find_user(id).await.expect("lookup").expect("found");
        assert_eq!(found.email.as_str(), *email, "{username}");
    }
    // The keys now decide uniqueness.
    let spoof = user("alice3", "ALICE@example.com");
    let result = store
        .insert_user(&with_hash(&spoof), &audit_record(t0()))
        .await;
    assert!(is_email_conflict(&result), "{result:?}");
}

#[tokio::test]
async fn every_write_of_an_email_stores_its_canonical_key() {
    let db = TestDatabase::new();
    let jose = user("jose", "Jose\u{301}@Example.com");
    db.insert(&jose).await;
    let key = |id: UserId| -> String {
        db.raw_connection()
            .query_row(
                "SELECT email_key FROM users WHERE id = ?1",
                [id.to_string()],
                |row| row.get(0),
            )
            .expect("key")
    };
    assert_eq!(key(jose.id), "josé@example.com");

    let changes = ProfileChanges {
        email: Some(EmailAddress::parse("\u{ff2a}OSE@xn--bcher-kva.example").expect("email")),
        full_name: None,
    };
    db.store
        .update_profile(jose.id, &changes, t0(), &audit_record(t0()))
        .await
        .expect("profile");
    assert_eq!(key(jose.id), "jose@bücher.example");

    let changes = AdminUserChanges {
        email: Some(EmailAddress::parse("jose@example.org").expect("email")),
        ..AdminUserChanges::default()
    };
    db.store
        .admin_update_user(jose.id, &changes, t0(), &audit_record(t0()))
        .await
        .expect("admin change");
    assert_eq!(key(jose.id), "jose@example.org");
}

#[tokio::test]
async fn an_email_change_to_a_canonical_twin_of_another_account_is_a_conflict() {
    let db = TestDatabase::new();
    let kate = user("kate", "kate@bücher.example");
    let bob = user("bob", "bob@example.com");
    db.insert(&kate).await;
    db.insert(&bob).await;
    let twin = EmailAddress::parse("\u{212a}ATE@xn--bcher-kva.example").expect("email");

    let profile = db
        .store
        .update_profile(
            bob.id,
            &ProfileChanges {
                email: Some(twin.clone()),
                full_name: None,
            },
            t0(),
            &audit_record(t0()),
        )
        .await;
    assert!(is_email_conflict(&profile), "{profile:?}");
    let admin = db
        .store
        .admin_update_user(
            bob.id,
            &AdminUserChanges {
                email: Some(twin),
                ..AdminUserChanges::default()
            },
            t0(),
            &audit_record(t0()),
        )
        .await;
    assert!(is_email_conflict(&admin), "{admin:?}");
    let insert = db
        .store
        .insert_user(
            &with_hash(&user("kate2", "ｋａｔｅ@bücher.example")),
            &audit_record(t0()),
        )
        .await;
    assert!(is_email_conflict(&insert), "{insert:?}");
}
