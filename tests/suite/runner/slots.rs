//! A busy worker's free slots: it gathers a few before claiming, so one
//! statement fills several, but a due run never waits for slots that hold
//! long steps.

use std::time::Duration;

use hubwright_state::model::RunState;
use hubwright_testkit::harness::{catalog, fast_config, spawn_worker, start, start_many};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};

use super::*;

#[tokio::test]
async fn a_due_run_takes_the_one_free_slot_while_every_other_holds_a_long_step() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("one-free-slot"),
        "slots",
        r#"
name: slots
workflows:
  long:
    steps:
      - { name: hold, kind: test-block, with: { duration: 60s } }
  quick:
    steps:
      - { name: only, kind: noop }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let mut config = fast_config("w1");
    // Let the worker go at once at the end rather than wait for the
    // long steps: they are released to nobody.
    config.shutdown_grace = Duration::from_millis(50);
    let slots = config.concurrency;
    let worker = spawn_worker(&db.store, config);
    start_many(&db.store, &catalog, "slots", "long", slots - 1).await;
    let busy = i64::try_from(slots - 1).expect("a few slots");
    wait::runs_in_state(&db.store, RunState::Running, busy, WITHIN).await;

    // One slot is free, fewer than a claim waits to gather: it must be
    // filled anyway, long before any of the long steps ends.
    let quick = start(&db.store, &catalog, "slots", "quick").await;
    wait::run_state(
        &db.store,
        quick,
        RunState::Succeeded,
        Duration::from_secs(15),
    )
    .await;
    let still_running = db
        .store
        .count_runs_by_state()
        .await
        .expect("count runs")
        .into_iter()
        .find(|(state, _)| *state == RunState::Running)
        .map_or(0, |(_, n)| n);
    assert_eq!(
        still_running, busy,
        "the quick run must have had a free slot, not one a long step gave back"
    );

    worker.shutdown().await.unwrap();
    db.drop_now().await;
}
