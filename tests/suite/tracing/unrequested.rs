//! Runs no environment request started have traces too: an expired
//! environment's teardown is in the trace of the scheduler batch that
//! expired it, a deleted one's in the DELETE request's, and a retried run's
//! new attempts are in the retry request's trace, which links to the trace
//! of the earlier ones.

use std::path::Path;

use hubwright_state::model::{Role, RunState};
use hubwright_state::{Clock, SystemClock};
use hubwright_testkit::otlp::{Collector, ReceivedSpan};
use hubwright_testkit::process::Process;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::wait;
use serde_json::json;

use super::{descends, exporting, named};
use crate::BIN;
use crate::metrics::{WITHIN, setup};

/// `serve <roles…>` exporting to `collector` as `service`, fast.
fn serving(collector: &Collector, dir: &Path, url: &str, roles: &[&str], service: &str) -> Process {
    let workflows = dir.display().to_string();
    let args: Vec<&str> = ["serve", "--workflows", &workflows]
        .into_iter()
        .chain(roles.iter().copied())
        .chain(["--poll-interval", "100ms", "--lease", "2s"])
        .collect();
    Process::start_with_env(
        Path::new(BIN),
        url,
        &args,
        &exporting(collector, service),
        &dir.join(format!("{service}.log")),
    )
}

/// An API process and a worker, both exporting to one collector.
struct Traced {
    collector: Collector,
    db: hubwright_testkit::TestDatabase,
    api: ApiServer,
    _worker: Process,
}

impl Traced {
    async fn start() -> Self {
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
        let _worker = serving(&collector, &dir, &db.url, &["--worker"], "hubwright-worker");
        Self {
            collector,
            db,
            api,
            _worker,
        }
    }
}

#[tokio::test]
async fn an_expired_environments_teardown_is_in_the_trace_of_the_scheduler_batch_that_expired_it() {
    let collector = Collector::start().await;
    let (db, dir) = setup().await;
    let api = ApiServer::start_process(BIN, &db, &dir, &[]).await;
    let worker = serving(
        &collector,
        &dir,
        &db.url,
        &["--worker", "--scheduler"],
        "hubwright-worker",
    );
    worker.wait_for_log("scheduler started", WITHIN).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let expiring = json!({ "name": "expiring", "template": "works", "ttl": "1h" });
    let requested = super::request_until(&api, &db, &alice, expiring, RunState::Succeeded).await;
    let (env, provision) = (requested.env, requested.run);

    // Its time is up; the scheduler hears of it at once.
    sqlx::query("UPDATE environments SET expires_at = $2 WHERE id = $1")
        .bind(env)
        .bind(SystemClock.now())
        .execute(db.store.pool())
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('hubwright_expiry', '')")
        .execute(db.store.pool())
        .await
        .unwrap();

    let spans = collector
        .wait_for(
            "the expiry's trace down to the teardown step",
            WITHIN,
            |spans| super::hangs_under(spans, "scheduler expire environments", "step remove"),
        )
        .await;
    let pass = named(&spans, "scheduler expire environments")
        .into_iter()
        .find(|pass| {
            spans
                .iter()
                .any(|step| step.name == "step remove" && descends(&spans, step, pass))
        })
        .unwrap()
        .clone();
    assert_eq!(pass.parent_span_id, None, "the batch starts the trace");
    assert_eq!(pass.attribute("expired"), Some("1"), "{pass:#?}");
    assert_eq!(pass.service, "hubwright-worker");
    let trace: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == pass.trace_id)
        .cloned()
        .collect();
    let runs = named(&trace, "run");
    assert_eq!(runs.len(), 1, "{trace:#?}");
    assert_eq!(
        runs[0].parent_span_id.as_deref(),
        Some(pass.span_id.as_str())
    );
    let teardown: uuid::Uuid = runs[0].attribute("run_id").unwrap().parse().unwrap();
    assert_ne!(teardown, provision);

    // The teardown run names the batch's trace.
    let run = api
        .get(&format!("/v1/runs/{teardown}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(run.body["workflow"], "teardown", "{:#}", run.body);
    assert_eq!(
        run.body["trace_id"],
        pass.trace_id.as_str(),
        "{:#}",
        run.body
    );
    // The provisioning run is no part of it.
    assert!(
        spans
            .iter()
            .filter(|s| s.attribute("run_id") == Some(provision.to_string().as_str()))
            .all(|s| s.trace_id != pass.trace_id)
    );
}

#[tokio::test]
async fn a_retried_runs_new_attempts_are_in_the_retry_requests_trace_which_links_to_the_first() {
    let Traced {
        collector,
        db,
        api,
        _worker,
    } = Traced::start().await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let olga = token(&db.store, "olga", Role::Operator).await;
    let refused = json!({ "name": "refused", "template": "refused" });
    let run_id = super::request_until(&api, &db, &alice, refused, RunState::Failed)
        .await
        .run;
    let first_trace = super::trace_of(&api, &alice, run_id).await;

    let retried = api
        .post(&format!("/v1/runs/{run_id}/retry"))
        .token(&olga)
        .send()
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{:#}", retried.body);

    let spans = collector
        .wait_for(
            "the retry's trace down to the retried step",
            WITHIN,
            |spans| super::hangs_under(spans, "POST /v1/runs/{id}/retry", "step refused"),
        )
        .await;
    let retry = named(&spans, "POST /v1/runs/{id}/retry")[0].clone();
    assert_ne!(retry.trace_id, first_trace);
    // It links to the span the run's first context named: the environment
    // request's.
    let request = named(&spans, "POST /v1/environments")[0];
    assert_eq!(
        retry.links,
        vec![(first_trace.clone(), request.span_id.clone())],
        "{retry:#?}"
    );
    let second: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == retry.trace_id && s.name == "run")
        .collect();
    assert_eq!(second.len(), 1, "{second:#?}");
    assert_eq!(
        second[0].parent_span_id.as_deref(),
        Some(retry.span_id.as_str())
    );
    assert_eq!(
        second[0].attribute("run_id"),
        Some(run_id.to_string().as_str())
    );
    // The first attempt stays in the first trace.
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.name == "step refused" && s.trace_id == first_trace)
            .count(),
        1
    );

    // The run now names the retry's trace, and so does its retry event.
    wait::run_state(&db.store, run_id, RunState::Failed, WITHIN).await;
    let run = api
        .get(&format!("/v1/runs/{run_id}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(
        run.body["trace_id"],
        retry.trace_id.as_str(),
        "{:#}",
        run.body
    );
    let events = api
        .get(&format!("/v1/runs/{run_id}/events"))
        .token(&alice)
        .send()
        .await;
    let retried_event = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["kind"] == "run_retried")
        .cloned()
        .unwrap();
    assert_eq!(
        retried_event["data"]["trace_id"],
        retry.trace_id.as_str(),
        "{retried_event:#}"
    );
}

#[tokio::test]
async fn a_deleted_environments_teardown_is_in_the_delete_requests_trace() {
    let Traced {
        collector,
        db,
        api,
        _worker,
    } = Traced::start().await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let deleted = json!({ "name": "deleted", "template": "works" });
    super::request_until(&api, &db, &alice, deleted, RunState::Succeeded).await;

    let deleted = api
        .delete("/v1/environments/deleted")
        .token(&alice)
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:#}", deleted.body);
    let teardown: uuid::Uuid = deleted.body["run_id"].as_str().unwrap().parse().unwrap();
    let spans = collector
        .wait_for(
            "the delete's trace down to the teardown step",
            WITHIN,
            |spans| super::hangs_under(spans, "DELETE /v1/environments/{id}", "step remove"),
        )
        .await;
    let request = named(&spans, "DELETE /v1/environments/{id}")[0].clone();
    let run = spans
        .iter()
        .find(|s| s.name == "run" && s.trace_id == request.trace_id)
        .unwrap();
    assert_eq!(
        run.parent_span_id.as_deref(),
        Some(request.span_id.as_str())
    );
    assert_eq!(run.attribute("run_id"), Some(teardown.to_string().as_str()));
    let shown = api
        .get(&format!("/v1/runs/{teardown}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(
        shown.body["trace_id"],
        request.trace_id.as_str(),
        "{:#}",
        shown.body
    );
}
