//! A worker's heartbeat and its batched checkpoint run at once on two
//! connections and lock the same runs. They lock them in one order (by id),
//! so neither waits on the other in a cycle: before, under load, they
//! deadlocked, a second went to the deadlock detector, and a commit given up
//! near the end of its lease had its step run again.

use hubwright_state::store::checkpoint::StepSuccess;
use hubwright_state::{Clock, Store, SystemClock};
use hubwright_testkit::harness::{catalog, start};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use uuid::Uuid;

use super::until_waiting_on_locks;

#[tokio::test]
async fn a_heartbeat_and_a_checkpoint_of_the_same_runs_never_deadlock() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("lock-order"),
        "pair",
        "name: pair\nworkflows:\n  provision:\n    steps:\n      - { name: only, kind: noop }\n",
    );
    let catalog = catalog(&db.store, &workflows).await;
    for _ in 0..2 {
        start(&db.store, &catalog, "pair", "provision").await;
    }
    let now = SystemClock.now();
    let lease = chrono::Duration::seconds(30);
    let mut claimed = db.store.claim("w", 10, lease, now).await.unwrap();
    assert_eq!(claimed.len(), 2);
    claimed.sort_by_key(|run| run.id);
    let (first, second) = (&claimed[0], &claimed[1]);

    // Another transaction holds the first run, so both statements queue
    // behind it: the heartbeat on the first run, the checkpoint (given the
    // runs in the other order) on whichever it locks first. Locking the
    // second run first, it would hold what the heartbeat needs next while
    // waiting for what the heartbeat got first.
    let mut holder = db.store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE")
        .bind(first.id)
        .execute(&mut *holder)
        .await
        .unwrap();
    // Planned as with a worker's many leases: the runs hashed and the given
    // ids probed against them, so rows come (and are locked) in the order
    // the ids are given, unless the statement sorts them. Left alone, the
    // planner walks this test's two rows in the lease index's order.
    let store = Store::connect(
        &format!(
            "{}?options=-c%20enable_nestloop%3Doff%20-c%20enable_mergejoin%3Doff",
            db.url
        ),
        4,
    )
    .await
    .unwrap();
    let leases: Vec<(Uuid, i64)> = claimed.iter().map(|run| (run.id, run.token)).collect();
    let heartbeat = tokio::spawn({
        let store = store.clone();
        async move { store.heartbeat(&leases, lease, now).await }
    });
    until_waiting_on_locks(&db, 1, "the heartbeat to wait").await;
    let successes: Vec<StepSuccess> = [second, first]
        .iter()
        .map(|run| StepSuccess {
            run_id: run.id,
            token: run.token,
            step_idx: 0,
            output: serde_json::json!({}),
        })
        .collect();
    let checkpoint = tokio::spawn({
        let store = store.clone();
        async move { store.commit_successes(&successes, now).await }
    });
    until_waiting_on_locks(&db, 2, "the checkpoint to wait").await;
    holder.commit().await.unwrap();

    let held = heartbeat.await.unwrap().expect("the heartbeat commits");
    assert_eq!(held.len(), 2, "both leases extended");
    let advanced = checkpoint.await.unwrap().expect("the checkpoint commits");
    assert_eq!(advanced.len(), 2, "both runs advanced: {advanced:?}");
    db.drop_now().await;
}
