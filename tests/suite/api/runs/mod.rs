//! `/v1/runs` and `/metrics` of a real `hubwright serve --api` process over
//! HTTP: authentication, visibility, operator actions, the live timeline, and
//! problem+json for every kind of bad request. The run list, the timeline and
//! retries have files of their own.

use std::time::Duration;

use hubwright_state::model::{Role, RunState};
use hubwright_state::{Clock, SystemClock};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, factory, scratch_dir, wait, write_workflow};
use serde_json::json;

/// A server with no templates of its own: the runs come from the factory.
async fn serve(db: &TestDatabase) -> ApiServer {
    ApiServer::start(db, &scratch_dir("no-workflows"), &[]).await
}

mod events;
mod list;
mod retry;
mod step_events;

#[tokio::test]
async fn a_request_without_a_valid_token_is_refused() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let run = factory::pending_run(&db.store, "alice").await;
    let path = format!("/v1/runs/{run}");

    let none = server.get(&path).send().await;
    none.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let not_bearer = server
        .get(&path)
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .send()
        .await;
    not_bearer.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = server.get(&path).token("hw_0000").send().await;
    wrong.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong.body["detail"], "the token is unknown or revoked");

    let issued = db
        .store
        .create_token("alice", Role::Developer, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(
        server.get(&path).token(&issued.secret).send().await.status,
        StatusCode::OK
    );
    db.store
        .revoke_token(issued.id, SystemClock.now())
        .await
        .unwrap();
    let revoked = server.get(&path).token(&issued.secret).send().await;
    revoked.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn developers_see_their_own_runs_and_others_are_not_found() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let bob = token(&db.store, "bob", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let admin = token(&db.store, "root", Role::Admin).await;
    let run = factory::pending_run(&db.store, "alice").await;
    let path = format!("/v1/runs/{run}");

    let own = server.get(&path).token(&alice).send().await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["id"], run.to_string());
    assert_eq!(own.body["state"], "pending");
    assert_eq!(own.body["steps"].as_array().unwrap().len(), 2);
    let own_events = server
        .get(&format!("{path}/events"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(own_events.status, StatusCode::OK);

    let other = server.get(&path).token(&bob).send().await;
    other.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let events = server
        .get(&format!("{path}/events"))
        .token(&bob)
        .send()
        .await;
    events.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let stream = server
        .get(&format!("{path}/events"))
        .token(&bob)
        .header("accept", "text/event-stream")
        .send()
        .await;
    stream.assert_problem(StatusCode::NOT_FOUND, "not-found");

    for caller in [&ops, &admin] {
        let operator = server.get(&path).token(caller).send().await;
        assert_eq!(
            operator.status,
            StatusCode::OK,
            "operators and admins see every run"
        );
    }
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_developer_cannot_tell_anothers_run_from_a_missing_one() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let bob = token(&db.store, "bob", Role::Developer).await;
    let failed = factory::failed_run(&db.store, "alice", "boom").await;
    let missing = uuid::Uuid::now_v7();

    for (method, suffix) in [
        ("GET", ""),
        ("GET", "/events"),
        ("POST", "/retry"),
        ("POST", "/cancel"),
    ] {
        let theirs = server
            .request(method, &format!("/v1/runs/{failed}{suffix}"))
            .token(&bob)
            .send()
            .await;
        let nobodys = server
            .request(method, &format!("/v1/runs/{missing}{suffix}"))
            .token(&bob)
            .send()
            .await;
        assert_ne!(theirs.status, StatusCode::OK, "{method} {suffix}");
        assert_ne!(theirs.status, StatusCode::ACCEPTED, "{method} {suffix}");
        assert_eq!(theirs.status, nobodys.status, "{method} {suffix}");
        assert_eq!(
            theirs.body["type"], nobodys.body["type"],
            "{method} {suffix}"
        );
        assert_eq!(
            theirs.detail().replace(&failed.to_string(), "<id>"),
            nobodys.detail().replace(&missing.to_string(), "<id>"),
            "{method} {suffix}: the same words for someone else's run and a missing one"
        );
    }
    assert_eq!(
        db.store.run(failed).await.unwrap().state,
        RunState::Failed,
        "nothing changed"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn only_operators_cancel_and_an_operator_cancels_a_pending_run() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::pending_run(&db.store, "alice").await;
    let path = format!("/v1/runs/{run}/cancel");

    let developer = server.post(&path).token(&alice).send().await;
    developer.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(db.store.run(run).await.unwrap().state, RunState::Pending);

    let reply = server
        .post(&path)
        .token(&ops)
        .body("application/json", "")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body["status"], "cancelled");
    assert_eq!(db.store.run(run).await.unwrap().state, RunState::Cancelled);
    let again = server
        .post(&path)
        .token(&ops)
        .body("application/json", "")
        .send()
        .await;
    again.assert_problem(StatusCode::CONFLICT, "conflict");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn cancelling_a_run_in_flight_asks_its_worker_to_stop_it() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("block-workflows"),
        "slow",
        r#"
name: slow
workflows:
  provision:
    steps:
      - { name: long, kind: test-block, with: { duration: 30s } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#,
    );
    // A short lease: the heartbeat, which brings the worker the cancellation,
    // beats a few times a lease.
    let server = ApiServer::start(
        &db,
        &workflows,
        &["--worker", "--poll-interval", "100ms", "--lease", "3s"],
    )
    .await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let created = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({"name": "slow", "template": "slow"}))
        .send()
        .await;
    let run: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();
    wait::run_state(&db.store, run, RunState::Running, Duration::from_secs(20)).await;

    let reply = server
        .post(&format!("/v1/runs/{run}/cancel"))
        .token(&ops)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
    assert_eq!(
        reply.body,
        json!({"run_id": run.to_string(), "status": "cancel_requested"})
    );
    wait::run_state(&db.store, run, RunState::Cancelled, Duration::from_secs(10)).await;
    let shown = server
        .get(&format!("/v1/runs/{run}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(shown.body["state"], "cancelled");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn metrics_show_runs_by_state_the_queue_and_requests_to_operators() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    factory::pending_run(&db.store, "alice").await;
    factory::failed_run(&db.store, "alice", "boom").await;

    let anonymous = server.get("/metrics").send().await;
    anonymous.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let developer = server.get("/metrics").token(&alice).send().await;
    developer.assert_problem(StatusCode::FORBIDDEN, "forbidden");

    let reply = server.get("/metrics").token(&ops).send().await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.text();
    assert!(
        text.contains("hubwright_runs{state=\"pending\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("hubwright_runs{state=\"failed\"} 1"),
        "{text}"
    );
    assert!(text.contains("hubwright_queue_depth 1\n"), "{text}");
    assert!(
        text.contains("hubwright_queue_oldest_due_seconds "),
        "{text}"
    );
    assert!(
        text.contains(
            r#"hubwright_http_requests_total{method="GET",route="/metrics",status="403"} 1"#
        ),
        "requests are counted by route template: {text}"
    );
    drop(server);
    db.drop_now().await;
}
