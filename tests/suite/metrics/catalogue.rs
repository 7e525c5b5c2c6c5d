//! What every metric must carry, checked on everything one `serve` with
//! all roles exports after provisioning: `# HELP` text on every family, and
//! a `reason` label only from the set docs/operations.md documents.

use std::collections::BTreeSet;

use hubwright_state::model::Role;
use hubwright_testkit::server::token;
use hubwright_worker::cause::{Cause, all_reasons};

use super::{Served, setup};

/// Families `serve` with all roles exports once it has provisioned an
/// environment and failed another: the checks below must not pass on an
/// empty scrape.
const EXPECTED: &[&str] = &[
    "hubwright_build_info",
    "hubwright_step_executions_total",
    "hubwright_step_failures_total",
    "hubwright_step_duration_seconds",
    "hubwright_queue_wait_seconds",
    "hubwright_time_to_ready_seconds",
    "hubwright_worker_heartbeat_timestamp_seconds",
    "hubwright_scheduler_heartbeat_timestamp_seconds",
    "hubwright_environment_expiring",
    "hubwright_http_requests_total",
    "hubwright_http_request_duration_seconds",
    "hubwright_runs",
    "hubwright_queue_depth",
    "hubwright_queue_oldest_due_seconds",
    "hubwright_approvals_pending",
    "hubwright_environments_past_expiry",
    "hubwright_environment_oldest_past_expiry_seconds",
];

/// The families declared by `# TYPE` and `# HELP` lines.
fn declared(text: &str, comment: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix(comment))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every value a `reason="…"` label takes in `text`.
fn reasons(text: &str) -> BTreeSet<String> {
    text.split("reason=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_has_help_and_every_reason_is_a_documented_one() {
    let (db, dir) = setup().await;
    let served = Served::start(&db.url, &dir, &[]).await;
    served.ready().await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    super::one_success_and_one_failure(&served, &db, &alice).await;
    let client = hubwright_http::client();

    let (status, text) = served.get("/metrics").await;
    assert_eq!(status, 200);
    let typed = declared(&text, "# TYPE ");
    let helped = declared(&text, "# HELP ");
    for family in EXPECTED {
        assert!(typed.contains(*family), "{family} missing from:\n{text}");
    }
    let undescribed: Vec<_> = typed.difference(&helped).collect();
    assert!(
        undescribed.is_empty(),
        "no # HELP for {undescribed:?} in:\n{text}"
    );

    let documented: BTreeSet<String> = all_reasons().into_iter().collect();
    let seen = reasons(&text);
    assert!(
        seen.contains("permanent_forbidden") && seen.contains("retryable_http_5xx"),
        "{seen:?}"
    );
    let undocumented: Vec<_> = seen.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "undocumented reasons {undocumented:?}"
    );
    // The API keeps its /metrics, for operators only.
    let anonymous = client
        .get(format!("{}/metrics", served.api))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    drop(served);
    db.drop_now().await;
}

#[test]
fn the_operations_guide_documents_every_cause_of_the_reason_label() {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
    )
    .unwrap();
    let section = guide
        .split("### Step failure reasons")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/operations.md has a section `### Step failure reasons`");
    for cause in Cause::ALL {
        let row = format!("| `{}` |", cause.as_str());
        assert!(
            section.contains(&row),
            "no row {row} under Step failure reasons"
        );
    }
    let rows = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .count();
    assert_eq!(
        rows,
        Cause::ALL.len(),
        "a row for a cause that does not exist:\n{section}"
    );
}
