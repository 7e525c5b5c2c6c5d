//! The runner's semantics, proven with in-process workers against a real
//! Postgres (each test its own database) and the testkit's step kinds.

use std::time::Duration;

use hubwright_state::model::{ErrorClass, RunState, StepState};
use hubwright_state::{Clock, Error, SystemClock};
use hubwright_testkit::harness::{catalog, effects, fast_config, spawn_worker, start};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};

mod lock_order;
mod slots;
mod stopping;
mod teardown_locks;
mod timeline;
mod upgrade;
mod wakeups;

const WITHIN: Duration = Duration::from_secs(20);

/// Waits until `count` backends of `db` wait for a lock: `what`, the
/// statements a lock-order test has queued behind a held row.
pub(super) async fn until_waiting_on_locks(db: &TestDatabase, count: i64, what: &str) {
    wait::until(what, Duration::from_secs(10), || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(db.store.pool())
        .await
        .unwrap();
        waiting == count
    })
    .await;
}

#[tokio::test]
async fn a_four_step_run_completes_and_its_events_tell_the_story_in_order() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("story");
    let log = dir.join("effects.log");
    let workflows = write_workflow(
        &dir.join("workflows"),
        "story",
        &format!(
            r#"
name: story
workflows:
  provision:
    steps:
      - {{ name: first, kind: noop }}
      - {{ name: effect, kind: test-record, with: {{ path: "{}" }} }}
      - {{ name: not-yet, kind: test-polls, with: {{ polls: 2, interval: 20ms }} }}
      - {{ name: last, kind: noop }}
"#,
            log.display()
        ),
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "story", "provision").await;

    let run = wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    worker.shutdown().await.unwrap();

    assert_eq!(run.current_step, 4);
    let story: Vec<(Option<i32>, String)> = db
        .store
        .events(run_id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.step_idx, e.kind))
        .collect();
    let expected = [
        (None, "run_created"),
        (Some(0), "step_started"),
        (Some(0), "step_succeeded"),
        (Some(1), "step_started"),
        (Some(1), "step_succeeded"),
        (Some(2), "step_started"),
        // One event per new reason ("0 of 2 polls", "1 of 2 polls"), not per poll.
        (Some(2), "step_waiting"),
        (Some(2), "step_waiting"),
        (Some(2), "step_succeeded"),
        (Some(3), "step_started"),
        (Some(3), "step_succeeded"),
        (None, "run_succeeded"),
    ];
    let expected: Vec<(Option<i32>, String)> =
        expected.iter().map(|(i, k)| (*i, k.to_string())).collect();
    assert_eq!(story, expected);

    let steps = db.store.steps(run_id).await.unwrap();
    assert!(steps.iter().all(|s| s.state == StepState::Succeeded));
    assert_eq!(
        (steps[2].attempts, steps[2].polls),
        (1, 2),
        "polls are not attempts"
    );
    assert_eq!(effects(&log).len(), 1);
    db.drop_now().await;
}

#[tokio::test]
async fn transient_errors_are_retried_with_growing_delays_until_one_succeeds() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("flaky"),
        "flaky",
        r#"
name: flaky
workflows:
  provision:
    steps:
      - name: flaky
        kind: test-flaky
        with: { failures: 3 }
        retry: { max_attempts: 5, initial_delay: 100ms, max_delay: 2s, factor: 2, jitter: false }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "flaky", "provision").await;

    wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    worker.shutdown().await.unwrap();

    let steps = db.store.steps(run_id).await.unwrap();
    assert_eq!(steps[0].attempts, 4);
    let delays_ms: Vec<i64> = db
        .store
        .events(run_id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "step_retry_scheduled")
        .map(|e| {
            let data = e.data.expect("retry data");
            let retry_at: chrono::DateTime<chrono::Utc> =
                serde_json::from_value(data["retry_at"].clone()).expect("retry_at");
            (retry_at - e.at).num_milliseconds()
        })
        .collect();
    assert_eq!(delays_ms, [100, 200, 400]);
    db.drop_now().await;
}

#[tokio::test]
async fn a_retryable_error_that_outlasts_the_attempts_fails_the_run_verbatim() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("exhaust"),
        "exhaust",
        r#"
name: exhaust
workflows:
  provision:
    steps:
      - name: flaky
        kind: test-flaky
        with: { failures: 10 }
        retry: { max_attempts: 3, initial_delay: 50ms, max_delay: 50ms, jitter: false }
      - { name: never, kind: noop }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "exhaust", "provision").await;

    let run = wait::run_state(&db.store, run_id, RunState::Failed, WITHIN).await;
    worker.shutdown().await.unwrap();

    assert_eq!(
        run.error.as_ref().map(|e| e.message.as_str()),
        Some("transient failure 3 of 10")
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Retryable)
    );
    let steps = db.store.steps(run_id).await.unwrap();
    assert_eq!((steps[0].state, steps[0].attempts), (StepState::Failed, 3));
    assert_eq!(
        steps[0].error.as_ref().and_then(|e| e.detail.clone()),
        Some(serde_json::json!({"status": 503}))
    );
    assert_eq!(steps[1].state, StepState::Pending);
    db.drop_now().await;
}

#[tokio::test]
async fn a_permanent_error_stops_the_run_at_once_and_an_operator_retry_resumes_at_the_failed_step()
{
    let db = TestDatabase::create().await;
    let dir = scratch_dir("operator");
    let log = dir.join("effects.log");
    let fixed = dir.join("cause-fixed");
    let workflows = write_workflow(
        &dir.join("workflows"),
        "gate",
        &format!(
            r#"
name: gate
workflows:
  provision:
    steps:
      - {{ name: before, kind: test-record, with: {{ path: "{log}" }} }}
      - name: gate
        kind: test-fail
        with: {{ message: "namespaces is forbidden: User cannot create resource", until_exists: "{fixed}" }}
      - {{ name: after, kind: test-record, with: {{ path: "{log}" }} }}
"#,
            log = log.display(),
            fixed = fixed.display()
        ),
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "gate", "provision").await;

    let run = wait::run_state(&db.store, run_id, RunState::Failed, WITHIN).await;
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.message.as_str()),
        Some("namespaces is forbidden: User cannot create resource")
    );
    assert_eq!(
        db.store.steps(run_id).await.unwrap()[1].attempts,
        1,
        "permanent errors are not retried"
    );

    let now = SystemClock.now();
    let too_far = db
        .store
        .retry_run(run_id, Some(2), "ops", now)
        .await
        .unwrap_err();
    assert_eq!(
        too_far.to_string(),
        "from_step: must be between 0 and 1 (the failed step); later steps never ran"
    );

    std::fs::write(&fixed, "").unwrap();
    assert_eq!(
        db.store.retry_run(run_id, None, "ops", now).await.unwrap(),
        1
    );
    wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    worker.shutdown().await.unwrap();

    let steps_recorded: Vec<i32> = effects(&log).iter().map(|e| e.1).collect();
    assert_eq!(
        steps_recorded,
        [0, 2],
        "the step before the failure was not run again"
    );
    let retried = db.store.events(run_id, 0, 100).await.unwrap();
    assert!(
        retried
            .iter()
            .any(|e| e.kind == "run_retried" && e.actor == "ops")
    );

    let again = db
        .store
        .retry_run(run_id, None, "ops", now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            again,
            Error::IllegalTransition {
                state: RunState::Succeeded,
                ..
            }
        ),
        "{again}"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn an_operator_can_retry_from_an_earlier_step() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("earlier");
    let log = dir.join("effects.log");
    let fixed = dir.join("cause-fixed");
    let workflows = write_workflow(
        &dir.join("workflows"),
        "gate",
        &format!(
            r#"
name: gate
workflows:
  provision:
    steps:
      - {{ name: before, kind: test-record, with: {{ path: "{log}" }} }}
      - {{ name: gate, kind: test-fail, with: {{ message: "bad template", until_exists: "{fixed}" }} }}
"#,
            log = log.display(),
            fixed = fixed.display()
        ),
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "gate", "provision").await;
    wait::run_state(&db.store, run_id, RunState::Failed, WITHIN).await;

    std::fs::write(&fixed, "").unwrap();
    db.store
        .retry_run(run_id, Some(0), "ops", SystemClock.now())
        .await
        .unwrap();
    wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    worker.shutdown().await.unwrap();

    let steps_recorded: Vec<i32> = effects(&log).iter().map(|e| e.1).collect();
    assert_eq!(steps_recorded, [0, 0], "step 0 was redone as asked");
    db.drop_now().await;
}
