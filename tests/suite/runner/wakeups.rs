//! Idle workers woken by a notification, not by their poll: after an
//! enqueue's commit, and after a requested environment's commit, whose
//! wake-up is sent just after it and shared by requests made meanwhile
//! (docs/decisions/0027-a-creation-is-one-statement.md).

use std::time::Duration;

use hubwright_state::model::RunState;
use hubwright_state::store::environments::NewEnvironment;
use hubwright_state::workflow::Catalog;
use hubwright_state::{Clock, Store, SystemClock};
use hubwright_testkit::harness::{catalog, fast_config, spawn_worker, start};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use hubwright_worker::WorkerHandle;
use uuid::Uuid;

use super::*;

/// A database with a one-step `quick` template, and an idle worker whose
/// poll is too slow to ever matter: only a notification can wake it.
async fn idle_worker_that_never_polls(name: &str) -> (TestDatabase, Catalog, WorkerHandle) {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir(name),
        "quick",
        r#"
name: quick
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let mut config = fast_config("w1");
    config.poll_interval = Duration::from_secs(600);
    let worker = spawn_worker(&db.store, config);
    // Its first (empty) claim done, it waits.
    worker.idle().until(1, WITHIN).await.unwrap();
    (db, catalog, worker)
}

#[tokio::test]
async fn a_worker_wakes_on_notify_without_waiting_for_its_poll() {
    let (db, catalog, worker) = idle_worker_that_never_polls("notify").await;

    for _ in 0..3 {
        let run_id = start(&db.store, &catalog, "quick", "provision").await;
        wait::run_state(
            &db.store,
            run_id,
            RunState::Succeeded,
            Duration::from_secs(10),
        )
        .await;
    }
    worker.shutdown().await.unwrap();
    db.drop_now().await;
}

#[tokio::test]
async fn a_requested_environment_wakes_a_worker_after_its_commit_without_waiting_for_its_poll() {
    let (db, catalog, worker) = idle_worker_that_never_polls("wake-after-commit").await;

    let request = |name: String| request(&db.store, &catalog, name);
    // One at a time, each after the worker went idle again; then a burst,
    // whose requests share wake-ups: the last one must not be lost.
    for i in 0..3 {
        let run_id = request(format!("one-{i}")).await;
        wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    }
    let burst =
        futures_util::future::join_all((0..20).map(|i| request(format!("burst-{i}")))).await;
    for run_id in burst {
        wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    }
    worker.shutdown().await.unwrap();
    db.drop_now().await;
}

/// Requests an environment of `quick` named `name`; its provisioning run.
async fn request(store: &Store, catalog: &Catalog, name: String) -> Uuid {
    let now = SystemClock.now();
    let id = hubwright_state::store::enqueue::new_id();
    let namespace = format!("ns-{name}");
    store
        .request_environment(
            &NewEnvironment {
                id,
                name: &name,
                owner: "alice",
                template: "quick",
                cluster: "default",
                namespace: &namespace,
                parameters: serde_json::json!({}),
                expires_at: now + chrono::Duration::hours(1),
                traceparent: None,
            },
            catalog.definition("quick", "provision").unwrap(),
            None,
            now,
        )
        .await
        .unwrap()
        .run_id
}

#[tokio::test]
async fn a_retry_and_a_poll_its_own_worker_scheduled_start_when_due_not_at_its_next_poll() {
    let (db, _, worker) = idle_worker_that_never_polls("own-retry").await;
    let workflows = write_workflow(
        &scratch_dir("own-retry-template"),
        "again",
        r#"
name: again
workflows:
  provision:
    steps:
      - name: flaky
        kind: test-flaky
        with: { failures: 2 }
        retry: { max_attempts: 3, initial_delay: 50ms, max_delay: 50ms, jitter: false }
      - { name: not-yet, kind: test-polls, with: { polls: 2, interval: 50ms } }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    // No notification announces a retry or a poll coming due: the worker
    // that scheduled them must look again once its run's commit has landed.
    let run_id = start(&db.store, &catalog, "again", "provision").await;
    wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    let steps = db.store.steps(run_id).await.unwrap();
    assert_eq!((steps[0].attempts, steps[1].polls), (3, 2));
    worker.shutdown().await.unwrap();
    db.drop_now().await;
}
