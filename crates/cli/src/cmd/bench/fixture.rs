//! What every workload stands on: a fresh database with a no-op workflow,
//! runs inserted in batches, waiting until they all succeeded, and the audit
//! that each run and step executed exactly once.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hubwright_state::model::RunState;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::workflow::{Dur, RetryPolicy, Snapshot, StepDef};
use hubwright_state::{Clock, Store, SystemClock};
use serde_json::{Value, json};

/// Connects to a fresh database, migrates it and registers a workflow of
/// `steps` no-op steps.
pub(super) async fn prepare(url: &str, steps: usize) -> anyhow::Result<(Store, Snapshot, i64)> {
    let store = crate::cmd::connect(url, 8).await?;
    store.migrate().await?;
    let existing = total_runs(&store).await?;
    if existing > 0 {
        bail!("DATABASE_URL must point at a fresh database (found {existing} runs)");
    }
    let snapshot = Snapshot {
        template: "bench".into(),
        workflow: format!("noop-{steps}"),
        steps: (0..steps)
            .map(|i| StepDef {
                name: format!("step-{i}"),
                kind: "noop".into(),
                params: json!({}),
                retry: RetryPolicy::default(),
                timeout: Dur::from_secs(60),
            })
            .collect(),
    };
    let id = store.register_definition(&snapshot).await?;
    Ok((store, snapshot, id))
}

async fn total_runs(store: &Store) -> anyhow::Result<i64> {
    let total = store
        .count_runs_by_state()
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum();
    Ok(total)
}

/// Inserts `count` runs a thousand at a time; returns runs per second.
pub(super) async fn insert_batch(
    store: &Store,
    snapshot: &Snapshot,
    definition_id: i64,
    count: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut left = count;
    while left > 0 {
        let now = SystemClock.now();
        let batch: Vec<NewRun<'_>> = (0..left.min(1000))
            .map(|_| NewRun::new(definition_id, snapshot, json!({}), "bench", now))
            .collect();
        store.enqueue_many(&batch, now).await?;
        left -= batch.len();
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Waits until `count` runs succeeded, for ten minutes at most.
pub(super) async fn wait_all_succeeded(store: &Store, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let counts = store.count_runs_by_state().await?;
        let done = counts
            .iter()
            .find(|(s, _)| *s == RunState::Succeeded)
            .map_or(0, |(_, n)| *n);
        if usize::try_from(done).unwrap_or(0) >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {done} of {count} runs succeeded within 10 minutes: {counts:?}");
        }
        // Throughput comes from committed timestamps, so polling slowly costs
        // no accuracy and leaves the CPU to the worker and Postgres.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks every run and step executed exactly once.
pub(super) async fn exactly_once(
    store: &Store,
    runs: usize,
    steps_per_run: usize,
) -> anyhow::Result<Value> {
    let violations = store.audit_exactly_once().await?;
    let steps = store.count_succeeded_steps().await?;
    let expected = i64::try_from(runs * steps_per_run)?;
    let ok = violations.is_empty() && steps == expected;
    Ok(json!({
        "exactly_once": ok,
        "steps_committed": steps,
        "steps_expected": expected,
        "violations": violations.iter().take(5).collect::<Vec<_>>(),
    }))
}

/// Runs per second between the first step's start and the last step's finish.
pub(super) async fn drain_rate(store: &Store, count: usize) -> anyhow::Result<f64> {
    let (first, last) = store.step_time_span().await?.context("no step ran")?;
    let seconds = (last - first).num_microseconds().unwrap_or(1) as f64 / 1e6;
    Ok(count as f64 / seconds.max(1e-6))
}
