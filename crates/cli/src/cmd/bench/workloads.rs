//! The workloads: each prepares a fresh database, drives a real `hubwright
//! serve` child and returns its figures as one JSON object.

use std::time::{Duration, Instant};

use anyhow::bail;
use hubwright_state::model::RunState;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::{Clock, SystemClock};
use serde_json::{Value, json};

use super::fixture::{drain_rate, exactly_once, insert_batch, prepare, wait_all_succeeded};
use super::process::{Child, machine_busy_seconds};

/// W1, drain: `jobs` single-step runs inserted in batches, then one worker
/// with `concurrency` drains them.
pub(super) async fn w1(url: &str, jobs: usize, concurrency: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 1).await?;
    let size_empty = store.database_size_bytes().await?;
    let insert_rate = insert_batch(&store, &snapshot, definition_id, jobs).await?;
    let size_before = store.database_size_bytes().await?;
    let worker = Child::start(url, concurrency).await?;
    let wall = Instant::now();
    let busy_before = machine_busy_seconds();
    wait_all_succeeded(&store, jobs).await?;
    let wall = wall.elapsed().as_secs_f64();
    let machine_busy = machine_busy_seconds()
        .zip(busy_before)
        .map(|(after, before)| after - before);
    let worker_cpu = worker.cpu_seconds();
    let rss = worker.peak_rss_mib();
    let anon = worker.peak_anon_mib();
    worker.stop().await?;
    let size_after = store.database_size_bytes().await?;
    let mut figures = json!({
        "workload": "w1",
        "runs": jobs,
        "concurrency": concurrency,
        "insert_runs_per_s": round(insert_rate),
        "drain_runs_per_s": round(drain_rate(&store, jobs).await?),
        "drain_wall_s": round(wall),
        "drain_worker_cpu_s": worker_cpu.map(round),
        "drain_machine_busy_cpu_s": machine_busy.map(round),
        "worker_peak_rss_mib": rss.map(round),
        "worker_peak_anon_mib": anon.map(round),
        "db_size_after_insert_mib": round(size_before as f64 / 1_048_576.0),
        "db_size_after_drain_mib": round(size_after as f64 / 1_048_576.0),
        // What the runs themselves cost, without the empty database's
        // catalog and schema (about 8 MiB): comparable across queues.
        "bytes_per_run_after_drain": round(size_after.saturating_sub(size_empty) as f64 / jobs.max(1) as f64),
    });
    merge(&mut figures, exactly_once(&store, jobs, 1).await?);
    Ok(figures)
}

/// W1b, enqueue: `jobs` runs accepted one awaited call at a time, no worker.
pub(super) async fn w1b(url: &str, jobs: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 1).await?;
    let started = Instant::now();
    for _ in 0..jobs {
        let now = SystemClock.now();
        let run = NewRun::new(definition_id, &snapshot, json!({}), "bench", now);
        store.enqueue(&run, now).await?;
    }
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    let pending = store
        .count_runs_by_state()
        .await?
        .iter()
        .find(|(s, _)| *s == RunState::Pending)
        .map_or(0, |(_, n)| *n);
    Ok(json!({
        "workload": "w1b",
        "runs": jobs,
        "enqueue_runs_per_s": round(rate),
        "exactly_once": usize::try_from(pending).unwrap_or(0) == jobs,
        "runs_pending": pending,
    }))
}

/// W2, durable workflows: `jobs` 4-step runs, each step committed before the next.
pub(super) async fn w2(url: &str, jobs: usize, concurrency: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 4).await?;
    insert_batch(&store, &snapshot, definition_id, jobs).await?;
    let worker = Child::start(url, concurrency).await?;
    wait_all_succeeded(&store, jobs).await?;
    let rss = worker.peak_rss_mib();
    let anon = worker.peak_anon_mib();
    worker.stop().await?;
    let workflows = drain_rate(&store, jobs).await?;
    let mut figures = json!({
        "workload": "w2",
        "runs": jobs,
        "steps_per_run": 4,
        "concurrency": concurrency,
        "workflows_per_s": round(workflows),
        "steps_per_s": round(workflows * 4.0),
        "worker_peak_rss_mib": rss.map(round),
        "worker_peak_anon_mib": anon.map(round),
    });
    merge(&mut figures, exactly_once(&store, jobs, 4).await?);
    Ok(figures)
}

/// W3, latency: runs enqueued 20 ms apart to an idle worker; how long each
/// waits to start.
pub(super) async fn w3(url: &str, jobs: usize, concurrency: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 1).await?;
    let worker = Child::start(url, concurrency).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..jobs {
        tick.tick().await;
        let now = SystemClock.now();
        let run = NewRun::new(definition_id, &snapshot, json!({}), "bench", now);
        store.enqueue(&run, now).await?;
    }
    wait_all_succeeded(&store, jobs).await?;
    let rss = worker.peak_rss_mib();
    let anon = worker.peak_anon_mib();
    worker.stop().await?;
    let latencies = store.start_latencies_ms().await?;
    let mut figures = json!({
        "workload": "w3",
        "runs": jobs,
        "interval_ms": 20,
        "start_latency_ms": {
            "p50": round(percentile(&latencies, 0.50)),
            "p95": round(percentile(&latencies, 0.95)),
            "p99": round(percentile(&latencies, 0.99)),
            "max": round(percentile(&latencies, 1.0)),
        },
        "worker_peak_rss_mib": rss.map(round),
        "worker_peak_anon_mib": anon.map(round),
    });
    merge(&mut figures, exactly_once(&store, jobs, 1).await?);
    Ok(figures)
}

/// TTL: `environments` ready environments all expire at one moment, five
/// seconds after a `serve --scheduler` child is up (no warnings, the default
/// one-minute sweep). Measured: from the expiry until every one has its
/// teardown run, and each teardown's lag behind its expiry; audited: exactly
/// one teardown run per environment.
pub(super) async fn ttl(url: &str, environments: usize) -> anyhow::Result<Value> {
    let (store, _, _) = prepare(url, 1).await?;
    let scheduler = Child::serve(
        url,
        &["--scheduler", "--expiry-warnings", ""],
        "scheduler started",
    )
    .await?;
    let now = SystemClock.now();
    let expires_at = now + chrono::Duration::seconds(5);
    let count = i64::try_from(environments)?;
    store
        .insert_expiring_environments("bench", count, expires_at, now)
        .await?;
    store.notify_expiry().await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let all_started = loop {
        let started = store
            .teardown_run_counts()
            .await?
            .iter()
            .filter(|(_, n)| *n > 0)
            .count();
        if started >= environments {
            break SystemClock.now();
        }
        if Instant::now() > deadline {
            bail!("only {started} of {environments} teardowns started within 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu = scheduler.cpu_seconds();
    let rss = scheduler.peak_rss_mib();
    let anon = scheduler.peak_anon_mib();
    scheduler.stop().await?;
    let lags = store.teardown_lags_ms().await?;
    let counts = store.teardown_run_counts().await?;
    let not_one = counts.iter().filter(|(_, n)| *n != 1).count();
    // The teardown runs' own timestamps say when the last one started; the
    // poll above only bounds it.
    let last_ms = lags.last().copied().unwrap_or(f64::NAN);
    Ok(json!({
        "workload": "ttl",
        "environments": environments,
        "all_in_teardown_after_s": round(last_ms / 1000.0),
        "observed_after_s": round((all_started - expires_at).num_milliseconds() as f64 / 1000.0),
        "teardown_lag_ms": {
            "p50": round(percentile(&lags, 0.50)),
            "p99": round(percentile(&lags, 0.99)),
            "max": round(last_ms),
        },
        "scheduler_cpu_s": cpu.map(round),
        "scheduler_peak_rss_mib": rss.map(round),
        "scheduler_peak_anon_mib": anon.map(round),
        "exactly_once": not_one == 0 && counts.len() == environments,
        "environments_without_exactly_one_teardown": not_one,
    }))
}

/// Nearest-rank percentile of sorted values.
pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(super) fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}
