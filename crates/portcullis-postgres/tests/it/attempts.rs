//! The shared attempt budgets: burst, refill, the exact count under
//! concurrency, and forgetting full budgets.

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::ports::{AttemptBudget, SharedAttemptCounter};
use portcullis_store_conformance::fixtures::{at, t0};

use crate::support::{Fresh, raw_client};

const TEN_SECONDS: Duration = Duration::from_secs(10);

fn budget(burst: u32) -> AttemptBudget {
    AttemptBudget {
        burst,
        refill_every: TEN_SECONDS,
    }
}

#[tokio::test]
async fn a_full_budget_allows_its_burst_then_refuses_until_one_attempt_is_back() {
    let Fresh {
        store,
        database: _database,
    } = Fresh::new().await;
    for attempt in 0..3 {
        let spent = store.spend_attempt(b"alice", budget(3), t0()).await;
        assert!(matches!(spent, Ok(Ok(()))), "attempt {attempt}: {spent:?}");
    }
    let refused = store
        .spend_attempt(b"alice", budget(3), t0())
        .await
        .expect("store")
        .expect_err("the burst is spent");
    assert_eq!(
        refused.retry_after, TEN_SECONDS,
        "one interval until one is back"
    );
    // Half-way through the interval, half of it is left to wait.
    let refused = store
        .spend_attempt(b"alice", budget(3), at(Duration::from_secs(5)))
        .await
        .expect("store")
        .expect_err("still spent");
    assert_eq!(refused.retry_after, Duration::from_secs(5));
    // Another key has a budget of its own.
    assert!(matches!(
        store.spend_attempt(b"bob", budget(3), t0()).await,
        Ok(Ok(()))
    ));
    // After one interval exactly one attempt is back.
    assert!(matches!(
        store
            .spend_attempt(b"alice", budget(3), at(TEN_SECONDS))
            .await,
        Ok(Ok(()))
    ));
    assert!(matches!(
        store
            .spend_attempt(b"alice", budget(3), at(TEN_SECONDS))
            .await,
        Ok(Err(_))
    ));
    // After the whole burst's worth of intervals the budget is full again.
    let later = at(TEN_SECONDS * 5);
    for attempt in 0..3 {
        let spent = store.spend_attempt(b"alice", budget(3), later).await;
        assert!(matches!(spent, Ok(Ok(()))), "attempt {attempt}: {spent:?}");
    }
    assert!(matches!(
        store.spend_attempt(b"alice", budget(3), later).await,
        Ok(Err(_))
    ));
}

#[tokio::test]
async fn refusals_do_not_push_the_refill_further_away() {
    let Fresh {
        store,
        database: _database,
    } = Fresh::new().await;
    assert!(matches!(
        store.spend_attempt(b"carol", budget(1), t0()).await,
        Ok(Ok(()))
    ));
    for second in 1..5 {
        assert!(matches!(
            store
                .spend_attempt(b"carol", budget(1), at(Duration::from_secs(second)))
                .await,
            Ok(Err(_))
        ));
    }
    assert!(matches!(
        store
            .spend_attempt(b"carol", budget(1), at(TEN_SECONDS))
            .await,
        Ok(Ok(()))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_fifty_concurrent_attempts_on_a_budget_of_five_exactly_five_succeed() {
    let Fresh {
        store,
        database: _database,
    } = Fresh::new().await;
    let store = Arc::new(store);
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.spend_attempt(b"dave", budget(5), t0()).await })
        })
        .collect();
    let mut allowed = 0;
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(Ok(())) => allowed += 1,
            Ok(Err(refused)) => assert!(
                refused.retry_after > Duration::ZERO && refused.retry_after <= TEN_SECONDS,
                "{refused:?}"
            ),
            Err(error) => panic!("store failed: {error}"),
        }
    }
    assert_eq!(allowed, 5);
}

#[tokio::test]
async fn forgetting_drops_only_budgets_that_are_full_again() {
    let Fresh { store, database } = Fresh::new().await;
    store
        .spend_attempt(b"erin", budget(3), t0())
        .await
        .expect("store")
        .expect("allowed");
    for _ in 0..3 {
        let _ = store
            .spend_attempt(b"frank", budget(3), t0())
            .await
            .expect("store");
    }
    // erin's TAT is t0 + 10 s; frank's t0 + 30 s.
    assert_eq!(
        store
            .forget_refilled_attempts(at(Duration::from_secs(9)))
            .await
            .expect("forget"),
        0
    );
    assert_eq!(
        store
            .forget_refilled_attempts(at(TEN_SECONDS))
            .await
            .expect("forget"),
        1
    );
    let client = raw_client(&database).await;
    let left: Vec<Vec<u8>> = client
        .query("SELECT key FROM attempt_budgets", &[])
        .await
        .expect("read budgets")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, vec![b"frank".to_vec()]);
    // A forgotten key starts with a full budget.
    for _ in 0..3 {
        assert!(matches!(
            store
                .spend_attempt(b"erin", budget(3), at(TEN_SECONDS))
                .await,
            Ok(Ok(()))
        ));
    }
}
