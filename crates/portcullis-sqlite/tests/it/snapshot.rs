//! Copying a whole store (`StoreCopy`): what is exported comes back exactly
//! from the copy, the copy serves the copied credentials, and only an empty
//! store takes an import, all of it or nothing.

use portcullis_domain::ports::{ApiKeyStore, SessionStore, SigningKeyStore, StoreCopy, UserStore};
use portcullis_domain::{
    FullName, KeyId, KeyRotation, KeyState, NewApiKey, NewSession, PasswordHashString,
    RefreshOutcome, RefreshTokenHash, RotationOutcome, SealedPrivateKey, SessionId, SessionRecord,
    SigningAlgorithm, StoreError, StoreSnapshot, StoredSigningKey, User, UserId, UserListQuery,
};
use portcullis_sqlite::SqliteStore;
use portcullis_store_conformance::fixtures::{audit_context, audit_record, test_audit_key};
use time::OffsetDateTime;

use crate::support::{
    DATABASE_FILE, DAY, HOUR, TestDatabase, admin, alice, at, dummy_hash, fresh_token_hash,
    new_api_key, t0, user, username,
};

/// A store filled through its own methods with one of everything a
/// deployment keeps, and the values the tests present to its copy.
struct Populated {
    db: TestDatabase,
    alice: User,
    /// Alice's rotated session: its first token is used, the second current.
    rotated_session: SessionId,
    used_token: RefreshTokenHash,
    current_token: RefreshTokenHash,
    /// Alice's session she ended herself.
    revoked_session: NewSession,
    live_key: NewApiKey,
    expiring_key: NewApiKey,
    revoked_key: NewApiKey,
}

/// Alice's new password hash, distinct from every other account's.
fn alices_new_hash() -> PasswordHashString {
    PasswordHashString::new("$argon2id$v=19$m=19456,t=2,p=1$YWxpY2U$bmV3LWhhc2g".into())
}

async fn populated() -> Populated {
    let db = TestDatabase::new();
    let root = admin("root");
    let alice = User {
        full_name: Some(FullName::parse("Alice Liddell").expect("valid full name")),
        created_at: at(HOUR),
        ..alice()
    };
    // Created after alice but stamped earlier: the order that counts is the
    // order of creation, which the copy must keep whatever the stamps say.
    let carol = User {
        created_at: t0() - DAY,
        ..user("carol", "carol@example.com")
    };
    let bob = user("bob", "bob@example.com");
    for account in [&root, &alice, &carol, &bob] {
        db.insert(account).await;
    }
    db.store
        .update_password_hash(alice.id, &alices_new_hash(), at(2 * HOUR))
        .await
        .expect("update alice's hash");

    let rotated = db.start_session(&alice, at(2 * HOUR)).await;
    let used_token = rotated.refresh_token_hash.clone();
    let current_token = db.rotate(&used_token, at(3 * HOUR)).await;
    let revoked_session = db.start_session(&alice, at(2 * HOUR)).await;
    assert!(
        db.store
            .revoke_session(
                revoked_session.id,
                alice.id,
                at(3 * HOUR),
                &audit_record(at(3 * HOUR))
            )
            .await
            .expect("revoke session")
    );
    db.start_session(&root, at(HOUR)).await;

    let live_key = new_api_key(&alice, at(HOUR));
    let expiring_key = NewApiKey {
        expires_at: Some(at(DAY)),
        ..new_api_key(&alice, at(HOUR))
    };
    let revoked_key = new_api_key(&alice, at(HOUR));
    for key in [&live_key, &expiring_key, &revoked_key] {
        db.create_key(key).await;
    }
    assert!(
        db.store
            .revoke_api_key(
                revoked_key.id,
                alice.id,
                at(2 * HOUR),
                &audit_record(at(2 * HOUR))
            )
            .await
            .expect("revoke key")
    );
    // A recorded use, so that `last_used_at` is copied too.
    db.store
        .authenticate_api_key(&live_key.key_hash, at(2 * HOUR))
        .await
        .expect("authenticate")
        .expect("the live key authenticates");

    // Bob's session and key end when he is disabled.
    db.start_session(&bob, at(HOUR)).await;
    db.create_key(&new_api_key(&bob, at(HOUR))).await;
    db.store
        .set_disabled(
            &bob.username,
            true,
            at(2 * HOUR),
            &audit_record(at(2 * HOUR)),
        )
        .await
        .expect("disable bob");

    install_and_rotate_signing_keys(&db.store).await;

    Populated {
        db,
        alice,
        rotated_session: rotated.id,
        used_token,
        current_token,
        revoked_session,
        live_key,
        expiring_key,
        revoked_key,
    }
}

/// A current and a next key, rotated once: one key of each state.
async fn install_and_rotate_signing_keys(store: &SqliteStore) {
    let first = signing_key(KeyState::Current, t0(), SigningAlgorithm::EdDsa);
    let second = StoredSigningKey {
        signs_from: at(HOUR),
        ..signing_key(KeyState::Next, at(HOUR / 2), SigningAlgorithm::Es256)
    };
    assert!(
        store
            .install_signing_keys(&[first.clone(), second], &audit_record(t0()))
            .await
            .expect("install signing keys")
    );
    let rotation = KeyRotation {
        current: first.kid,
        new_next: signing_key(KeyState::Next, at(2 * HOUR), SigningAlgorithm::EdDsa),
        now: at(2 * HOUR),
        retires_at: at(3 * HOUR),
    };
    assert_eq!(
        store
            .rotate_signing_keys(&rotation, &audit_record(t0()))
            .await
            .expect("rotate signing keys"),
        RotationOutcome::Rotated
    );
}

/// A signing key with random stand-in key material.
fn signing_key(
    state: KeyState,
    created_at: OffsetDateTime,
    algorithm: SigningAlgorithm,
) -> StoredSigningKey {
    let public_key = fresh_token_hash().as_bytes().to_vec();
    let kid: String = public_key[..12]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    StoredSigningKey {
        kid: KeyId::parse(&kid).expect("valid kid"),
        algorithm,
        state,
        created_at,
        signs_from: created_at,
        retires_at: None,
        public_key,
        sealed_private_key: SealedPrivateKey::from_sealed(fresh_token_hash().as_bytes().to_vec()),
    }
}

async fn export(store: &SqliteStore) -> StoreSnapshot {
    store.export_snapshot().await.expect("export")
}

/// Imports `snapshot` into a store on a fresh file.
async fn copy_of(snapshot: &StoreSnapshot) -> TestDatabase {
    let copy = TestDatabase::new();
    copy.store.import_snapshot(snapshot).await.expect("import");
    copy
}

/// Field by field, so that a failure names the part that differs
/// (`StoreSnapshot` itself does not compare).
fn assert_same_snapshot(actual: &StoreSnapshot, expected: &StoreSnapshot) {
    assert_eq!(actual.users, expected.users, "users");
    assert_eq!(actual.sessions, expected.sessions, "sessions");
    assert_eq!(
        actual.refresh_tokens, expected.refresh_tokens,
        "refresh tokens"
    );
    assert_eq!(actual.api_keys, expected.api_keys, "api keys");
    assert_eq!(actual.signing_keys, expected.signing_keys, "signing keys");
}

async fn usernames_in_listing_order(store: &SqliteStore) -> Vec<String> {
    let page = store
        .list_users(&UserListQuery {
            after: None,
            limit: 100,
            search: None,
        })
        .await
        .expect("list users");
    assert!(page.next_cursor.is_none(), "one page holds every user");
    page.users
        .into_iter()
        .map(|user| user.username.as_str().to_owned())
        .collect()
}

fn session(snapshot: &StoreSnapshot, id: SessionId) -> &SessionRecord {
    snapshot
        .sessions
        .iter()
        .find(|session| session.id == id)
        .expect("session exported")
}

#[tokio::test]
async fn an_export_holds_every_row_in_creation_order_ended_ones_included() {
    let source = populated().await;
    let snapshot = export(&source.db.store).await;

    let usernames: Vec<&str> = snapshot
        .users
        .iter()
        .map(|record| record.user.username.as_str())
        .collect();
    assert_eq!(
        usernames,
        ["root", "alice", "carol", "bob"],
        "creation order"
    );
    let alice = &snapshot.users[1];
    assert_eq!(alice.user, source.alice);
    assert_eq!(alice.password_hash, alices_new_hash());
    assert_eq!(alice.updated_at, at(2 * HOUR));
    assert!(snapshot.users[3].user.disabled, "bob is disabled");

    assert_eq!(snapshot.sessions.len(), 4, "every session");
    assert_eq!(
        session(&snapshot, source.revoked_session.id).revoked_at,
        Some(at(3 * HOUR)),
        "the ended session with its end"
    );
    assert_eq!(
        session(&snapshot, source.rotated_session).last_used_at,
        at(3 * HOUR)
    );
    assert_eq!(snapshot.refresh_tokens.len(), 5, "every token, used or not");
    let used = snapshot
        .refresh_tokens
        .iter()
        .find(|token| token.token_hash == source.used_token)
        .expect("the used token exported");
    assert_eq!(used.used_at, Some(at(3 * HOUR)));

    assert_eq!(
        snapshot.api_keys.len(),
        4,
        "every key, revoked ones included"
    );
    let key = |id| {
        snapshot
            .api_keys
            .iter()
            .find(|key| key.id == id)
            .expect("key exported")
    };
    assert_eq!(key(source.live_key.id).last_used_at, Some(at(2 * HOUR)));
    assert_eq!(key(source.expiring_key.id).expires_at, Some(at(DAY)));
    assert_eq!(key(source.revoked_key.id).revoked_at, Some(at(2 * HOUR)));

    let states: Vec<KeyState> = snapshot.signing_keys.iter().map(|key| key.state).collect();
    assert_eq!(
        states,
        [KeyState::Retired, KeyState::Current, KeyState::Next],
        "oldest first"
    );
    assert_eq!(
        snapshot.signing_keys,
        source.db.store.signing_keys().await.expect("signing keys"),
        "as the store lists them"
    );
}

#[tokio::test]
async fn a_copy_exports_exactly_what_was_imported() {
    let source = populated().await;
    let snapshot = export(&source.db.store).await;

    let copy = copy_of(&snapshot).await;

    assert_same_snapshot(&export(&copy.store).await, &snapshot);
    // And a copy of the copy too: the order survives every generation.
    let second = copy_of(&export(&copy.store).await).await;
    assert_same_snapshot(&export(&second.store).await, &snapshot);
}

#[tokio::test]
async fn a_copy_serves_the_copied_accounts_sessions_and_keys() {
    let source = populated().await;
    let copy = copy_of(&export(&source.db.store).await).await;

    let credentials = copy
        .store
        .find_credentials(&username("alice"))
        .await
        .expect("find credentials")
        .expect("alice is there");
    assert_eq!(credentials.user, source.alice);
    assert_eq!(credentials.password_hash, alices_new_hash());
    assert_eq!(
        usernames_in_listing_order(&copy.store).await,
        usernames_in_listing_order(&source.db.store).await
    );

    let replacement = fresh_token_hash();
    let outcome = copy
        .store
        .rotate_refresh_token(
            &source.current_token,
            &replacement,
            at(4 * HOUR),
            DAY,
            &audit_context(at(4 * HOUR)),
        )
        .await
        .expect("rotate the copied current token");
    assert!(
        matches!(outcome, RefreshOutcome::Rotated { session_id, .. } if session_id == source.rotated_session),
        "{outcome:?}"
    );
    let outcome = copy
        .store
        .rotate_refresh_token(
            &source.used_token,
            &fresh_token_hash(),
            at(4 * HOUR),
            DAY,
            &audit_context(at(4 * HOUR)),
        )
        .await
        .expect("present the copied used token");
    assert!(
        matches!(outcome, RefreshOutcome::Reused { session_id } if session_id == source.rotated_session),
        "the copy recognises reuse: {outcome:?}"
    );

    let now = at(3 * HOUR);
    let authenticated = copy
        .store
        .authenticate_api_key(&source.live_key.key_hash, now)
        .await
        .expect("authenticate")
        .expect("the live key works on the copy");
    assert_eq!(authenticated.key_id, source.live_key.id);
    assert_eq!(authenticated.user.id, source.alice.id);
    let expiring = copy
        .store
        .authenticate_api_key(&source.expiring_key.key_hash, now)
        .await
        .expect("authenticate");
    assert!(
        expiring.is_some(),
        "the expiring key works until its expiry"
    );
    let expired = copy
        .store
        .authenticate_api_key(&source.expiring_key.key_hash, at(DAY))
        .await
        .expect("authenticate");
    assert!(expired.is_none(), "and not from then on");
    let revoked = copy
        .store
        .authenticate_api_key(&source.revoked_key.key_hash, now)
        .await
        .expect("authenticate");
    assert!(revoked.is_none(), "the revoked key stays revoked");
}

#[tokio::test]
async fn an_import_into_a_store_that_holds_anything_is_refused_and_writes_nothing() {
    let source = populated().await;
    let snapshot = export(&source.db.store).await;

    let with_a_user = TestDatabase::new();
    with_a_user.insert(&user("zoe", "zoe@example.com")).await;
    let with_signing_keys = TestDatabase::new();
    install_and_rotate_signing_keys(&with_signing_keys.store).await;

    for target in [&with_a_user, &with_signing_keys] {
        let before = export(&target.store).await;
        let result = target.store.import_snapshot(&snapshot).await;
        assert!(matches!(result, Err(StoreError::NotEmpty)), "{result:?}");
        assert_same_snapshot(&export(&target.store).await, &before);
    }
}

#[tokio::test]
async fn an_import_that_fails_half_way_writes_nothing() {
    let source = populated().await;
    let mut snapshot = export(&source.db.store).await;
    // The last session belongs to no account: its insert fails after every
    // user and the other sessions have been written.
    let mut orphan = snapshot.sessions[0].clone();
    orphan.id = SessionId::random();
    orphan.user_id = UserId::random();
    snapshot.sessions.push(orphan);

    let target = TestDatabase::new();
    let result = target.store.import_snapshot(&snapshot).await;

    assert!(matches!(result, Err(StoreError::Failed(_))), "{result:?}");
    for table in [
        "users",
        "sessions",
        "refresh_tokens",
        "api_keys",
        "signing_keys",
    ] {
        assert_eq!(target.count(table), 0, "{table} left empty");
    }
    // And the file still takes a correct import.
    snapshot.sessions.pop();
    target
        .store
        .import_snapshot(&snapshot)
        .await
        .expect("import after the failed one");
    assert_same_snapshot(&export(&target.store).await, &snapshot);
}

#[tokio::test]
async fn an_empty_store_exports_an_empty_snapshot_that_imports_as_nothing() {
    let empty = TestDatabase::new();
    let snapshot = export(&empty.store).await;
    assert!(snapshot.is_empty());

    let copy = copy_of(&snapshot).await;
    assert!(export(&copy.store).await.is_empty());
    // Importing nothing leaves the copy empty, so it still takes an import.
    let source = populated().await;
    copy.store
        .import_snapshot(&export(&source.db.store).await)
        .await
        .expect("import into the still empty copy");
}

/// Email keys as stored, by account, in creation order.
fn email_keys(db: &TestDatabase) -> Vec<(String, String)> {
    db.raw_connection()
        .prepare("SELECT id, email_key FROM users ORDER BY pk")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn a_copy_keeps_the_keys_migration_three_gave_colliding_and_unparsable_addresses() {
    // A file upgraded from before migration 3, holding a Unicode twin of an
    // older address and an address that no longer parses; its keys are
    // whatever migration 3 gave them (see email_key.rs).
    let source = TestDatabase::new_at_migration_two_with_rows(&[
        ("alice", "alice@example.com"),
        ("alice2", "\u{ff41}lice@example.com"),
        ("bob", "bob@\u{ff45}xample.com"),
        ("kate", "KATE@Example.com"),
    ]);
    let keys = email_keys(&source);
    assert!(keys[1].1.starts_with("conflict:"), "{keys:?}");
    assert!(keys[2].1.starts_with("unparsable:"), "{keys:?}");

    let copy = copy_of(&export(&source.store).await).await;

    assert_eq!(email_keys(&copy), keys);
}

impl TestDatabase {
    /// A store on a file written at migration 2 with raw SQL (accounts
    /// `(username, email)` in creation order), then opened, which upgrades it.
    fn new_at_migration_two_with_rows(rows: &[(&str, &str)]) -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join(DATABASE_FILE);
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
        for (username, email) in rows {
            connection
                .execute(
                    "INSERT INTO users \
                     (id, username, email, password_hash, role, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, 'user', ?5, ?5)",
                    (
                        UserId::random().to_string(),
                        username,
                        email,
                        dummy_hash().as_str(),
                        t0().unix_timestamp(),
                    ),
                )
                .expect("insert a legacy row");
        }
        drop(connection);
        let store = SqliteStore::open(&path).expect("the upgrade succeeds");
        store.set_audit_key(test_audit_key());
        Self { store, directory }
    }
}
