//! Runs that stop: cancelled, timed out, handed back on shutdown, fenced
//! off, refused at load, and woken by the injected clock.

use std::time::Duration;

use hubwright_state::model::{RunState, StepState};
use hubwright_state::store::checkpoint::{Fence, StepSuccess};
use hubwright_state::store::operator::Cancellation;
use hubwright_state::{Clock, Error, SystemClock};
use hubwright_testkit::harness::{self, catalog, effects, fast_config, spawn_worker, start};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};

use super::*;

#[tokio::test]
async fn a_cancelled_run_runs_no_further_step() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("cancel");
    let log = dir.join("effects.log");
    let workflows = write_workflow(
        &dir.join("workflows"),
        "cancel",
        &format!(
            r#"
name: cancel
workflows:
  provision:
    steps:
      - {{ name: long, kind: test-block, with: {{ duration: 5s, record: "{log}" }} }}
      - {{ name: after, kind: test-record, with: {{ path: "{log}" }} }}
"#,
            log = log.display()
        ),
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "cancel", "provision").await;
    wait::run_state(&db.store, run_id, RunState::Running, WITHIN).await;

    let asked = db
        .store
        .cancel_run(run_id, "ops", SystemClock.now())
        .await
        .unwrap();
    assert_eq!(asked, Cancellation::Requested, "a step is in flight");
    let run = wait::run_state(&db.store, run_id, RunState::Cancelled, WITHIN).await;
    assert!(run.finished_at.is_some());
    // Past the step's own end: had it gone on, its effect would be recorded now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    worker.shutdown().await.unwrap();

    assert!(
        effects(&log).is_empty(),
        "neither the interrupted step nor the next one took effect"
    );
    let steps = db.store.steps(run_id).await.unwrap();
    assert!(
        steps.iter().all(|s| s.state == StepState::Cancelled),
        "{steps:#?}"
    );
    let again = db
        .store
        .cancel_run(run_id, "ops", SystemClock.now())
        .await
        .unwrap_err();
    assert!(matches!(
        again,
        Error::IllegalTransition {
            state: RunState::Cancelled,
            ..
        }
    ));
    db.drop_now().await;
}

#[tokio::test]
async fn a_waiting_run_is_cancelled_at_once() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("idle"),
        "idle",
        r#"
name: idle
workflows:
  provision:
    steps:
      - { name: nap, kind: sleep, with: { duration: 1h } }
      - { name: after, kind: noop }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "idle", "provision").await;
    wait::run_state(&db.store, run_id, RunState::Waiting, WITHIN).await;

    let done = db
        .store
        .cancel_run(run_id, "ops", SystemClock.now())
        .await
        .unwrap();
    assert_eq!(done, Cancellation::Cancelled);
    worker.shutdown().await.unwrap();
    let steps = db.store.steps(run_id).await.unwrap();
    assert_eq!(
        steps.iter().map(|s| s.state).collect::<Vec<_>>(),
        [StepState::Cancelled, StepState::Cancelled]
    );
    db.drop_now().await;
}

#[tokio::test]
async fn a_step_past_its_timeout_counts_as_a_transient_failure() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("timeout"),
        "slow",
        r#"
name: slow
workflows:
  provision:
    steps:
      - name: slow
        kind: test-block
        with: { duration: 10s }
        timeout: 200ms
        retry: { max_attempts: 2, initial_delay: 50ms, max_delay: 50ms }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "slow", "provision").await;

    let run = wait::run_state(&db.store, run_id, RunState::Failed, WITHIN).await;
    worker.shutdown().await.unwrap();
    assert_eq!(
        run.error.as_ref().map(|e| e.message.as_str()),
        Some("step slow timed out after 200ms")
    );
    assert_eq!(db.store.steps(run_id).await.unwrap()[0].attempts, 2);
    db.drop_now().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_the_step_finish_and_hands_the_run_back() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("graceful"),
        "graceful",
        r#"
name: graceful
workflows:
  provision:
    steps:
      - { name: long, kind: test-block, with: { duration: 700ms } }
      - { name: next, kind: noop }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let first = spawn_worker(&db.store, fast_config("first"));
    let run_id = start(&db.store, &catalog, "graceful", "provision").await;
    wait::run_state(&db.store, run_id, RunState::Running, WITHIN).await;

    first.shutdown().await.unwrap();
    let run = db.store.run(run_id).await.unwrap();
    assert_eq!(
        (run.state, run.current_step),
        (RunState::Pending, 1),
        "step 0 finished, step 1 handed back"
    );
    let steps = db.store.steps(run_id).await.unwrap();
    assert_eq!(
        (steps[1].state, steps[1].attempts),
        (StepState::Pending, 0),
        "a release costs no attempt"
    );

    let second = spawn_worker(&db.store, fast_config("second"));
    wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    second.shutdown().await.unwrap();
    let kinds: Vec<String> = db
        .store
        .events(run_id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"lease_released".to_owned()), "{kinds:?}");
    db.drop_now().await;
}

#[tokio::test]
async fn a_write_with_a_stale_fencing_token_is_refused() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("fence"),
        "fence",
        r#"
name: fence
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let run_id = start(&db.store, &catalog, "fence", "provision").await;
    let now = SystemClock.now();
    let lease = chrono::Duration::seconds(30);
    let claimed = db.store.claim("a", 10, lease, now).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let stale = claimed[0].token;

    // The lease expires; the rescuer hands the run to worker b.
    let later = now + chrono::Duration::seconds(31);
    assert_eq!(db.store.rescue_expired("b", 10, later).await.unwrap(), 1);
    let reclaimed = db.store.claim("b", 10, lease, later).await.unwrap();
    assert_eq!(reclaimed[0].token, stale + 1);

    let refused = db
        .store
        .commit_wait(
            Fence {
                run_id,
                token: stale,
                step_idx: 0,
            },
            later,
            "late",
            true,
            later,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::LeaseLost { .. }), "{refused}");
    let success = StepSuccess {
        run_id,
        token: stale,
        step_idx: 0,
        output: serde_json::json!({"by": "a"}),
    };
    assert!(
        db.store
            .commit_successes(std::slice::from_ref(&success), later)
            .await
            .unwrap()
            .is_empty()
    );

    let current = StepSuccess {
        token: stale + 1,
        output: serde_json::json!({"by": "b"}),
        ..success
    };
    let advanced = db.store.commit_successes(&[current], later).await.unwrap();
    assert_eq!(advanced[0].state, RunState::Succeeded);
    assert_eq!(
        db.store.steps(run_id).await.unwrap()[0].output,
        Some(serde_json::json!({"by": "b"}))
    );
    db.drop_now().await;
}

#[tokio::test]
async fn a_bad_workflow_file_is_refused_with_file_place_and_rule() {
    let dir = write_workflow(
        &scratch_dir("bad"),
        "bad",
        r#"
name: bad
workflows:
  provision:
    steps:
      - { name: one, kind: noop }
      - { name: two, kind: nope }
"#,
    );
    let err = harness::registry().load_catalog(&dir).unwrap_err();
    assert_eq!(err.file, dir.join("bad.yaml").display().to_string());
    assert_eq!(err.place, "workflows.provision.steps[1] (two).kind");
    assert!(
        err.rule
            .starts_with("unknown step kind `nope` (known: approval, noop, sleep, test-block"),
        "{err}"
    );

    let dir = write_workflow(
        &scratch_dir("bad-params"),
        "bad",
        r#"
name: bad
workflows:
  provision:
    steps:
      - { name: nap, kind: sleep }
"#,
    );
    let err = harness::registry().load_catalog(&dir).unwrap_err();
    assert_eq!(err.place, "workflows.provision.steps[0] (nap).with");
    assert_eq!(err.rule, "kind `sleep`: missing field `duration`");
}

#[tokio::test]
async fn a_durable_sleep_ends_when_the_injected_clock_says_so() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("clock"),
        "clock",
        r#"
name: clock
workflows:
  provision:
    steps:
      - { name: nap, kind: sleep, with: { duration: 1h } }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let run_id = start(&db.store, &catalog, "clock", "provision").await;
    // From here on the worker sees only the manual clock.
    let clock = hubwright_state::ManualClock::new(SystemClock.now());
    let worker = hubwright_worker::Worker::new(
        db.store.clone(),
        harness::registry(),
        fast_config("w1"),
        std::sync::Arc::new(clock.clone()),
    )
    .unwrap()
    .spawn();

    let parked = wait::run_state(&db.store, run_id, RunState::Waiting, WITHIN).await;
    let hour_later =
        db.store.steps(run_id).await.unwrap()[0].started_at.unwrap() + chrono::Duration::hours(1);
    assert_eq!(
        parked.next_run_at, hour_later,
        "parked until the hour is up"
    );
    clock.advance(chrono::Duration::minutes(59));
    // Two claim rounds: the one in flight may have read the old time.
    worker.idle().next(2, WITHIN).await.unwrap();
    assert_eq!(
        db.store.run(run_id).await.unwrap().state,
        RunState::Waiting,
        "not a minute early"
    );

    clock.advance(chrono::Duration::minutes(1));
    let run = wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    worker.shutdown().await.unwrap();
    assert_eq!(run.finished_at, Some(hour_later));
    let steps = db.store.steps(run_id).await.unwrap();
    assert_eq!(
        (steps[0].attempts, steps[0].polls),
        (1, 1),
        "one attempt, one poll: no worker held for the hour"
    );
    db.drop_now().await;
}
