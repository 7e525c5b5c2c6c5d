//! A run's timeline as stored and as read: its creation and success are its
//! row, its steps' latest starts and successes are theirs, the commonest
//! messages are composed on read (decision 0020).

use chrono::{DateTime, Duration as Span, Utc};
use hubwright_state::model::{ErrorClass, RunState, StepFailure};
use hubwright_state::store::checkpoint::{Fence, StepSuccess};
use hubwright_testkit::harness::{catalog, fast_config, spawn_worker, start};
use hubwright_testkit::{TestDatabase, factory, scratch_dir, wait, write_workflow};
use serde_json::json;

use super::WITHIN;

#[tokio::test]
async fn a_one_step_run_reads_four_events_in_order_but_stores_none_of_them() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("timeline"),
        "timeline",
        r#"
name: timeline
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "timeline", "provision").await;
    wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    worker.shutdown().await.unwrap();

    let events = db.store.events(run_id, 0, 100).await.unwrap();
    let read: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            ("run_created", "run accepted"),
            ("step_started", "step only started (attempt 1)"),
            ("step_succeeded", "step only succeeded"),
            ("run_succeeded", "run succeeded"),
        ]
    );
    assert!(
        events.windows(2).all(|pair| pair[0].id < pair[1].id),
        "ids sort in the timeline's order: {events:?}"
    );
    assert_eq!(
        events[3].actor, events[2].actor,
        "the run succeeded by the worker that finished its last step"
    );
    let resumed = db.store.events(run_id, events[0].id, 100).await.unwrap();
    assert_eq!(
        resumed.iter().map(|e| e.id).collect::<Vec<_>>(),
        events[1..].iter().map(|e| e.id).collect::<Vec<_>>(),
        "a cursor at the creation resumes after it"
    );

    let stored: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM events WHERE run_id = $1 ORDER BY id")
            .bind(run_id)
            .fetch_all(db.store.pool())
            .await
            .unwrap();
    assert_eq!(stored, Vec::<String>::new(), "every event is a row's");
    db.drop_now().await;
}

#[tokio::test]
async fn a_released_attempt_and_an_operator_retry_keep_every_start_and_success_in_the_timeline() {
    let db = TestDatabase::create().await;
    let store = &db.store;
    // Whole seconds a second apart: each event's time is its own.
    let (run, t0) = factory::run_accepted_an_hour_ago(store).await;
    let at = |seconds: i64| t0 + Span::seconds(seconds);
    let lease = Span::seconds(30);
    let claim = |worker: &'static str, seconds| async move {
        let claimed = store.claim(worker, 1, lease, at(seconds)).await.unwrap();
        assert_eq!(claimed.len(), 1, "{worker} claims the run");
        claimed[0].token
    };
    let succeed = |token, step_idx, seconds| async move {
        let success = StepSuccess {
            run_id: run,
            token,
            step_idx,
            output: json!({}),
        };
        store
            .commit_successes(&[success], at(seconds))
            .await
            .unwrap();
    };

    let token = claim("worker-a", 1).await;
    assert!(
        store
            .release(run, token, "shutting down", at(2))
            .await
            .unwrap()
    );
    let token = claim("worker-b", 3).await;
    succeed(token, 0, 4).await;
    let fence = Fence {
        run_id: run,
        token,
        step_idx: 1,
    };
    let forbidden = StepFailure {
        class: ErrorClass::Permanent,
        message: "forbidden".to_owned(),
        detail: None,
    };
    store
        .commit_failure(fence, &forbidden, at(5))
        .await
        .unwrap();
    store.retry_run(run, Some(0), "ops", at(6)).await.unwrap();
    let token = claim("worker-c", 7).await;
    succeed(token, 0, 8).await;
    succeed(token, 1, 9).await;

    let events = store.events(run, 0, 100).await.unwrap();
    let read: Vec<(&str, Option<i32>, &str, DateTime<Utc>)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.step_idx, e.actor.as_str(), e.at))
        .collect();
    assert_eq!(
        read,
        [
            ("run_created", None, "alice", t0),
            ("step_started", Some(0), "worker-a", at(1)),
            ("lease_released", Some(0), "worker-a", at(2)),
            ("step_started", Some(0), "worker-b", at(3)),
            ("step_succeeded", Some(0), "worker-b", at(4)),
            ("step_started", Some(1), "worker-b", at(4)),
            ("step_failed", Some(1), "worker-b", at(5)),
            ("run_failed", None, "worker-b", at(5)),
            ("run_retried", Some(0), "ops", at(6)),
            ("step_started", Some(0), "worker-c", at(7)),
            ("step_succeeded", Some(0), "worker-c", at(8)),
            ("step_started", Some(1), "worker-c", at(8)),
            ("step_succeeded", Some(1), "worker-c", at(9)),
            ("run_succeeded", None, "worker-c", at(9)),
        ]
    );
    assert!(
        events.windows(2).all(|pair| pair[0].id < pair[1].id),
        "ids sort in the timeline's order: {events:?}"
    );
    // A released attempt is given back: both starts name attempt 1. Starts
    // by a claim carry the attempt in their data, those by the checkpoint
    // of the step before do not, as when they were all stored.
    let starts: Vec<(&str, Option<&serde_json::Value>)> = events
        .iter()
        .filter(|e| e.kind == "step_started" || e.kind == "step_succeeded")
        .map(|e| (e.message.as_str(), e.data.as_ref()))
        .collect();
    let attempt_1 = json!({ "attempt": 1 });
    assert_eq!(
        starts,
        [
            ("step first started (attempt 1)", Some(&attempt_1)),
            ("step first started (attempt 1)", Some(&attempt_1)),
            ("step first succeeded", None),
            ("step second started (attempt 1)", None),
            ("step first started (attempt 1)", Some(&attempt_1)),
            ("step first succeeded", None),
            ("step second started (attempt 1)", None),
            ("step second succeeded", None),
        ]
    );
    db.drop_now().await;
}

#[tokio::test]
async fn a_step_whose_start_was_stored_before_the_upgrade_shows_it_once_beside_its_success() {
    let db = TestDatabase::create().await;
    let store = &db.store;
    let (run, t0) = factory::run_accepted_an_hour_ago(store).await;
    let claimed = store
        .claim("worker-a", 1, Span::seconds(30), t0 + Span::seconds(1))
        .await
        .unwrap();
    // What a claim before migration 20261209000200 left: the start stored,
    // the row without it.
    sqlx::query(
        "WITH moved AS (
             UPDATE runs SET step_started_event_id = NULL, step_started_by = NULL
             WHERE id = $1 AND current_step = 0
             RETURNING id
         )
         INSERT INTO events (id, run_id, step_idx, kind, actor, message, data, at)
         OVERRIDING SYSTEM VALUE
         SELECT s.started_event_id, s.run_id, s.idx, 'step_started', 'worker-a', NULL,
                jsonb_build_object('attempt', 1), s.started_at
         FROM steps s WHERE s.run_id = $1 AND s.idx = 0",
    )
    .bind(run)
    .execute(store.pool())
    .await
    .unwrap();
    let success = |step_idx| StepSuccess {
        run_id: run,
        token: claimed[0].token,
        step_idx,
        output: json!({}),
    };
    store
        .commit_successes(&[success(0)], t0 + Span::seconds(2))
        .await
        .unwrap();
    store
        .commit_successes(&[success(1)], t0 + Span::seconds(3))
        .await
        .unwrap();

    let events = store.events(run, 0, 100).await.unwrap();
    let read: Vec<(&str, Option<i32>, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.step_idx,
                e.actor.as_str(),
                e.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("run_created", None, "alice", "run accepted"),
            (
                "step_started",
                Some(0),
                "worker-a",
                "step first started (attempt 1)"
            ),
            (
                "step_succeeded",
                Some(0),
                "worker-a",
                "step first succeeded"
            ),
            (
                "step_started",
                Some(1),
                "worker-a",
                "step second started (attempt 1)"
            ),
            (
                "step_succeeded",
                Some(1),
                "worker-a",
                "step second succeeded"
            ),
            ("run_succeeded", None, "worker-a", "run succeeded"),
        ]
    );
    assert!(
        events.windows(2).all(|pair| pair[0].id < pair[1].id),
        "ids sort in the timeline's order: {events:?}"
    );
    db.drop_now().await;
}
