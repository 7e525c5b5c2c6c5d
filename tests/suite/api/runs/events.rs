//! `/v1/runs/{id}/events`: pages of the timeline and the live stream.

use super::*;

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
