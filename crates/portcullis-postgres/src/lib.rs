//! The PostgreSQL store of Portcullis: the implementation of the domain's
//! store traits on one PostgreSQL database, through `tokio-postgres` and a
//! `deadpool-postgres` connection pool.
//!
//! (Work in progress: the public API below is stable; the operations are
//! being implemented.)

mod error;
mod migrations;
mod pending;
mod store;
mod tls;

#[doc(hidden)]
pub mod testing;

pub use error::PostgresError;
pub use store::{PostgresOptions, PostgresStore};
