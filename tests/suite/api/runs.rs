//! `/v1/runs` and `/metrics` of a real `hubwright serve --api` process over
//! HTTP: authentication, visibility, operator actions, the live timeline, and
//! problem+json for every kind of bad request.

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
async fn the_timeline_pages_by_event_id() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let run = factory::failed_run(&db.store, "alice", "boom").await;
    let kinds = |reply: &hubwright_testkit::server::Reply| -> Vec<String> {
        reply.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };

    let first = server
        .get(&format!("/v1/runs/{run}/events?limit=2"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(kinds(&first), ["run_created", "step_started"]);
    let after = first.body["next_after"].as_i64().unwrap();
    let rest = server
        .get(&format!("/v1/runs/{run}/events?after={after}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(kinds(&rest), ["step_failed", "run_failed"]);

    let bad = server
        .get(&format!("/v1/runs/{run}/events?limit=0"))
        .token(&alice)
        .send()
        .await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(bad.body["detail"], "limit: must be between 1 and 1000");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn only_operators_retry_and_a_retry_resumes_the_failed_run() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::failed_run(&db.store, "alice", "namespaces is forbidden").await;
    let path = format!("/v1/runs/{run}/retry");

    let developer = server
        .post(&path)
        .token(&alice)
        .json(&json!({}))
        .send()
        .await;
    developer.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        db.store.run(run).await.unwrap().state,
        RunState::Failed,
        "nothing changed"
    );

    let too_far = server
        .post(&path)
        .token(&ops)
        .json(&json!({"from_step": 1}))
        .send()
        .await;
    too_far.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(
        too_far
            .detail()
            .starts_with("from_step: must be between 0 and 0")
    );

    let accepted = server
        .post(&path)
        .token(&ops)
        .body("application/json", "")
        .send()
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    assert_eq!(
        accepted.body,
        json!({"run_id": run.to_string(), "resumes_at_step": 0})
    );
    assert_eq!(db.store.run(run).await.unwrap().state, RunState::Pending);
    let retried = db.store.events(run, 0, 100).await.unwrap();
    assert!(
        retried
            .iter()
            .any(|e| e.kind == "run_retried" && e.actor == "ops"),
        "the operator is on the timeline"
    );

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
async fn bad_requests_get_problems_not_500s() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::failed_run(&db.store, "alice", "boom").await;
    let retry = format!("/v1/runs/{run}/retry");
    let post = |content_type: &str, body: Vec<u8>| {
        server
            .post(&retry)
            .token(&ops)
            .body(content_type, body)
            .send()
    };

    let malformed = post("application/json", b"{not json".to_vec()).await;
    malformed.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    let wrong_type = post("text/plain", b"from_step=0".to_vec()).await;
    wrong_type.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let unknown_field = post("application/json", br#"{"step": 0}"#.to_vec()).await;
    unknown_field.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(unknown_field.detail().contains("unknown field `step`"));
    let not_text = post("application/json", vec![b'{', b'"', 0xff, 0xfe, b'"', b'}']).await;
    not_text.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    let wrong_type_field = post("application/json", br#"{"from_step": "first"}"#.to_vec()).await;
    wrong_type_field.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    let huge = format!(r#"{{"from_step": 0, "pad": "{}"}}"#, "x".repeat(100_000));
    let too_large = post("application/json", huge.into_bytes()).await;
    too_large.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");

    let not_a_uuid = server.get("/v1/runs/not-a-uuid").token(&ops).send().await;
    not_a_uuid.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    let missing = server
        .get(&format!("/v1/runs/{}", uuid::Uuid::now_v7()))
        .token(&ops)
        .send()
        .await;
    missing.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let unknown_route = server.get("/v1/nothing").token(&ops).send().await;
    unknown_route.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let wrong_method = server.delete(&format!("/v1/runs/{run}/retry")).send().await;
    wrong_method.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    let bad_resume = server
        .get(&format!("/v1/runs/{run}/events"))
        .token(&ops)
        .header("accept", "text/event-stream")
        .header("last-event-id", "yesterday")
        .send()
        .await;
    bad_resume.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(bad_resume.detail().starts_with("Last-Event-ID: "));

    assert_eq!(
        db.store.run(run).await.unwrap().state,
        RunState::Failed,
        "no bad request changed anything"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn server_sent_events_follow_a_run_live_until_it_ends() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::pending_run(&db.store, "alice").await;
    let path = format!("/v1/runs/{run}/events");
    let stream = |last_event_id: Option<i64>| {
        let call = server
            .get(&path)
            .token(&ops)
            .header("accept", "text/event-stream");
        match last_event_id {
            Some(id) => call.header("last-event-id", &id.to_string()),
            None => call,
        }
    };

    let following = tokio::spawn(stream(None).send());
    // The run is live: the stream waits for more until the cancel ends it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !following.is_finished(),
        "the stream stays open while the run is live"
    );
    db.store
        .cancel_run(run, "ops", SystemClock.now())
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), following)
        .await
        .expect("the stream ends once the run has ended")
        .unwrap();
    assert_eq!(reply.content_type(), "text/event-stream");
    let events = reply.sse_events();
    let kinds: Vec<&str> = events.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kinds, ["run_created", "run_cancelled"]);
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "in order");

    // Reconnecting with Last-Event-ID resumes after it.
    let resumed = stream(Some(events[0].0)).send().await;
    assert_eq!(resumed.content_type(), "text/event-stream");
    assert_eq!(resumed.sse_events(), events[1..]);
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn server_sent_events_deliver_every_event_of_an_executed_run_in_order() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("sse-workflows"),
        "lab",
        r#"
name: lab
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: warm-up, kind: sleep, with: { duration: 300ms } }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#,
    );
    // The same process executes the run while it streams it.
    let server = ApiServer::start(&db, &workflows, &["--worker", "--poll-interval", "100ms"]).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let created = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({"name": "lab-1", "template": "lab"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let run: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();

    let streamed = server
        .get(&format!("/v1/runs/{run}/events"))
        .token(&alice)
        .header("accept", "text/event-stream")
        .send()
        .await;
    assert_eq!(streamed.status, StatusCode::OK);
    let events = streamed.sse_events();
    assert!(
        events.windows(2).all(|w| w[0].0 < w[1].0),
        "ids only grow: {events:?}"
    );
    let stored: Vec<(i64, String)> = db
        .store
        .events(run, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.kind))
        .collect();
    assert_eq!(events, stored, "every event, once, as stored");
    assert_eq!(events.first().unwrap().1, "run_created");
    assert_eq!(events.last().unwrap().1, "run_succeeded");
    let steps_started = events.iter().filter(|(_, k)| k == "step_started").count();
    assert_eq!(steps_started, 3);
    wait::run_state(&db.store, run, RunState::Succeeded, Duration::from_secs(5)).await;
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
