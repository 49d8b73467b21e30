//! [`SharedAttemptCounter`] for [`PostgresStore`]: the generic cell rate
//! algorithm in one statement on the UNLOGGED `attempt_budgets` table.
//!
//! Each key keeps its theoretical arrival time (TAT): the moment the budget
//! would be full again. With `T` the refill interval and `b` the burst, an
//! attempt at `now` is allowed when `max(tat, now) + T - now <= b * T`, and
//! then moves the TAT to `max(tat, now) + T`; a refused one leaves it. One
//! `INSERT … ON CONFLICT DO UPDATE` reads and writes the row under its row
//! lock, so of N concurrent attempts on k remaining exactly k succeed, on
//! every node alike.

use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::StoreError;
use portcullis_domain::ports::{AttemptBudget, RateLimited, SharedAttemptCounter};
use time::OffsetDateTime;

use crate::sql;
use crate::store::PostgresStore;

#[async_trait]
impl SharedAttemptCounter for PostgresStore {
    async fn spend_attempt(
        &self,
        key: &[u8],
        budget: AttemptBudget,
        now: OffsetDateTime,
    ) -> Result<Result<(), RateLimited>, StoreError> {
        let now = microseconds_since_epoch(now);
        // A zero interval would make every budget infinite and a zero burst
        // refuse everything for ever; the port promises neither, and these
        // floors keep the arithmetic meaningful if a caller breaks it.
        let interval = microseconds(budget.refill_every).max(1);
        let tolerance = interval.saturating_mul(i64::from(budget.burst.max(1)));
        self.run("spend_attempt", move |client| async move {
            // $2 now, $3 T, $4 b * T. A new key is a full budget: allowed,
            // its TAT one interval from now.
            let row = sql::query_one(
                &client,
                "INSERT INTO attempt_budgets AS b (key, tat, refused) \
                 VALUES ($1, $2::BIGINT + $3::BIGINT, FALSE) \
                 ON CONFLICT (key) DO UPDATE SET \
                 tat = CASE WHEN greatest(b.tat, $2) + $3 - $2 <= $4::BIGINT \
                       THEN greatest(b.tat, $2) + $3 ELSE b.tat END, \
                 refused = NOT (greatest(b.tat, $2) + $3 - $2 <= $4) \
                 RETURNING tat, refused",
                &[&key, &now, &interval, &tolerance],
            )
            .await?;
            let tat: i64 = row.try_get(0)?;
            let refused: bool = row.try_get(1)?;
            if !refused {
                return Ok(Ok(()));
            }
            // The next attempt fits once `tat + T - later <= b * T`.
            let wait = tat
                .saturating_add(interval)
                .saturating_sub(now)
                .saturating_sub(tolerance)
                .max(0);
            Ok(Err(RateLimited {
                retry_after: Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
            }))
        })
        .await
    }

    async fn forget_refilled_attempts(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = microseconds_since_epoch(now);
        self.run("forget_refilled_attempts", move |client| async move {
            // A TAT at or before now is a full budget, which a missing row
            // means too.
            Ok(sql::execute(
                &client,
                "DELETE FROM attempt_budgets WHERE tat <= $1",
                &[&now],
            )
            .await?)
        })
        .await
    }
}

/// Unix microseconds, saturating (times this far out are no real clock).
fn microseconds_since_epoch(time: OffsetDateTime) -> i64 {
    let micros = time.unix_timestamp_nanos() / 1_000;
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// A duration in microseconds, saturating at `i64::MAX`.
fn microseconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
