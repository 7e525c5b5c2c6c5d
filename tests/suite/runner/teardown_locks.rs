//! Stopping an environment's runs (a delete, expiry) and a worker's
//! checkpoint of one of those runs lock the same two rows: the run, and its
//! environment (the checkpoint through the phase trigger). Both take the run
//! first, so neither waits on the other in a cycle: before, a delete that
//! locked the environment first deadlocked with a checkpoint finishing the
//! run, and the deadlock detector failed one of them a second later.

use hubwright_state::store::checkpoint::StepSuccess;
use hubwright_state::store::enqueue::new_id;
use hubwright_state::store::environments::NewEnvironment;
use hubwright_state::store::expiry::ExpiryTeardown;
use hubwright_state::workflow::Catalog;
use hubwright_state::{Clock, SystemClock};
use hubwright_testkit::harness::catalog;
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::json;
use uuid::Uuid;

use super::until_waiting_on_locks;

const LAB: &str = r#"
name: lab
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// An environment of `lab` expiring in an hour, and its provisioning run,
/// claimed by worker `w`: (environment, run, lease token).
async fn provisioning(db: &TestDatabase, catalog: &Catalog) -> (Uuid, Uuid, i64) {
    let now = SystemClock.now();
    let id = new_id();
    let accepted = db
        .store
        .request_environment(
            &NewEnvironment {
                id,
                name: "locks",
                owner: "alice",
                template: "lab",
                cluster: "default",
                namespace: "lab-locks",
                traceparent: None,
                parameters: json!({}),
                expires_at: now + chrono::Duration::hours(1),
            },
            catalog.definition("lab", "provision").unwrap(),
            None,
            now,
        )
        .await
        .unwrap();
    let claimed = db
        .store
        .claim("w", 10, chrono::Duration::seconds(30), now)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, accepted.run_id);
    (id, accepted.run_id, claimed[0].token)
}

#[tokio::test]
async fn a_delete_and_the_checkpoint_that_finishes_the_run_never_deadlock() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(&scratch_dir("teardown-locks"), "lab", LAB);
    let catalog = catalog(&db.store, &workflows).await;
    let (env, run, token) = provisioning(&db, &catalog).await;
    let (_, teardown) = catalog.definition("lab", "teardown").unwrap();
    let now = SystemClock.now();

    // A third transaction holds the environment, so both queue behind it:
    // the delete first, then the checkpoint. Had the delete not locked the
    // run before queueing, the checkpoint would hold the run while waiting
    // for the environment, and the delete, given the environment, would wait
    // for the run.
    let mut holder = db.store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM environments WHERE id = $1 FOR UPDATE")
        .bind(env)
        .execute(&mut *holder)
        .await
        .unwrap();
    let delete = tokio::spawn({
        let store = db.store.clone();
        async move {
            store
                .request_teardown(env, teardown, "alice", now, None)
                .await
        }
    });
    until_waiting_on_locks(&db, 1, "the delete to wait").await;
    let checkpoint = tokio::spawn({
        let store = db.store.clone();
        let success = StepSuccess {
            run_id: run,
            token,
            step_idx: 0,
            output: json!({}),
        };
        async move { store.commit_successes(&[success], now).await }
    });
    until_waiting_on_locks(&db, 2, "the checkpoint to wait").await;
    holder.commit().await.unwrap();

    delete.await.unwrap().expect("the delete commits");
    let advanced = checkpoint.await.unwrap().expect("the checkpoint commits");
    assert_eq!(
        advanced.len(),
        1,
        "the step's success is kept: {advanced:?}"
    );
    let phase: String = sqlx::query_scalar("SELECT phase::text FROM environments WHERE id = $1")
        .bind(env)
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(phase, "tearing_down");
    db.drop_now().await;
}

#[tokio::test]
async fn expiry_waits_for_a_run_in_checkpoint_before_it_locks_the_environment() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(&scratch_dir("expiry-locks"), "lab", LAB);
    let catalog = catalog(&db.store, &workflows).await;
    let (env, run, _) = provisioning(&db, &catalog).await;
    let (snapshot, definition_id) = catalog.definition("lab", "teardown").unwrap();

    // The run is held as a checkpoint holds it while its statement runs.
    let mut holder = db.store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE")
        .bind(run)
        .execute(&mut *holder)
        .await
        .unwrap();
    let later = SystemClock.now() + chrono::Duration::hours(2);
    let expiry = tokio::spawn({
        let store = db.store.clone();
        let snapshot = snapshot.clone();
        async move {
            let teardowns = [ExpiryTeardown {
                template: "lab",
                snapshot: &snapshot,
                definition_id,
            }];
            store.expire_due(&teardowns, 10, later, || None).await
        }
    });
    until_waiting_on_locks(&db, 1, "expiry to wait").await;
    // Waiting for the run, expiry holds no lock on the environment: the
    // checkpoint's trigger could take it now.
    let mut probe = db.store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM environments WHERE id = $1 FOR UPDATE NOWAIT")
        .bind(env)
        .execute(&mut *probe)
        .await
        .expect("the environment is not locked while expiry waits for its run");
    probe.rollback().await.unwrap();
    holder.commit().await.unwrap();

    let expired = expiry.await.unwrap().expect("expiry commits");
    assert_eq!(expired.marked, 1);
    let state: String = sqlx::query_scalar(
        "SELECT state::text || ' ' || (cancel_requested_at IS NOT NULL)::text FROM runs WHERE id = $1",
    )
    .bind(run)
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!(state, "running true", "the running run is asked to cancel");
    db.drop_now().await;
}
