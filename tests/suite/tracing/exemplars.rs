//! Exemplars: with traces exported, an OpenMetrics scrape of a worker's
//! metrics port carries, on the step-duration buckets, the trace and the
//! step span of the latest execution in each bucket; Prometheus text, the
//! default answer, carries none.

use std::path::Path;

use hubwright_state::model::{Role, RunState};
use hubwright_testkit::openmetrics;
use hubwright_testkit::otlp::Collector;
use hubwright_testkit::process::Process;
use hubwright_testkit::server::{ApiServer, token};
use serde_json::json;

use super::exporting;
use crate::BIN;
use crate::metrics::{WITHIN, setup};

/// What Prometheus 2.x sends (and 3.x, with other qualities).
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `GET url` with `accept`: the content type and the body.
pub async fn scrape(url: &str, accept: Option<&str>) -> (String, String) {
    let mut request = hubwright_http::client().get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let reply = request.send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let content_type = reply.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, reply.text().await.unwrap())
}

#[tokio::test]
async fn an_openmetrics_scrape_of_a_tracing_worker_carries_the_runs_trace_and_step_spans_as_exemplars()
 {
    let collector = Collector::start().await;
    let (db, dir) = setup().await;
    let api = ApiServer::start_process_with_env(
        BIN,
        &db,
        &dir,
        &[],
        &exporting(&collector, "hubwright-api"),
    )
    .await;
    let workflows = dir.display().to_string();
    let worker = Process::start_with_env(
        Path::new(BIN),
        &db.url,
        &["serve", "--worker", "--workflows", &workflows]
            .into_iter()
            .chain([
                "--poll-interval",
                "100ms",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .collect::<Vec<_>>(),
        &exporting(&collector, "hubwright-worker"),
        &dir.join("worker.log"),
    );
    let address = worker
        .wait_for_logged("metrics listening", "address", WITHIN)
        .await;
    let metrics = format!("http://{address}/metrics");
    let alice = token(&db.store, "alice", Role::Developer).await;

    let traced = json!({ "name": "traced", "template": "works" });
    let run_id = super::request_until(&api, &db, &alice, traced, RunState::Succeeded)
        .await
        .run;
    let trace_id = super::trace_of(&api, &alice, run_id).await;

    let (content_type, text) = scrape(&metrics, Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let exposition = openmetrics::parse(&text).unwrap_or_else(|why| panic!("{why}\n{text}"));
    let durations = exposition
        .family("hubwright_step_duration_seconds")
        .unwrap_or_else(|| panic!("no step durations:\n{text}"));
    let exemplar_of = |kind: &str| {
        let found: Vec<&openmetrics::Exemplar> = durations
            .samples
            .iter()
            .filter(|sample| sample.label("kind") == Some(kind))
            .filter_map(|sample| sample.exemplar.as_ref())
            .collect();
        assert!(!found.is_empty(), "no exemplar for {kind}:\n{text}");
        for exemplar in &found {
            assert_eq!(exemplar.label("trace_id"), Some(trace_id.as_str()));
            assert!(exemplar.timestamp.is_some(), "{exemplar:?}");
        }
        found
    };
    let first = exemplar_of("noop");
    let flaky = exemplar_of("test-flaky");
    // Exemplars sit on bucket lines only (queue wait, observed in the run's
    // span, and time to ready, in the step's, have theirs too).
    for (sample, _) in exposition.exemplars() {
        assert!(
            sample.name.ends_with("_bucket"),
            "an exemplar off a bucket: {sample:?}"
        );
    }

    // Each exemplar's span is the step's execution in the exported trace.
    let spans = collector
        .wait_for("the run's step spans", WITHIN, |spans| {
            let of = |name: &str| {
                spans
                    .iter()
                    .filter(|s| s.trace_id == trace_id && s.name == name)
                    .count()
            };
            of("step first") == 1 && of("step flaky") == 2
        })
        .await;
    let step_span_ids = |name: &str| -> Vec<String> {
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id && s.name == name)
            .map(|s| s.span_id.clone())
            .collect()
    };
    assert_eq!(
        first
            .iter()
            .map(|e| e.label("span_id").unwrap().to_owned())
            .collect::<Vec<_>>(),
        step_span_ids("step first")
    );
    let flaky_spans = step_span_ids("step flaky");
    for exemplar in &flaky {
        assert!(
            flaky_spans
                .iter()
                .any(|id| Some(id.as_str()) == exemplar.label("span_id")),
            "{exemplar:?} is one of the flaky step's executions {flaky_spans:?}"
        );
    }

    // Prometheus text, the default, is as it was: no exemplars, no EOF.
    let (content_type, plain) = scrape(&metrics, None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4");
    assert!(plain.contains("hubwright_step_duration_seconds_bucket{kind=\"noop\",le=\"+Inf\"} 1"));
    assert!(
        !plain.contains("# {") && !plain.contains("# EOF"),
        "{plain}"
    );
}
