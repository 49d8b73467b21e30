//! Fixtures shared by the tests: a fresh migrated store with the test
//! audit key, raw SQL on its database, and signing keys.

use portcullis_domain::{KeyId, KeyState, SealedPrivateKey, SigningAlgorithm, StoredSigningKey};
use portcullis_postgres::testing::TestDatabase;
use portcullis_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_conformance::fixtures::{digest, test_audit_key};
use time::OffsetDateTime;
use tokio_postgres::NoTls;

/// A migrated store on a fresh database, keyed with the test audit key;
/// the database lives as long as the value.
pub struct Fresh {
    pub store: PostgresStore,
    pub database: TestDatabase,
}

impl Fresh {
    pub async fn new() -> Self {
        let database = TestDatabase::create().await;
        let store = keyed_store(&database).await;
        Self { store, database }
    }
}

/// Another node on `database`: a store of its own (its own pool), migrated
/// and keyed with the test audit key.
pub async fn keyed_store(database: &TestDatabase) -> PostgresStore {
    let store = PostgresStore::open(database.url(), &PostgresOptions::default())
        .await
        .expect("open the store on the test database");
    store.set_audit_key(test_audit_key());
    store
}

/// A plain connection to `database`, for looking behind the store.
pub async fn raw_client(database: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(database.url(), NoTls)
        .await
        .expect("raw connection");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A stand-in Ed25519 key in `state`, created at `created_at`.
pub fn signing_key(state: KeyState, created_at: OffsetDateTime) -> StoredSigningKey {
    let public_key = digest();
    let kid: String = public_key[..12]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    StoredSigningKey {
        kid: KeyId::parse(&kid).expect("kid"),
        algorithm: SigningAlgorithm::EdDsa,
        state,
        created_at,
        signs_from: created_at,
        retires_at: None,
        public_key,
        sealed_private_key: SealedPrivateKey::from_sealed(digest()),
    }
}
