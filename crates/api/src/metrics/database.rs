//! Gauges read from the database at scrape time: runs by state, the queue's
//! depth and age, approvals waiting for a decision, environments past their
//! expiry. Written by hand (the facade keeps no per-scrape values), each
//! with its `# HELP`.
//!
//! Only processes that run the API write them, and every API replica
//! writes the same figures: aggregate with `max`, not `sum`.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use hubwright_state::Store;

/// Appends the database gauges at `now` to `out`.
pub(super) async fn write_gauges(
    out: &mut String,
    store: &Store,
    now: DateTime<Utc>,
) -> hubwright_state::Result<()> {
    let by_state = store.count_runs_by_state().await?;
    let queue = store.queue_stats(now).await?;
    let attention = store.attention(now).await?;
    gauge_header(
        out,
        "hubwright_runs",
        "Runs by state, read from the database.",
    );
    for (run_state, count) in by_state {
        let _ = writeln!(out, "hubwright_runs{{state=\"{run_state}\"}} {count}");
    }
    gauge(
        out,
        "hubwright_queue_depth",
        "Runs due now and not yet claimed.",
        queue.due as f64,
    );
    gauge(
        out,
        "hubwright_queue_oldest_due_seconds",
        "How long the longest-waiting due run has waited.",
        queue.oldest_due_seconds,
    );
    gauge(
        out,
        "hubwright_approvals_pending",
        "Approvals waiting for a decision.",
        attention.approvals_pending as f64,
    );
    gauge(
        out,
        "hubwright_environments_past_expiry",
        "Environments whose expiry has passed that are not deleted yet.",
        attention.past_expiry as f64,
    );
    gauge(
        out,
        "hubwright_environment_oldest_past_expiry_seconds",
        "How long ago the longest-overdue environment not yet deleted expired (0 when none).",
        attention.oldest_past_expiry_seconds,
    );
    Ok(())
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    gauge_header(out, name, help);
    let _ = writeln!(out, "{name} {value}");
}
