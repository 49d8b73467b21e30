//! Failures as the domain's errors: collisions by constraint, texts that
//! never quote a stored or bound value, and TLS that always verifies.

use portcullis_domain::ports::{ApiKeyStore, SessionStore, SigningKeyStore, UserStore};
use portcullis_domain::{ConflictField, KeyState, NewSession, StoreError};
use portcullis_postgres::testing::TestDatabase;
use portcullis_postgres::{PostgresError, PostgresOptions, PostgresStore};
use portcullis_store_conformance::fixtures::{
    DAY, NO_CAP, audit_record, email_address, named, new_api_key, new_session, new_user, t0, user,
};

use crate::support::{Fresh, signing_key};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Asserts that `error` is a failure whose text holds none of `secrets`.
fn assert_failed_without(error: StoreError, secrets: &[&str]) {
    let text = match &error {
        StoreError::Failed(text) | StoreError::Unavailable(text) => text.clone(),
        other => panic!("expected a failure with a text, got {other:?}"),
    };
    for secret in secrets {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "{text:?} quotes {secret:?}"
        );
    }
    // It still says what went wrong, for the log.
    assert!(text.contains("23505"), "{text}");
}

#[tokio::test]
async fn collisions_on_the_username_or_email_key_are_conflicts() {
    let Fresh {
        store,
        database: _database,
    } = Fresh::new().await;
    let alice = named("alice");
    store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await
        .expect("insert");
    let same_name = user("alice", "other@example.com");
    assert!(matches!(
        store
            .insert_user(&new_user(&same_name), &audit_record(t0()))
            .await,
        Err(StoreError::Conflict(ConflictField::Username))
    ));
    // The canonical key decides: an upper-case spelling is the same address.
    let same_email = portcullis_domain::User {
        email: email_address("ALICE@Example.COM"),
        ..named("alice2")
    };
    assert!(matches!(
        store
            .insert_user(&new_user(&same_email), &audit_record(t0()))
            .await,
        Err(StoreError::Conflict(ConflictField::Email))
    ));
}

#[tokio::test]
async fn failure_texts_never_quote_hashes_ids_or_keys() {
    let Fresh {
        store,
        database: _database,
    } = Fresh::new().await;
    let alice = named("alice");
    store
        .insert_user(&new_user(&alice), &audit_record(t0()))
        .await
        .expect("insert");

    // A second session presenting the first one's refresh token hash: the
    // primary key of refresh_tokens refuses it, and the server's detail
    // ("Key (token_hash)=(\x…) already exists") must not reach the text.
    let first = new_session(&alice, t0());
    store
        .create_session(&first, NO_CAP, DAY, &audit_record(t0()))
        .await
        .expect("session");
    let twin = NewSession {
        refresh_token_hash: first.refresh_token_hash.clone(),
        ..new_session(&alice, t0())
    };
    let error = store
        .create_session(&twin, NO_CAP, DAY, &audit_record(t0()))
        .await
        .expect_err("a duplicate token hash");
    let token = hex(first.refresh_token_hash.as_bytes());
    assert_failed_without(error, &[&token, &twin.id.to_string(), alice.email.as_str()]);

    // A second key with the first one's hash.
    let key = new_api_key(&alice, t0());
    store
        .create_api_key(&key, 10, &audit_record(t0()))
        .await
        .expect("key");
    let twin_key = portcullis_domain::NewApiKey {
        key_hash: key.key_hash.clone(),
        ..new_api_key(&alice, t0())
    };
    let error = store
        .create_api_key(&twin_key, 10, &audit_record(t0()))
        .await
        .expect_err("a duplicate key hash");
    assert_failed_without(
        error,
        &[&hex(key.key_hash.as_bytes()), &twin_key.id.to_string()],
    );

    // Two keys with one kid in one install.
    let current = signing_key(KeyState::Current, t0());
    let twin_kid = portcullis_domain::StoredSigningKey {
        state: KeyState::Next,
        ..current.clone()
    };
    let error = store
        .install_signing_keys(&[current.clone(), twin_kid], &audit_record(t0()))
        .await
        .expect_err("a duplicate kid");
    assert_failed_without(error, &[current.kid.as_str()]);
    assert!(
        store.signing_keys().await.expect("keys").is_empty(),
        "nothing installed"
    );
}

#[tokio::test]
async fn tls_always_verifies_the_servers_certificate() {
    let database = TestDatabase::create().await;
    // Debian's server runs TLS with a self-signed ("snakeoil") certificate
    // that no root vouches for: requiring TLS must fail on verification
    // rather than connect unverified.
    let required = database.url().replace("sslmode=disable", "sslmode=require");
    let refused = PostgresStore::connect(&required, &PostgresOptions::default()).await;
    match refused {
        Err(PostgresError::Connect(text)) => assert!(
            text.contains("TLS") || text.contains("certificate") || text.contains("SSL"),
            "{text}"
        ),
        other => panic!("an unverifiable certificate must not connect: {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_or_empty_ca_file_is_a_tls_error() {
    let database = TestDatabase::create().await;
    let missing = PostgresOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..PostgresOptions::default()
    };
    assert!(matches!(
        PostgresStore::connect(database.url(), &missing).await,
        Err(PostgresError::Tls(_))
    ));
    let empty_file =
        std::env::temp_dir().join(format!("portcullis-empty-ca-{}.pem", database.name()));
    std::fs::write(&empty_file, "").expect("write an empty file");
    let empty = PostgresOptions {
        ca_file: Some(empty_file.clone()),
        ..PostgresOptions::default()
    };
    let outcome = PostgresStore::connect(database.url(), &empty).await;
    let _ = std::fs::remove_file(&empty_file);
    assert!(matches!(outcome, Err(PostgresError::Tls(_))), "{outcome:?}");
}
