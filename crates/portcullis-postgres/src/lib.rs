//! The PostgreSQL store of Portcullis: the implementation of the domain's
//! [`UserStore`](portcullis_domain::ports::UserStore),
//! [`SessionStore`](portcullis_domain::ports::SessionStore),
//! [`ApiKeyStore`](portcullis_domain::ports::ApiKeyStore),
//! [`SigningKeyStore`](portcullis_domain::ports::SigningKeyStore),
//! [`AuditStore`](portcullis_domain::ports::AuditStore),
//! [`StoreCopy`](portcullis_domain::ports::StoreCopy) and
//! [`SharedAttemptCounter`](portcullis_domain::ports::SharedAttemptCounter)
//! on one PostgreSQL database, through `tokio-postgres` and a
//! `deadpool-postgres` pool, so that several nodes can share one deployment.
//!
//! [`PostgresStore::connect`] parses a `postgres://` (or `postgresql://`)
//! URL and builds the pool; [`PostgresStore::migrate`] applies the embedded
//! schema migrations in one transaction under an advisory lock, so nodes
//! starting together on an empty database apply them once;
//! [`PostgresStore::open`] does both. The semantics are those of the SQLite
//! store, promise for promise, and the same conformance suite
//! (`portcullis-store-conformance`) runs against both.
//!
//! # How it keeps the promises
//!
//! Every statement is prepared once per connection (`prepare_cached`).
//! Every read-then-write is one statement or one transaction that locks
//! what it decides on: creating a session or an API key locks the user's
//! row (`FOR NO KEY UPDATE`), so concurrent creations count in turn; a
//! refresh rotation locks the token's and the session's rows (`FOR UPDATE
//! OF t, s`), so of N presentations one rotates and the others see the
//! token used; the last-admin guard locks every enabled admin's row, in id
//! order, then the target's; installing and rotating signing keys lock the
//! table in a mode that still lets readers in; the attempt budget is one
//! `INSERT … ON CONFLICT DO UPDATE`.
//!
//! Every change appends its audit events as the last step of its own
//! transaction: it locks the chain's head, the singleton row of
//! `audit_chain` (`SELECT … FOR UPDATE`; the first append of a deployment
//! creates the row with `ON CONFLICT DO NOTHING` first, so two nodes cannot
//! both write `seq` 1), MACs the events after it, and inserts them and the
//! new head in one statement. So the writers of every node form one gapless
//! chain, and a transaction holding the head waits for nothing but its
//! commit. The price: audited writes of the whole deployment take turns,
//! one commit (one WAL flush) at a time. The chain's key is given with
//! [`PostgresStore::set_audit_key`]; without it every change fails and
//! nothing is written. Usernames are unique and found by a
//! key folded to ASCII lower case in Rust (`username_key`), exactly what
//! SQLite's `COLLATE NOCASE` compares, whatever the server's locale; email
//! uniqueness is on `email_key`, the domain's canonical form.
//!
//! # Outages
//!
//! No operation hangs: connecting times out after 2 s, TCP keepalives (and
//! on Linux a TCP user timeout) notice a vanished server, the pool waits at
//! most 2 s for a connection, and every operation as a whole has a 3 s
//! deadline (1 s for `ensure_writable`, two minutes for a whole
//! [`StoreCopy`](portcullis_domain::ports::StoreCopy) export or import).
//! Past it the answer is
//! [`StoreError::Unavailable`](portcullis_domain::StoreError::Unavailable).
//! The pool checks an idle connection before lending it and replaces a dead
//! one, so once the server is back the same store works again by itself.
//!
//! # Errors
//!
//! Nothing above this crate sees a `tokio-postgres` type. A unique
//! violation on the username or email key (told apart by constraint name)
//! is [`StoreError::Conflict`](portcullis_domain::StoreError::Conflict); a
//! lost or refused connection, a server shutting down or out of
//! connections, a read-only standby, the deadline, or a serialization
//! failure or deadlock still there after two retries is `Unavailable`;
//! anything else is `Failed`. The texts are for logs and never hold a bound
//! or stored value: they carry the SQLSTATE, table, column and constraint,
//! and the server's message only outside the classes (22, 23) whose
//! messages quote values; never its detail. Connecting and migrating have
//! their own error, [`PostgresError`].
//!
//! # TLS
//!
//! TLS is rustls on aws-lc-rs (the workspace's one crypto provider), with
//! the roots of [`PostgresOptions::ca_file`] when set, else the operating
//! system's. The URL's `sslmode` decides whether TLS is used, as
//! `tokio-postgres` reads it: `disable` never, `prefer` (the default) when
//! the server offers it, `require` always. **Whenever TLS is used the
//! server's certificate and name are verified**, under `prefer` and
//! `require` alike: unlike libpq, there is no mode that encrypts without
//! verifying, so a server with a self-signed certificate needs its CA in
//! `ca_file` (or `sslmode=disable` on a trusted network).
//!
//! # Erasure of deleted accounts
//!
//! [`UserStore::delete_user`](portcullis_domain::ports::UserStore::delete_user)
//! deletes the account and, by cascade, its sessions, refresh tokens and
//! API keys in one transaction; no query can read them afterwards.
//! PostgreSQL cannot overwrite the dead row versions on demand, though: the
//! old email and password hash stay in the table's pages (and in the
//! write-ahead log and its archives, and in backups) until VACUUM (usually
//! autovacuum) reclaims the space and later writes reuse it.
//! [`SessionStore::purge_dead_sessions`](portcullis_domain::ports::SessionStore::purge_dead_sessions)
//! runs nothing extra for it. Operators who need erasure at rest must
//! treat WAL archives and backups accordingly.
//!
//! # What it is not
//!
//! Not a place for rules: it stores and loads the domain's validated types
//! and parses every row back through the domain's parsers (a row that no
//! longer parses is `Failed("… corrupt row …")`, never a panic). The one
//! rule it enforces itself is the last-admin guard, which only a
//! transaction can make hold. Not a cache: every call asks the database.
//! The attempt budgets live in an `UNLOGGED` table: emptied (every budget
//! full again) after a server crash and not replicated to standbys.
//!
//! # Example
//!
//! ```no_run
//! use portcullis_domain::ports::UserStore;
//! use portcullis_domain::Username;
//! use portcullis_postgres::{PostgresOptions, PostgresStore};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::open(
//!     "postgres://portcullis@db.internal:5432/portcullis?sslmode=require",
//!     &PostgresOptions::default(),
//! )
//! .await?;
//! tracing::info!(url = %store.redacted_url(), "store ready");
//! // Usernames are found case-insensitively.
//! let found = store.find_credentials(&Username::parse("ALICE")?).await?;
//! # let _ = found;
//! # Ok(())
//! # }
//! ```

mod api_keys;
mod attempts;
mod audit;
mod copy;
mod error;
mod migrations;
mod rows;
mod sessions;
mod signing_keys;
mod sql;
mod store;
mod tls;
mod users;

#[doc(hidden)]
pub mod testing;

pub use error::PostgresError;
pub use store::{PostgresOptions, PostgresStore};

/// The README's examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
