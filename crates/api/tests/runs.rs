//! `/v1/runs` against a real database: authentication, visibility, operator
//! actions, and problem+json for every kind of bad request.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hubwright_state::model::{Role, RunState};
use hubwright_state::{Clock, Store, SystemClock};
use hubwright_testkit::{TestDatabase, factory};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
}

async fn call(store: &Store, request: Request<Body>) -> Reply {
    let response = hubwright_api::router(store.clone(), Default::default())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn token(store: &Store, subject: &str, role: Role) -> String {
    store
        .create_token(subject, role, SystemClock.now())
        .await
        .unwrap()
        .secret
}

fn get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn post(path: &str, token: &str, content_type: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn assert_problem(reply: &Reply, status: StatusCode, kind: &str) {
    assert_eq!(reply.status, status, "{:#}", reply.body);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["type"], format!("urn:hubwright:problem:{kind}"));
    assert_eq!(reply.body["status"], status.as_u16());
    assert!(reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn a_request_without_a_valid_token_is_refused() {
    let db = TestDatabase::create().await;
    let run = factory::pending_run(&db.store, "alice").await;
    let path = format!("/v1/runs/{run}");

    let none = call(&db.store, Request::get(&path).body(Body::empty()).unwrap()).await;
    assert_problem(&none, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = call(&db.store, get(&path, "hw_0000")).await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong.body["detail"], "the token is unknown or revoked");

    let issued = db
        .store
        .create_token("alice", Role::Developer, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(
        call(&db.store, get(&path, &issued.secret)).await.status,
        StatusCode::OK
    );
    db.store
        .revoke_token(issued.id, SystemClock.now())
        .await
        .unwrap();
    let revoked = call(&db.store, get(&path, &issued.secret)).await;
    assert_problem(&revoked, StatusCode::UNAUTHORIZED, "unauthorized");
    db.drop_now().await;
}

#[tokio::test]
async fn developers_see_their_own_runs_and_others_are_not_found() {
    let db = TestDatabase::create().await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let bob = token(&db.store, "bob", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::pending_run(&db.store, "alice").await;
    let path = format!("/v1/runs/{run}");

    let own = call(&db.store, get(&path, &alice)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["id"], run.to_string());
    assert_eq!(own.body["state"], "pending");
    assert_eq!(own.body["steps"].as_array().unwrap().len(), 2);

    let other = call(&db.store, get(&path, &bob)).await;
    assert_problem(&other, StatusCode::NOT_FOUND, "not-found");
    let events = call(&db.store, get(&format!("{path}/events"), &bob)).await;
    assert_problem(&events, StatusCode::NOT_FOUND, "not-found");

    let operator = call(&db.store, get(&path, &ops)).await;
    assert_eq!(operator.status, StatusCode::OK);
    db.drop_now().await;
}

#[tokio::test]
async fn the_timeline_pages_by_event_id() {
    let db = TestDatabase::create().await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let run = factory::failed_run(&db.store, "alice", "boom").await;

    let first = call(
        &db.store,
        get(&format!("/v1/runs/{run}/events?limit=2"), &alice),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    let kinds: Vec<&str> = first.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["run_created", "step_started"]);
    let after = first.body["next_after"].as_i64().unwrap();
    let rest = call(
        &db.store,
        get(&format!("/v1/runs/{run}/events?after={after}"), &alice),
    )
    .await;
    let kinds: Vec<&str> = rest.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["step_failed", "run_failed"]);

    let bad = call(
        &db.store,
        get(&format!("/v1/runs/{run}/events?limit=0"), &alice),
    )
    .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(bad.body["detail"], "limit: must be between 1 and 1000");
    db.drop_now().await;
}

#[tokio::test]
async fn only_operators_retry_and_a_retry_resumes_the_failed_run() {
    let db = TestDatabase::create().await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::failed_run(&db.store, "alice", "namespaces is forbidden").await;
    let path = format!("/v1/runs/{run}/retry");

    let developer = call(&db.store, post(&path, &alice, "application/json", "{}")).await;
    assert_problem(&developer, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        db.store.run(run).await.unwrap().state,
        RunState::Failed,
        "nothing changed"
    );

    let too_far = call(
        &db.store,
        post(&path, &ops, "application/json", r#"{"from_step": 1}"#),
    )
    .await;
    assert_problem(
        &too_far,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    );
    assert!(
        too_far.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("from_step: must be between 0 and 0")
    );

    let accepted = call(&db.store, post(&path, &ops, "application/json", "")).await;
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

    let again = call(&db.store, post(&path, &ops, "application/json", "")).await;
    assert_problem(&again, StatusCode::CONFLICT, "conflict");
    db.drop_now().await;
}

#[tokio::test]
async fn an_operator_cancels_a_pending_run() {
    let db = TestDatabase::create().await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::pending_run(&db.store, "alice").await;

    let reply = call(
        &db.store,
        post(
            &format!("/v1/runs/{run}/cancel"),
            &ops,
            "application/json",
            "",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body["status"], "cancelled");
    assert_eq!(db.store.run(run).await.unwrap().state, RunState::Cancelled);
    let again = call(
        &db.store,
        post(
            &format!("/v1/runs/{run}/cancel"),
            &ops,
            "application/json",
            "",
        ),
    )
    .await;
    assert_problem(&again, StatusCode::CONFLICT, "conflict");
    db.drop_now().await;
}

#[tokio::test]
async fn bad_requests_get_problems_not_500s() {
    let db = TestDatabase::create().await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::failed_run(&db.store, "alice", "boom").await;
    let retry = format!("/v1/runs/{run}/retry");

    let malformed = call(
        &db.store,
        post(&retry, &ops, "application/json", "{not json"),
    )
    .await;
    assert_problem(&malformed, StatusCode::BAD_REQUEST, "bad-request");
    let wrong_type = call(&db.store, post(&retry, &ops, "text/plain", "from_step=0")).await;
    assert_problem(
        &wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    let unknown_field = call(
        &db.store,
        post(&retry, &ops, "application/json", r#"{"step": 0}"#),
    )
    .await;
    assert_problem(
        &unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    );
    assert!(
        unknown_field.body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `step`")
    );
    let invalid_utf8 = Request::post(&retry)
        .header(header::AUTHORIZATION, format!("Bearer {ops}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}']))
        .unwrap();
    let not_text = call(&db.store, invalid_utf8).await;
    assert_problem(&not_text, StatusCode::BAD_REQUEST, "bad-request");
    let wrong_type_field = call(
        &db.store,
        post(
            &retry,
            &ops,
            "application/json",
            r#"{"from_step": "first"}"#,
        ),
    )
    .await;
    assert_problem(
        &wrong_type_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    );
    let huge = format!(r#"{{"from_step": 0, "pad": "{}"}}"#, "x".repeat(100_000));
    let too_large = call(&db.store, post(&retry, &ops, "application/json", &huge)).await;
    assert_problem(
        &too_large,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    );

    let not_a_uuid = call(&db.store, get("/v1/runs/not-a-uuid", &ops)).await;
    assert_problem(
        &not_a_uuid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    );
    let missing = call(
        &db.store,
        get(&format!("/v1/runs/{}", uuid::Uuid::now_v7()), &ops),
    )
    .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not-found");
    let unknown_route = call(&db.store, get("/v1/nothing", &ops)).await;
    assert_problem(&unknown_route, StatusCode::NOT_FOUND, "not-found");
    let wrong_method = call(
        &db.store,
        Request::delete(format!("/v1/runs/{run}/retry"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_problem(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    );

    assert_eq!(
        db.store.run(run).await.unwrap().state,
        RunState::Failed,
        "no bad request changed anything"
    );
    db.drop_now().await;
}

/// (id, kind) of every event in an SSE body.
fn sse_events(body: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut id = None;
    for line in body.lines() {
        if let Some(value) = line.strip_prefix("id: ") {
            id = value.parse().ok();
        } else if let Some(kind) = line.strip_prefix("event: ") {
            out.push((id.take().unwrap(), kind.to_owned()));
        }
    }
    out
}

async fn stream(store: &Store, path: &str, token: &str, last_event_id: Option<i64>) -> String {
    let mut request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = hubwright_api::router(store.clone(), Default::default())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn server_sent_events_follow_a_run_live_until_it_ends() {
    let db = TestDatabase::create().await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::pending_run(&db.store, "alice").await;
    let path = format!("/v1/runs/{run}/events");

    let following = tokio::spawn({
        let store = db.store.clone();
        let (path, ops) = (path.clone(), ops.clone());
        async move { stream(&store, &path, &ops, None).await }
    });
    // The run is live: the stream waits for more until the cancel ends it.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(
        !following.is_finished(),
        "the stream stays open while the run is live"
    );
    db.store
        .cancel_run(run, "ops", SystemClock.now())
        .await
        .unwrap();
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), following)
        .await
        .expect("the stream ends once the run has ended")
        .unwrap();
    let events = sse_events(&body);
    let kinds: Vec<&str> = events.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kinds, ["run_created", "run_cancelled"]);
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "in order");

    // Reconnecting with Last-Event-ID resumes after it.
    let resumed = sse_events(&stream(&db.store, &path, &ops, Some(events[0].0)).await);
    assert_eq!(resumed, events[1..]);
    db.drop_now().await;
}

#[tokio::test]
async fn metrics_show_runs_by_state_the_queue_and_requests_to_operators() {
    let db = TestDatabase::create().await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    factory::pending_run(&db.store, "alice").await;
    factory::failed_run(&db.store, "alice", "boom").await;

    let developer = call(&db.store, get("/metrics", &alice)).await;
    assert_problem(&developer, StatusCode::FORBIDDEN, "forbidden");

    let response = hubwright_api::router(db.store.clone(), Default::default())
        .oneshot(get("/metrics", &ops))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
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
    db.drop_now().await;
}
