//! The errors of opening a store.
//!
//! Errors of individual operations are the domain's
//! [`StoreError`](portcullis_domain::StoreError), so that nothing above this
//! crate ever sees a `rusqlite` type.

/// Why [`SqliteStore::open`](crate::SqliteStore::open) failed.
///
/// The texts describe the cause for an operator; they contain paths and
/// SQLite messages, never data stored in the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database file could not be opened, or WAL mode could not be set.
    #[error("cannot open database: {0}")]
    Open(String),
    /// Bringing the schema up to date failed; nothing was changed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The connection pool could not be built.
    #[error("cannot build connection pool: {0}")]
    Pool(String),
}
