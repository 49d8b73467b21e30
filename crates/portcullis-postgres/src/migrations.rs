//! The versioned schema, embedded in the binary, and applying it once per
//! database however many nodes start at the same moment.
//!
//! Each applied version is a row of `portcullis_schema_migrations`.
//! Migrations are append-only: never edit one that has shipped, add a new
//! one instead.

use deadpool_postgres::Object;

use crate::error::PostgresError;
use crate::store::describe;

/// Every migration, in order: `(version, SQL)`. Versions start at 1 and
/// have no gaps; the schema version is the last one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_audit_log.sql")),
];

/// The key of the transaction-level advisory lock the migration holds: any
/// fixed number that no other application sharing the database uses
/// (`"portcull"` in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x706f_7274_6375_6c6c;

/// The latest schema version this build knows.
fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// Applies the pending migrations in one transaction; how many.
///
/// The transaction first takes `pg_advisory_xact_lock`, so a second node
/// migrating at the same time waits until the first commits, then finds
/// the versions recorded and applies nothing. The bookkeeping table is
/// created under that lock too, so its creation cannot race either. A
/// database whose schema is newer than this build is refused, changing
/// nothing.
pub(crate) async fn migrate(client: &mut Object) -> Result<usize, PostgresError> {
    let failed = |error: tokio_postgres::Error| PostgresError::Migration(describe(&error));
    let transaction = client.transaction().await.map_err(failed)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(failed)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS portcullis_schema_migrations ( \
                 version    INT    NOT NULL PRIMARY KEY, \
                 applied_at BIGINT NOT NULL \
             )",
        )
        .await
        .map_err(failed)?;
    let current: i32 = transaction
        .query_one(
            "SELECT coalesce(max(version), 0) FROM portcullis_schema_migrations",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    if current > latest_version() {
        return Err(PostgresError::Migration(format!(
            "the database schema is at version {current}, newer than this build's {}",
            latest_version()
        )));
    }
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        transaction.batch_execute(sql).await.map_err(|error| {
            PostgresError::Migration(format!("version {version}: {}", describe(&error)))
        })?;
        // The server's clock, not the domain's: this is bookkeeping for
        // operators, and no rule reads it.
        transaction
            .execute(
                "INSERT INTO portcullis_schema_migrations (version, applied_at) \
                 VALUES ($1, extract(epoch FROM now())::BIGINT)",
                &[version],
            )
            .await
            .map_err(failed)?;
        applied += 1;
    }
    transaction.commit().await.map_err(failed)?;
    Ok(applied)
}

/// Whether the recorded schema version is this build's latest; changes
/// nothing (a database without the bookkeeping table is at version 0).
pub(crate) async fn schema_is_current(client: &Object) -> Result<bool, PostgresError> {
    let failed = |error: tokio_postgres::Error| PostgresError::Migration(describe(&error));
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('portcullis_schema_migrations') IS NOT NULL",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    if !exists {
        return Ok(false);
    }
    let current: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM portcullis_schema_migrations",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    Ok(current == latest_version())
}
