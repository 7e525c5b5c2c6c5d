//! Run retention: the scheduler's pass deletes finished runs older than the
//! retention, with their steps and events, a batch per statement; runs in
//! flight, recent ones, the audit trail and what environments need stay
//! ([`environments`]).

mod environments;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubwright_state::model::RunState;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::workflow::Catalog;
use hubwright_state::{Clock, Error, ManualClock, Store, SystemClock};
use hubwright_testkit::harness::{catalog, fast_config, registry};
use hubwright_testkit::{TestDatabase, factory, scratch_dir, wait, write_workflow};
use hubwright_worker::{RunRetention, Worker};
use serde_json::json;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);
const DAY: Duration = Duration::from_secs(24 * 3600);

const LAB: &str = r#"
name: lab
ttl: { default: 1h, maximum: 400d }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// A database with the `lab` template, a manual clock and the retention under test.
struct Lab {
    db: TestDatabase,
    catalog: Catalog,
    clock: ManualClock,
}

impl Lab {
    async fn new() -> Self {
        let db = TestDatabase::create().await;
        let dir = write_workflow(&scratch_dir("retention"), "lab", LAB);
        let catalog = catalog(&db.store, &dir).await;
        Self {
            db,
            catalog,
            clock: ManualClock::new(SystemClock.now()),
        }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Keeps 30 days, `batch` runs per statement.
    fn retention(&self, batch: i64) -> RunRetention {
        RunRetention::new(
            self.store().clone(),
            Arc::new(self.clock.clone()),
            DAY * 30,
            Duration::from_secs(3600),
        )
        .unwrap()
        .with_batch(batch)
    }

    /// `count` provisioning runs of no environment, due at `run_at`.
    async fn enqueue(&self, count: usize, run_at: DateTime<Utc>) -> Vec<Uuid> {
        let (snapshot, id) = self.catalog.definition("lab", "provision").unwrap();
        let runs: Vec<NewRun<'_>> = (0..count)
            .map(|_| NewRun::new(id, snapshot, json!({}), "alice", run_at))
            .collect();
        self.store().enqueue_many(&runs, self.now()).await.unwrap();
        runs.iter().map(|r| r.id).collect()
    }

    /// Runs a worker on the manual clock until `runs` succeeded.
    async fn drain(&self, runs: &[Uuid]) {
        let worker = Worker::new(
            self.store().clone(),
            registry(),
            fast_config("w"),
            Arc::new(self.clock.clone()),
        )
        .unwrap()
        .spawn();
        for run in runs {
            wait::until(&format!("run {run} succeeded"), WITHIN, || async {
                self.state(*run).await == Some(RunState::Succeeded)
            })
            .await;
        }
        worker.shutdown().await.unwrap();
    }

    async fn state(&self, run: Uuid) -> Option<RunState> {
        match self.store().run(run).await {
            Ok(run) => Some(run.state),
            Err(Error::RunNotFound(_)) => None,
            Err(err) => panic!("reading run {run}: {err}"),
        }
    }

    async fn count(&self, sql: &'static str, run: Uuid) -> i64 {
        sqlx::query_scalar(sql)
            .bind(run)
            .fetch_one(self.store().pool())
            .await
            .unwrap()
    }

    /// Whether anything of `run` is left: its row, steps or events.
    async fn traces(&self, run: Uuid) -> (i64, i64, i64) {
        (
            self.count("SELECT count(*) FROM runs WHERE id = $1", run)
                .await,
            self.count("SELECT count(*) FROM steps WHERE run_id = $1", run)
                .await,
            self.count("SELECT count(*) FROM run_timeline WHERE run_id = $1", run)
                .await,
        )
    }

    async fn audit_entries(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(self.store().pool())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn old_finished_runs_go_in_batches_while_running_pending_and_recent_ones_and_the_audit_trail_stay()
 {
    let lab = Lab::new().await;
    let t0 = lab.now();
    // 25 succeeded, 1 failed and 1 cancelled at t0: three batches of 10.
    let succeeded = lab.enqueue(25, t0).await;
    lab.drain(&succeeded).await;
    let failed = factory::failed_run(lab.store(), "alice", "no such cluster").await;
    let cancelled = lab.enqueue(1, t0).await[0];
    lab.store()
        .cancel_run(cancelled, "alice", t0)
        .await
        .unwrap();
    // In flight since t0: claimed by a worker that is still at it.
    let running = lab.enqueue(1, t0).await[0];
    let claimed = lab
        .store()
        .claim("elsewhere", 1, chrono::Duration::days(400), t0)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), [running]);
    // Accepted at t0, due in a year: old, but it never ran.
    let pending = lab.enqueue(1, t0 + chrono::Duration::days(365)).await[0];
    sqlx::query(
        "INSERT INTO audit_log (at, actor, auth, action, outcome)
         VALUES ($1, 'alice', 'token', 'run.cancel', 'success')",
    )
    .bind(t0)
    .execute(lab.store().pool())
    .await
    .unwrap();

    lab.clock.advance(chrono::Duration::days(31));
    // Finished a day ago.
    let recent = lab.enqueue(1, lab.now()).await[0];
    lab.clock.advance(chrono::Duration::days(1));
    lab.store()
        .cancel_run(recent, "alice", lab.now())
        .await
        .unwrap();

    // What of the doomed runs' timelines is stored rather than on their rows
    // (decision 0020): the failed run's failure and the cancellations.
    let doomed: Vec<Uuid> = succeeded
        .iter()
        .chain([&failed, &cancelled])
        .copied()
        .collect();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE run_id = ANY($1)")
        .bind(&doomed)
        .fetch_one(lab.store().pool())
        .await
        .unwrap();
    // And of their steps (migration 20261212000100): those a run moved past;
    // the one it ended at is its row.
    let stored_steps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM step_history WHERE run_id = ANY($1)")
            .bind(&doomed)
            .fetch_one(lab.store().pool())
            .await
            .unwrap();

    let retention = lab.retention(10);
    let mut batched = retention.batched();
    let pass = retention.pass().await.unwrap();
    assert_eq!(pass.batches, 3, "27 runs, 10 per statement: {pass:?}");
    assert_eq!(batched.count(), 3);
    assert_eq!(pass.deleted.runs, 27);
    assert_eq!(
        stored_steps,
        i64::try_from(succeeded.len()).unwrap(),
        "a succeeded two-step run stores its first step"
    );
    assert_eq!(pass.deleted.steps, u64::try_from(stored_steps).unwrap());
    assert!(stored > 0, "the failed and the cancelled run stored events");
    assert_eq!(
        pass.deleted.events,
        u64::try_from(stored).unwrap(),
        "every stored event of theirs: {pass:?}"
    );
    for run in &doomed {
        assert_eq!(lab.traces(*run).await, (0, 0, 0), "run {run} is gone");
    }
    assert_eq!(lab.state(running).await, Some(RunState::Running));
    assert_eq!(lab.state(pending).await, Some(RunState::Pending));
    assert_eq!(lab.state(recent).await, Some(RunState::Cancelled));
    for run in [running, pending, recent] {
        let (rows, steps, events) = lab.traces(run).await;
        assert_eq!((rows, steps), (1, 2), "run {run} is whole");
        assert!(events >= 1, "run {run} keeps its timeline");
    }
    assert_eq!(lab.audit_entries().await, 1, "the audit trail is not runs'");

    assert_eq!(
        retention.pass().await.unwrap().batches,
        0,
        "nothing more is due"
    );
    batched.until(3, WITHIN).await.unwrap();
    lab.db.drop_now().await;
}

#[tokio::test]
async fn a_run_that_has_run_longer_than_the_retention_is_never_touched() {
    let lab = Lab::new().await;
    let t0 = lab.now();
    let running = lab.enqueue(1, t0).await[0];
    lab.store()
        .claim("elsewhere", 1, chrono::Duration::days(400), t0)
        .await
        .unwrap();
    lab.clock.advance(chrono::Duration::days(90));
    let pass = lab.retention(1_000).pass().await.unwrap();
    assert_eq!(pass.deleted.runs, 0, "{pass:?}");
    assert_eq!(lab.state(running).await, Some(RunState::Running));
    let (rows, steps, events) = lab.traces(running).await;
    assert_eq!((rows, steps), (1, 2));
    assert!(events >= 2, "created and started");
    lab.db.drop_now().await;
}
