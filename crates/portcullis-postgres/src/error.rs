//! The errors of connecting and migrating.
//!
//! Errors of individual operations are the domain's
//! [`StoreError`](portcullis_domain::StoreError), so that nothing above this
//! crate ever sees a `tokio-postgres` type.

/// Why [`PostgresStore::connect`](crate::PostgresStore::connect),
/// [`migrate`](crate::PostgresStore::migrate) or
/// [`open`](crate::PostgresStore::open) failed.
///
/// The texts describe the cause for an operator; they never contain the
/// password of the URL or data stored in the database.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The connection URL is not a `postgres://` or `postgresql://` URL
    /// that `tokio-postgres` accepts.
    #[error("invalid database url: {0}")]
    Url(String),
    /// No connection could be made, or the server refused it.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// The TLS set-up (the CA file, the system's roots) failed.
    #[error("cannot set up tls for the database: {0}")]
    Tls(String),
    /// Bringing the schema up to date failed; nothing was changed.
    #[error("database migration failed: {0}")]
    Migration(String),
}
