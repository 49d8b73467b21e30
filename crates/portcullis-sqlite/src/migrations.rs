//! The versioned schema, embedded in the binary.
//!
//! `rusqlite_migration` records the applied version in SQLite's
//! `user_version` header field, so a migration runs exactly once per file.
//! Migrations are append-only: never edit one that has shipped, add a new
//! one instead.

use std::collections::HashSet;
use std::sync::LazyLock;

use portcullis_domain::EmailAddress;
use rusqlite::{Transaction, params};
use rusqlite_migration::{HookResult, M, Migrations};

/// Every migration, in order; the schema version is their count.
///
/// A `LazyLock` rather than a `const`: migration 3 runs Rust code (a hook),
/// which `rusqlite_migration` keeps boxed.
pub(crate) static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_initial.sql"))
            .comment("accounts, sessions and refresh tokens"),
        M::up(include_str!("../migrations/0002_api_keys.sql")).comment("user-owned api keys"),
        M::up_with_hook(
            include_str!("../migrations/0003_email_key.sql"),
            fill_email_keys,
        )
        .comment("canonical email key"),
        M::up(include_str!("../migrations/0004_signing_keys.sql"))
            .comment("shared access-token signing keys"),
        M::up(include_str!("../migrations/0005_audit_log.sql"))
            .comment("the audit log and its mac chain"),
    ])
});

/// Fills `users.email_key` for the rows that existed before migration 3,
/// oldest account first, with the domain's canonical key.
///
/// Nothing fails the upgrade and nothing is lost. Rows that the canonical
/// form reveals as one address (say `alice@example.com` and
/// `ａlice@example.com`) keep their data: the oldest keeps the key, each later
/// one gets `conflict:<user id>:<key>`; a stored address that no longer
/// parses gets `unparsable:<user id>:<folded address>`. Neither can collide
/// with a real key (a key's local part never contains `:`), and both are
/// logged with the user ids so an operator can correct the addresses.
fn fill_email_keys(transaction: &Transaction<'_>) -> HookResult {
    let rows: Vec<(String, String)> = transaction
        .prepare("SELECT id, email FROM users ORDER BY pk")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut taken = HashSet::new();
    let mut update = transaction.prepare("UPDATE users SET email_key = ?2 WHERE id = ?1")?;
    for (id, email) in rows {
        let key = match EmailAddress::parse(&email) {
            Ok(address) if taken.insert(address.canonical().to_owned()) => {
                address.canonical().to_owned()
            }
            Ok(address) => {
                tracing::warn!(
                    user_id = %id,
                    "email address is a Unicode variant of an older account's address; \
                     kept with a non-colliding key, please correct it"
                );
                format!("conflict:{id}:{}", address.canonical())
            }
            Err(_) => {
                tracing::warn!(
                    user_id = %id,
                    "stored email address no longer parses; kept with a non-colliding key, \
                     please correct it"
                );
                format!(
                    "unparsable:{id}:{}",
                    EmailAddress::from_storage_unchecked(&email).canonical()
                )
            }
        };
        update.execute(params![id, key])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        let validation = MIGRATIONS.validate();
        assert!(validation.is_ok(), "{validation:?}");
    }
}
