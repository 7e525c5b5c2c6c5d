//! `GET /metrics`: Prometheus text. Counters and histograms come from the
//! `metrics` facade (the worker records steps, this crate records requests);
//! gauges about runs and the queue are read from the database at scrape time,
//! so every replica reports the same, true figures.

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use hubwright_state::model::Role;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets for step and request durations, in seconds: from a fast API call to
/// a slow Helm release.
const BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0];

/// Installs the process-wide recorder once. `None` when another recorder was
/// installed first (then only the database gauges are exported).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Counts and times every request by route template (not raw path, so ids do
/// not explode the label set).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("hubwright_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("hubwright_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The scrape. Needs an operator token, like everything but the probes.
pub async fn scrape(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Role::Operator)?;
    let mut out = String::new();
    if let Some(handle) = install() {
        handle.run_upkeep();
        out.push_str(&handle.render());
    }
    let now = state.clock.now();
    let by_state = state.store.count_runs_by_state().await?;
    let queue = state.store.queue_stats(now).await?;
    let _ = writeln!(out, "# HELP hubwright_runs Runs by state.");
    let _ = writeln!(out, "# TYPE hubwright_runs gauge");
    for (run_state, count) in by_state {
        let _ = writeln!(out, "hubwright_runs{{state=\"{run_state}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP hubwright_queue_depth Runs due now and not yet claimed."
    );
    let _ = writeln!(out, "# TYPE hubwright_queue_depth gauge");
    let _ = writeln!(out, "hubwright_queue_depth {}", queue.due);
    let _ = writeln!(
        out,
        "# HELP hubwright_queue_oldest_due_seconds How long the longest-waiting due run has waited."
    );
    let _ = writeln!(out, "# TYPE hubwright_queue_oldest_due_seconds gauge");
    let _ = writeln!(
        out,
        "hubwright_queue_oldest_due_seconds {}",
        queue.oldest_due_seconds
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
