//! The versioned schema, embedded in the binary.
//!
//! `rusqlite_migration` records the applied version in SQLite's
//! `user_version` header field, so a migration runs exactly once per file.
//! Migrations are append-only: never edit one that has shipped, add a new
//! one instead.

use rusqlite_migration::{M, Migrations};

const MIGRATION_LIST: &[M<'static>] = &[
    M::up(include_str!("../migrations/0001_initial.sql"))
        .comment("accounts, sessions and refresh tokens"),
    M::up(include_str!("../migrations/0002_api_keys.sql")).comment("user-owned api keys"),
];

/// Every migration, in order; the schema version is their count.
pub(crate) const MIGRATIONS: Migrations<'static> = Migrations::from_slice(MIGRATION_LIST);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        let validation = MIGRATIONS.validate();
        assert!(validation.is_ok(), "{validation:?}");
    }
}
