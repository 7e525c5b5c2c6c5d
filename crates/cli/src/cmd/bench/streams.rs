//! `hubwright bench streams`: what open event streams cost. One `serve --api`
//! child; `streams` SSE streams follow one live run (ten developer tokens of
//! the run's owner, each under the default per-token cap of 20); meanwhile
//! another user lists environments every 50 ms. Measured: the database's
//! transactions per second (`pg_stat_database`) while the streams are open
//! and idle, the other user's list latency without and with the streams, and
//! that one new event then reaches every stream.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hubwright_state::model::Role;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::{Clock, SystemClock};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::fixture::prepare;
use super::process::Child;
use super::workloads::{percentile, round};

/// Streams per token: the default `--max-streams-per-token`.
const PER_TOKEN: usize = 20;
/// Long enough that backends' statistics (flushed within ~10 s of going
/// idle) and the 30 s fallback read are both inside the window.
const WINDOW: Duration = Duration::from_secs(40);
/// Time for the statistics of opening the streams to land before measuring.
const SETTLE: Duration = Duration::from_secs(12);

/// Runs the workload with `streams` open streams.
pub(super) async fn streams(url: &str, streams: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 1).await?;
    let now = SystemClock.now();
    let run = NewRun::new(definition_id, &snapshot, json!({}), "alice", now);
    // No worker: the run stays pending, so its streams stay open and idle.
    let run_id = store.enqueue(&run, now).await?;
    let tokens = (0..streams.div_ceil(PER_TOKEN))
        .map(|_| store.create_token("alice", Role::Developer, now))
        .collect::<futures_util::future::TryJoinAll<_>>()
        .await?;
    let bob = store
        .create_token("bob", Role::Developer, now)
        .await?
        .secret;
    let api = Child::serve(url, &["--api", "--listen", "127.0.0.1:0"], "api listening").await?;
    let base = api.api_url()?;
    let client = hubwright_http::client();

    let baseline = list_latencies(&client, &base, &bob, Duration::from_secs(10)).await?;

    let (opened_tx, mut opened) = tokio::sync::mpsc::channel::<()>(streams);
    let mut followers = JoinSet::new();
    for i in 0..streams {
        let request = client
            .get(format!("{base}/v1/runs/{run_id}/events"))
            .bearer_auth(&tokens[i / PER_TOKEN].secret)
            .header("accept", "text/event-stream");
        let opened = opened_tx.clone();
        followers.spawn(async move { follow(request, opened).await });
    }
    for _ in 0..streams {
        if tokio::time::timeout(Duration::from_secs(30), opened.recv())
            .await
            .ok()
            .flatten()
            .is_none()
        {
            bail!("not every stream opened within 30 s");
        }
    }
    tokio::time::sleep(SETTLE).await;

    // Idle streams: nothing else touches the database.
    let before = store.transactions_so_far().await?;
    tokio::time::sleep(WINDOW).await;
    let idle_tx = store.transactions_so_far().await? - before;
    // The measurement's own two reads are not the streams'.
    let idle_tx_per_s = (idle_tx - 2) as f64 / WINDOW.as_secs_f64();

    let with_streams = list_latencies(&client, &base, &bob, Duration::from_secs(20)).await?;

    // One event (the cancellation) must reach every stream, which then ends.
    let delivered_at = Instant::now();
    store.cancel_run(run_id, "bench", SystemClock.now()).await?;
    let mut delivered = 0;
    let mut last_ms = 0.0;
    while let Ok(Some(ended)) =
        tokio::time::timeout(Duration::from_secs(30), followers.join_next()).await
    {
        if ended.context("a stream follower panicked")? {
            delivered += 1;
            last_ms = delivered_at.elapsed().as_secs_f64() * 1000.0;
        }
    }
    let cpu = api.cpu_seconds();
    let rss = api.peak_rss_mib();
    let anon = api.peak_anon_mib();
    api.stop().await?;
    Ok(json!({
        "workload": "streams",
        "streams": streams,
        "tokens": tokens.len(),
        "idle_window_s": WINDOW.as_secs(),
        "idle_db_transactions_per_s": round2(idle_tx_per_s),
        "list_latency_ms_without_streams": summary(&baseline),
        "list_latency_ms_with_streams": summary(&with_streams),
        "event_reached_streams": delivered,
        "event_reached_all_within_ms": round(last_ms),
        "api_cpu_s": cpu.map(round),
        "api_peak_rss_mib": rss.map(round),
        "api_peak_anon_mib": anon.map(round),
        "exactly_once": delivered == streams,
    }))
}

/// Follows one stream: says when it is open (its first event arrived), then
/// reads until the run's cancellation; true when it arrived.
async fn follow(request: reqwest::RequestBuilder, opened: tokio::sync::mpsc::Sender<()>) -> bool {
    let Ok(mut response) = request.send().await else {
        return false;
    };
    if !response.status().is_success() {
        return false;
    }
    let mut text = String::new();
    let mut said = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if !said && text.contains("event: run_created") {
            said = true;
            let _ = opened.send(()).await;
        }
        if text.contains("event: run_cancelled") {
            return true;
        }
    }
    false
}

/// `GET /v1/environments` as `token` every 50 ms for `window`; each latency in ms, sorted.
async fn list_latencies(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    window: Duration,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let end = Instant::now() + window;
    while Instant::now() < end {
        tick.tick().await;
        let started = Instant::now();
        let response = client
            .get(format!("{base}/v1/environments"))
            .bearer_auth(token)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("listing environments answered {}", response.status());
        }
        response.bytes().await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Count, p50, p99 and max of sorted latencies (ms).
pub(super) fn summary(sorted: &[f64]) -> Value {
    json!({
        "requests": sorted.len(),
        "p50": round(percentile(sorted, 0.50)),
        "p99": round(percentile(sorted, 0.99)),
        "max": round(percentile(sorted, 1.0)),
    })
}

/// Rounded to two decimals.
pub(super) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
