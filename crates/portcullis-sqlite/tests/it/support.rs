//! Fixtures shared by the tests.

use std::path::PathBuf;
use std::time::Duration;

use portcullis_domain::ports::{ApiKeyStore, SessionStore, UserStore};
use portcullis_domain::{
    ApiKeyHash, ApiKeyId, ApiKeyInfo, ApiKeyName, EmailAddress, NewApiKey, NewSession, NewUser,
    PasswordHashString, RefreshOutcome, RefreshTokenHash, Role, Scope, ScopeSet, SessionId, User,
    UserId, Username,
};
use portcullis_sqlite::SqliteStore;
use portcullis_store_conformance::fixtures::{audit_context, audit_record, test_audit_key};
use rusqlite::OptionalExtension;
use tempfile::TempDir;
use time::OffsetDateTime;

/// A store on a fresh database file, with the tests' audit key
/// ([`test_audit_key`]); the directory lives as long as the value.
pub struct TestDatabase {
    pub store: SqliteStore,
    pub directory: TempDir,
}

impl TestDatabase {
    pub fn new() -> Self {
        let database = Self::without_audit_key();
        database.store.set_audit_key(test_audit_key());
        database
    }

    /// A store on a fresh database file that was given no audit key.
    pub fn without_audit_key() -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&directory.path().join(DATABASE_FILE)).expect("open store");
        Self { store, directory }
    }

    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.directory.path().join(DATABASE_FILE)
    }

    /// A plain connection to the file, with foreign keys on like the pool's.
    pub fn raw_connection(&self) -> rusqlite::Connection {
        let connection = rusqlite::Connection::open(self.path()).expect("raw connection");
        connection
            .execute_batch("PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;")
            .expect("raw connection pragmas");
        connection
    }

    /// Inserts `user` with a dummy hash and returns it.
    pub async fn insert(&self, user: &User) {
        self.store
            .insert_user(
                &NewUser {
                    user: user.clone(),
                    password_hash: dummy_hash(),
                },
                &audit_record(t0()),
            )
            .await
            .expect("insert user");
    }

    /// Inserts a session for `user` started at `started`, lasting a day.
    pub async fn start_session(&self, user: &User, started: OffsetDateTime) -> NewSession {
        let session = new_session(user, started);
        self.store
            .create_session(&session, 100, DAY, &audit_record(t0()))
            .await
            .expect("create session");
        session
    }

    /// Rotates `presented` at `now` (with a day's idle timeout), asserting
    /// that it rotated, and returns the replacement.
    pub async fn rotate(
        &self,
        presented: &RefreshTokenHash,
        now: OffsetDateTime,
    ) -> RefreshTokenHash {
        let replacement = fresh_token_hash();
        let outcome = self
            .store
            .rotate_refresh_token(presented, &replacement, now, DAY, &audit_context(now))
            .await
            .expect("rotate");
        assert!(
            matches!(outcome, RefreshOutcome::Rotated { .. }),
            "setup rotation did not rotate: {outcome:?}"
        );
        replacement
    }

    /// Number of rows in `table`, read with raw SQL.
    pub fn count(&self, table: &str) -> i64 {
        self.raw_connection()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .expect("count rows")
    }

    /// A stored refresh token's `used_at`; `None` when there is no such row.
    pub fn token_used_at(&self, token: &RefreshTokenHash) -> Option<Option<i64>> {
        self.raw_connection()
            .query_row(
                "SELECT used_at FROM refresh_tokens WHERE token_hash = ?1",
                [token.as_bytes()],
                |row| row.get(0),
            )
            .optional()
            .expect("read used_at")
    }

    /// A stored session's `last_used_at` and `revoked_at`.
    pub fn session_use(&self, id: SessionId) -> SessionUse {
        self.raw_connection()
            .query_row(
                "SELECT last_used_at, revoked_at FROM sessions WHERE id = ?1",
                [id.to_string()],
                |row| {
                    Ok(SessionUse {
                        last_used_at: row.get(0)?,
                        revoked_at: row.get(1)?,
                    })
                },
            )
            .expect("read session")
    }

    /// Sets one integer column of a stored session, behind the store's back.
    pub fn set_session_column(&self, id: SessionId, column: &str, value: i64) {
        let changed = self
            .raw_connection()
            .execute(
                &format!("UPDATE sessions SET {column} = ?2 WHERE id = ?1"),
                (id.to_string(), value),
            )
            .expect("update session");
        assert_eq!(changed, 1, "no session to update");
    }
}

/// The mutable times of a stored session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionUse {
    pub last_used_at: i64,
    pub revoked_at: Option<i64>,
}

pub const DATABASE_FILE: &str = "portcullis.sqlite3";

/// A fixed moment, in whole seconds like everything the store keeps.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).expect("valid timestamp")
}

pub fn user(username: &str, email: &str) -> User {
    User {
        id: UserId::random(),
        username: Username::parse(username).expect("valid username"),
        email: EmailAddress::parse(email).expect("valid email"),
        full_name: None,
        role: Role::User,
        disabled: false,
        created_at: t0(),
    }
}

pub fn alice() -> User {
    user("alice", "alice@example.com")
}

pub fn username(name: &str) -> Username {
    Username::parse(name).expect("valid username")
}

pub fn dummy_hash() -> PasswordHashString {
    PasswordHashString::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into())
}

pub fn new_session(user: &User, started: OffsetDateTime) -> NewSession {
    let id = SessionId::random();
    // Any 32 bytes stand in for a digest; two halves of the session id keep
    // them unique per session.
    let digest = [id.as_uuid().as_bytes().as_slice(); 2].concat();
    NewSession {
        id,
        user_id: user.id,
        scopes: ScopeSet::EMPTY.with(Scope::Profile),
        refresh_token_hash: RefreshTokenHash::from_digest(digest),
        created_at: started,
        expires_at: started + DAY,
        ip: Some("192.0.2.1".into()),
        user_agent: Some("test-agent/1.0".into()),
    }
}

/// A fresh stand-in for a refresh token digest, unique like a real one.
pub fn fresh_token_hash() -> RefreshTokenHash {
    let first = SessionId::random();
    let second = SessionId::random();
    RefreshTokenHash::from_digest(
        [
            first.as_uuid().as_bytes().as_slice(),
            second.as_uuid().as_bytes(),
        ]
        .concat(),
    )
}

/// `t0()` plus `offset`.
pub fn at(offset: Duration) -> OffsetDateTime {
    t0() + offset
}

/// `at(offset)` in stored form, unix seconds.
pub fn unix_at(offset: Duration) -> i64 {
    at(offset).unix_timestamp()
}

pub const HOUR: Duration = Duration::from_secs(60 * 60);
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// An enabled admin named `name`, with the email `name@example.com`.
pub fn admin(name: &str) -> User {
    User {
        role: Role::Admin,
        ..user(name, &format!("{name}@example.com"))
    }
}

/// A key of `user` created at `created`, with the profile scope, no expiry
/// and a fresh stand-in hash.
pub fn new_api_key(user: &User, created: OffsetDateTime) -> NewApiKey {
    let id = ApiKeyId::random();
    NewApiKey {
        id,
        user_id: user.id,
        name: ApiKeyName::parse("ci deploy").expect("valid key name"),
        // What a real key's first characters look like; the store keeps
        // whatever it is given.
        prefix: format!("pcl_{}", &id.to_string()[..8]),
        key_hash: ApiKeyHash::from_digest(fresh_token_hash().as_bytes().to_vec()),
        scopes: ScopeSet::EMPTY.with(Scope::Profile),
        created_at: created,
        expires_at: None,
    }
}

/// What the owner's listing shows of `key` before its first use.
pub fn listed(key: &NewApiKey) -> ApiKeyInfo {
    ApiKeyInfo {
        id: key.id,
        name: key.name.as_str().to_owned(),
        prefix: key.prefix.clone(),
        scopes: key.scopes,
        created_at: key.created_at,
        last_used_at: None,
        expires_at: key.expires_at,
    }
}

impl TestDatabase {
    /// Stores `key`.
    pub async fn create_key(&self, key: &NewApiKey) {
        self.store
            .create_api_key(key, 100, &audit_record(t0()))
            .await
            .expect("create api key");
    }

    /// A stored key's `last_used_at` and `revoked_at`.
    pub fn key_use(&self, id: ApiKeyId) -> KeyUse {
        self.raw_connection()
            .query_row(
                "SELECT last_used_at, revoked_at FROM api_keys WHERE id = ?1",
                [id.to_string()],
                |row| {
                    Ok(KeyUse {
                        last_used_at: row.get(0)?,
                        revoked_at: row.get(1)?,
                    })
                },
            )
            .expect("read api key")
    }

    /// How many of `user`'s sessions and API keys are not revoked.
    pub fn unrevoked_credentials(&self, user: &User) -> (i64, i64) {
        let connection = self.raw_connection();
        let count = |table: &str| -> i64 {
            connection
                .query_row(
                    &format!(
                        "SELECT count(*) FROM {table} WHERE user_id = ?1 AND revoked_at IS NULL"
                    ),
                    [user.id.to_string()],
                    |row| row.get(0),
                )
                .expect("count unrevoked")
        };
        (count("sessions"), count("api_keys"))
    }
}

/// The mutable times of a stored API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUse {
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}
