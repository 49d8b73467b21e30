//! The PostgreSQL store of Portcullis: the implementation of the domain's
//! store traits on one PostgreSQL database, through `tokio-postgres` and a
//! `deadpool-postgres` connection pool.

mod api_keys;
mod attempts;
mod copy;
mod cursors;
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
