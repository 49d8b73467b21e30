//! The SQLite store of Portcullis: the implementation of the domain's
//! [`UserStore`](portcullis_domain::ports::UserStore),
//! [`SessionStore`](portcullis_domain::ports::SessionStore),
//! [`ApiKeyStore`](portcullis_domain::ports::ApiKeyStore),
//! [`SigningKeyStore`](portcullis_domain::ports::SigningKeyStore) and
//! [`AuditStore`](portcullis_domain::ports::AuditStore) on one
//! SQLite file, through `rusqlite` (with SQLite bundled), and of
//! [`StoreCopy`](portcullis_domain::ports::StoreCopy), which moves a whole
//! deployment out of or into such a file (`portcullis db copy`): the export
//! reads every table in one read transaction, the import writes into an
//! empty file only, in one transaction, keeping every id, hash and time and
//! the order of the accounts.
//!
//! [`SqliteStore::open`] switches the file to WAL journal mode, applies the
//! embedded, versioned schema migrations (`rusqlite_migration`, tracked in
//! SQLite's `user_version`), and builds an `r2d2` pool of connections that
//! each enforce foreign keys, wait for a busy writer instead of failing, and
//! sync in WAL's `NORMAL` mode. Every store operation runs on a pooled
//! connection inside [`tokio::task::spawn_blocking`]; every read-then-write
//! runs in a `BEGIN IMMEDIATE` transaction (except recording an API key's
//! last use, an `UPDATE` that repeats its own condition, so that
//! authenticating a key does not take the write lock).
//!
//! Every change appends its audit event (`audit_log`, MAC-chained under the
//! key given with [`SqliteStore::set_audit_key`]) as the last step of its
//! own transaction, after reading the chain's head (`audit_chain`): the
//! write lock `BEGIN IMMEDIATE` took makes the read and the append one
//! step, so the chain never forks. Without a key every such change fails
//! and nothing of it is written.
//!
//! What it is not: a general database layer, or a place for rules. It stores
//! and loads the domain's already-validated types and parses every row it
//! loads back through the domain's parsers. The one rule it enforces itself
//! is the one the traits ask of it, because only a transaction can make it
//! hold under concurrency: an admin change or deletion that would leave no
//! enabled admin fails with
//! [`StoreError::LastAdmin`](portcullis_domain::StoreError::LastAdmin).
//! Nothing above this crate sees a
//! `rusqlite` type: failures are the domain's
//! [`StoreError`](portcullis_domain::StoreError), with a unique violation on
//! username or email as [`StoreError::Conflict`](portcullis_domain::StoreError::Conflict)
//! a lock held by another writer past the wait (or no free connection) as
//! the transient `Unavailable`, and anything else as `Failed`, each with a
//! text meant for logs that never contains stored values, hashes or tokens. Only opening has its own error,
//! [`StorageError`].
//!
//! # Example
//!
//! ```
//! use portcullis_domain::audit::{AuditContext, AuditEvent};
//! use portcullis_domain::ports::UserStore;
//! use portcullis_domain::{EmailAddress, NewUser, PasswordHashString, Role, User, UserId, Username};
//! use portcullis_sqlite::SqliteStore;
//! use time::OffsetDateTime;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let directory = tempfile::tempdir()?;
//! let store = SqliteStore::open(&directory.path().join("portcullis.sqlite3"))?;
//! // The service gives the key derived from the master key
//! // (`portcullis_adapters::MasterAuditKey`); this is a test stand-in.
//! store.set_audit_key(portcullis_store_conformance::fixtures::test_audit_key());
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     let now = OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
//!     let user = User {
//!         id: UserId::random(),
//!         username: Username::parse("alice")?,
//!         email: EmailAddress::parse("alice@example.com")?,
//!         full_name: None,
//!         role: Role::User,
//!         disabled: false,
//!         created_at: now,
//!     };
//!     let password_hash = PasswordHashString::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
//!     // What the change records, appended in its transaction.
//!     let audit = AuditContext::system(now).record(
//!         Some(user.id),
//!         AuditEvent::UserRegistered { username: user.username.clone(), role: user.role },
//!     );
//!     store.insert_user(&NewUser { user: user.clone(), password_hash }, &audit).await?;
//!
//!     // Usernames are found case-insensitively.
//!     let found = store.find_credentials(&Username::parse("ALICE")?).await?;
//!     assert_eq!(found.map(|credentials| credentials.user), Some(user));
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod api_keys;
mod audit;
mod cursors;
mod error;
mod migrations;
mod rows;
mod sessions;
mod signing_keys;
mod snapshot;
mod store;
mod users;

pub use error::StorageError;
pub use store::SqliteStore;
#[doc(hidden)]
pub use store::{ConnectionSettings, WriteLockForTests};

/// The README's examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
