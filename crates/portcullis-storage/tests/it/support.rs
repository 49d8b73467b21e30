//! Fixtures shared by the tests.

use std::path::PathBuf;
use std::time::Duration;

use portcullis_domain::ports::{SessionStore, UserStore};
use portcullis_domain::{
    EmailAddress, NewSession, NewUser, PasswordHashString, RefreshTokenHash, Role, Scope, ScopeSet,
    SessionId, User, UserId, Username,
};
use portcullis_storage::SqliteStore;
use tempfile::TempDir;
use time::OffsetDateTime;

/// A store on a fresh database file; the directory lives as long as the value.
pub struct TestDatabase {
    pub store: SqliteStore,
    pub directory: TempDir,
}

impl TestDatabase {
    pub fn new() -> Self {
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
            .insert_user(&NewUser {
                user: user.clone(),
                password_hash: dummy_hash(),
            })
            .await
            .expect("insert user");
    }

    /// Inserts a session for `user` started at `started`, lasting a day.
    pub async fn start_session(&self, user: &User, started: OffsetDateTime) -> NewSession {
        let session = new_session(user, started);
        self.store
            .create_session(&session)
            .await
            .expect("create session");
        session
    }
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

pub const HOUR: Duration = Duration::from_secs(60 * 60);
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);
