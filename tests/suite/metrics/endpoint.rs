//! A worker-only `serve` scraped on its own port: the step metrics it
//! recorded, and probes that answer before the database does.

use hubwright_state::model::{Role, RunState};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::wait;
use serde_json::json;

use super::{Served, WITHIN, sample, setup};

#[tokio::test]
async fn a_workers_metrics_endpoint_exposes_step_metrics_after_a_run() {
    let (db, dir) = setup().await;
    // The API in a process of its own, so this process's metrics are the
    // worker's alone.
    let api = ApiServer::start_process(crate::BIN, &db, &dir, &[]).await;
    let worker = Served::start(&db.url, &dir, &["--worker"]).await;
    worker.ready().await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let mut runs = Vec::new();
    for (name, template) in [("ok", "works"), ("no", "refused")] {
        let created = api
            .post("/v1/environments")
            .token(&alice)
            .json(&json!({ "name": name, "template": template }))
            .send()
            .await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
        runs.push(created.body["run_id"].as_str().unwrap().parse().unwrap());
    }
    wait::run_state(&db.store, runs[0], RunState::Succeeded, WITHIN).await;
    wait::run_state(&db.store, runs[1], RunState::Failed, WITHIN).await;

    let (status, text) = worker.get("/metrics").await;
    assert_eq!(status, 200);
    let expect = [
        (
            r#"hubwright_step_executions_total{kind="noop",outcome="done",reason="none"}"#,
            1.0,
        ),
        (
            r#"hubwright_step_executions_total{kind="test-flaky",outcome="retry",reason="retryable_http_5xx"}"#,
            1.0,
        ),
        (
            r#"hubwright_step_executions_total{kind="test-flaky",outcome="done",reason="none"}"#,
            1.0,
        ),
        (
            r#"hubwright_step_executions_total{kind="test-fail",outcome="fail",reason="permanent_forbidden"}"#,
            1.0,
        ),
        (
            r#"hubwright_step_failures_total{kind="test-flaky",reason="retryable_http_5xx"}"#,
            1.0,
        ),
        (
            r#"hubwright_step_failures_total{kind="test-fail",reason="permanent_forbidden"}"#,
            1.0,
        ),
        (
            r#"hubwright_step_duration_seconds_count{kind="test-flaky"}"#,
            2.0,
        ),
        (
            r#"hubwright_time_to_ready_seconds_count{template="works"}"#,
            1.0,
        ),
        // Two claims of a new run and one of the retry.
        ("hubwright_queue_wait_seconds_count", 3.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
    assert!(
        sample(&text, "hubwright_worker_heartbeat_timestamp_seconds").is_some_and(|at| at > 0.0),
        "{text}"
    );
    assert!(text.contains("hubwright_build_info{version="), "{text}");
    // The database gauges come from processes that run the API only.
    assert!(!text.contains("hubwright_queue_depth"), "{text}");
    assert!(!text.contains("hubwright_http_requests_total"), "{text}");
    assert_eq!(worker.get("/healthz").await.0, 200);
    drop(worker);
    drop(api);
    db.drop_now().await;
}

#[tokio::test]
async fn metrics_and_probes_answer_while_the_database_is_awaited() {
    let (_db, dir) = setup().await;
    // Nothing listens on port 1: `serve` waits for the database forever.
    let url = "postgres://root@127.0.0.1:1/hubwright";
    let worker = Served::start(url, &dir, &["--worker"]).await;
    let (status, said) = worker.get("/readyz").await;
    assert_eq!(status, 503, "{said}");
    let said: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(
        said["reason"], "waiting for the database at 127.0.0.1:1",
        "{said}"
    );
    assert_eq!(worker.get("/healthz").await.0, 200);
    let (status, metrics) = worker.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("hubwright_build_info{"), "{metrics}");
}
