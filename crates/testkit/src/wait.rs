//! Waiting for the database to show what a test expects.

use std::time::Duration;

use hubwright_state::Store;
use hubwright_state::model::{Run, RunState};
use uuid::Uuid;

/// Polls until the run is in `state`, or panics after `within` with the run as
/// it was last seen.
pub async fn run_state(store: &Store, run_id: Uuid, state: RunState, within: Duration) -> Run {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let run = store.run(run_id).await.expect("read run");
        if run.state == state {
            return run;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("run {run_id} did not become {state} within {within:?}; last seen: {run:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `count` runs are in `state`, or panics after `within`.
pub async fn runs_in_state(store: &Store, state: RunState, count: i64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let counts = store.count_runs_by_state().await.expect("count runs");
        let now = counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n);
        if now >= count {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{now} of {count} runs {state} after {within:?}; by state: {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it answers `Some`, and returns that; panics after
/// `within`, naming `what` was awaited. For conditions no signal announces
/// (an object in the API server, a row in another process's database).
pub async fn until_some<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` until it answers `true`; panics after `within`, naming
/// `what` was awaited.
pub async fn until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    until_some(what, within, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
}
