//! Time-to-live: expired environments are torn down by the scheduler, on time
//! or by the sweep, once however many schedulers race; provisioning in flight
//! is stopped first; a failed teardown stays failed for an operator; warnings
//! are recorded once per lead time; warnings and expiries reach a webhook
//! ([`webhooks`]).

mod webhooks;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hubwright_state::model::{EnvironmentPhase, RunState};
use hubwright_state::store::environments::NewEnvironment;
use hubwright_state::workflow::{Catalog, CatalogHolder};
use hubwright_state::{Clock, ManualClock, Store, SystemClock};
use hubwright_testkit::harness::{catalog, fast_config, registry};
use hubwright_testkit::process::Process;
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use hubwright_worker::signal::MomentWatch;
use hubwright_worker::{Scheduler, SchedulerConfig, Worker};
use serde_json::json;
use uuid::Uuid;

use crate::BIN;
const WITHIN: Duration = Duration::from_secs(30);

const LAB: &str = r#"
name: lab
ttl: { default: 1h, maximum: 4h }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// Provisioning holds its first step for two seconds.
const SLOW: &str = r#"
name: slow
workflows:
  provision:
    steps:
      - { name: namespace, kind: test-block, with: { duration: 2s } }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// Teardown always fails, after one retry.
const STUCK: &str = r#"
name: stuck
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
  teardown:
    steps:
      - name: remove
        kind: test-flaky
        with: { failures: 100 }
        retry: { max_attempts: 2, initial_delay: 10ms, jitter: false }
"#;

struct Ttl {
    db: TestDatabase,
    catalog: Catalog,
}

impl Ttl {
    async fn new() -> Self {
        let db = TestDatabase::create().await;
        let dir = scratch_dir("ttl");
        for (name, yaml) in [("lab", LAB), ("slow", SLOW), ("stuck", STUCK)] {
            write_workflow(&dir, name, yaml);
        }
        let catalog = catalog(&db.store, &dir).await;
        Self { db, catalog }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    /// Requests an environment of `template` expiring at `expires_at`.
    async fn request(&self, template: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Uuid {
        let id = hubwright_state::store::enqueue::new_id();
        let name = format!("e{}", &id.simple().to_string()[24..]);
        let namespace = format!("jh-{name}");
        self.store()
            .request_environment(
                &NewEnvironment {
                    id,
                    name: &name,
                    owner: "alice",
                    template,
                    cluster: "default",
                    namespace: &namespace,
                    parameters: json!({}),
                    expires_at,
                    traceparent: None,
                },
                self.catalog.definition(template, "provision").unwrap(),
                None,
                now,
            )
            .await
            .unwrap();
        id
    }

    fn scheduler(&self, clock: Arc<dyn Clock>, sweep: Duration) -> Scheduler {
        let config = SchedulerConfig {
            sweep_interval: sweep,
            warnings: vec![Duration::from_secs(3600), Duration::from_secs(600)],
        };
        Scheduler::new(
            self.store().clone(),
            Arc::new(CatalogHolder::fixed(self.catalog.clone())),
            config,
            clock,
        )
        .unwrap()
    }

    fn worker(&self, clock: Arc<dyn Clock>) -> hubwright_worker::WorkerHandle {
        Worker::new(self.store().clone(), registry(), fast_config("w"), clock)
            .unwrap()
            .spawn()
    }

    async fn phase(&self, env: Uuid) -> EnvironmentPhase {
        self.store().environment(env).await.unwrap().phase
    }

    async fn until_phase(&self, env: Uuid, phase: EnvironmentPhase) {
        let deadline = Instant::now() + WITHIN;
        while self.phase(env).await != phase {
            assert!(
                Instant::now() < deadline,
                "environment {env} is {}, not {phase}",
                self.phase(env).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The environment's teardown runs.
    async fn teardowns(&self, env: Uuid) -> Vec<(Uuid, String, RunState)> {
        sqlx::query_as::<_, (Uuid, String, RunState)>(
            "SELECT id, created_by, state FROM runs WHERE environment_id = $1 AND workflow_of(definition_id) = 'teardown'",
        )
        .bind(env)
        .fetch_all(self.store().pool())
        .await
        .unwrap()
    }

    /// Moves `env`'s expiry to now, without the NOTIFY a request or an
    /// extension sends.
    async fn expire_now(&self, env: Uuid) {
        sqlx::query("UPDATE environments SET expires_at = $2 WHERE id = $1")
            .bind(env)
            .bind(SystemClock.now())
            .execute(self.store().pool())
            .await
            .unwrap();
    }

    /// When `env`'s teardown run was created.
    async fn teardown_created_at(&self, env: Uuid) -> DateTime<Utc> {
        sqlx::query_scalar(
            "SELECT created_at FROM runs WHERE environment_id = $1 AND workflow_of(definition_id) = 'teardown'",
        )
        .bind(env)
        .fetch_one(self.store().pool())
        .await
        .unwrap()
    }

    /// Until a teardown run exists for `env`; returns when it was seen.
    async fn until_teardown(&self, env: Uuid) -> Instant {
        let deadline = Instant::now() + WITHIN;
        while self.teardowns(env).await.is_empty() {
            assert!(Instant::now() < deadline, "no teardown of {env}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Instant::now()
    }

    async fn events(&self, env: Uuid, kind: &str) -> Vec<serde_json::Value> {
        sqlx::query_scalar::<_, Option<serde_json::Value>>(
            "SELECT data FROM events WHERE environment_id = $1 AND kind = $2 ORDER BY id",
        )
        .bind(env)
        .bind(kind)
        .fetch_all(self.store().pool())
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
    }
}

#[tokio::test]
async fn an_expiry_found_by_the_sweep_starts_teardown_within_one_sweep_interval() {
    let ttl = Ttl::new().await;
    let clock = ManualClock::new(SystemClock.now());
    let sweep = Duration::from_millis(300);
    let worker = ttl.worker(Arc::new(clock.clone()));
    let scheduler = ttl.scheduler(Arc::new(clock.clone()), sweep);
    let mut parked = scheduler.parked();
    let (stop, scheduler) = scheduler.spawn();
    let env = ttl
        .request("lab", clock.now() + chrono::Duration::hours(1), clock.now())
        .await;
    ttl.until_phase(env, EnvironmentPhase::Ready).await;
    assert!(ttl.teardowns(env).await.is_empty());

    // The scheduler's timer sleeps in real time, so moving the manual clock is
    // an expiry only the sweep can find: the pass under way when the clock
    // moves may miss it, the next one may not.
    clock.advance(chrono::Duration::hours(1) + chrono::Duration::seconds(1));
    parked.next(2, WITHIN).await.unwrap();
    assert!(
        !ttl.teardowns(env).await.is_empty(),
        "no teardown after the next sweep (every {sweep:?})"
    );
    ttl.until_phase(env, EnvironmentPhase::Deleted).await;
    let teardowns = ttl.teardowns(env).await;
    assert_eq!(teardowns.len(), 1);
    assert_eq!(teardowns[0].1, "scheduler");
    assert_eq!(teardowns[0].2, RunState::Succeeded);
    assert_eq!(ttl.events(env, "environment_expired").await.len(), 1);

    stop.send(()).unwrap();
    scheduler.await.unwrap().unwrap();
    worker.shutdown().await.unwrap();
    ttl.db.drop_now().await;
}

#[tokio::test]
async fn an_expiry_fires_on_time_without_waiting_for_the_sweep() {
    let ttl = Ttl::new().await;
    // A sweep once an hour: only the timer can be on time.
    let scheduler = ttl.scheduler(Arc::new(SystemClock), Duration::from_secs(3600));
    let mut parked = scheduler.parked();
    let (stop, scheduler) = scheduler.spawn();
    parked.until(1, WITHIN).await.unwrap();
    let now = SystemClock.now();
    let expires_at = now + chrono::Duration::milliseconds(1500);
    // Requested after the scheduler went to sleep: the NOTIFY wakes it to
    // re-plan for this expiry.
    let env = ttl.request("lab", expires_at, now).await;
    ttl.until_teardown(env).await;
    let started = ttl.teardown_created_at(env).await;
    assert!(
        started >= expires_at,
        "started {started}, before {expires_at}"
    );
    assert!(
        started - expires_at < chrono::Duration::milliseconds(500),
        "started {started}, expiry {expires_at}"
    );
    stop.send(()).unwrap();
    scheduler.await.unwrap().unwrap();
    ttl.db.drop_now().await;
}

#[tokio::test]
async fn an_expiry_whose_wake_up_was_lost_is_caught_by_the_next_sweep() {
    let ttl = Ttl::new().await;
    let sweep = Duration::from_millis(400);
    let now = SystemClock.now();
    let env = ttl
        .request("lab", now + chrono::Duration::hours(1), now)
        .await;
    let scheduler = ttl.scheduler(Arc::new(SystemClock), sweep);
    let mut parked = scheduler.parked();
    let (stop, scheduler) = scheduler.spawn();
    parked.until(1, WITHIN).await.unwrap();
    // The expiry moves without the NOTIFY (a lost delayed job): the timer
    // still sleeps towards the old one.
    ttl.expire_now(env).await;
    // The timer sleeps towards an hour from now; the pass under way may miss
    // the move, the next sweep may not.
    parked.next(2, WITHIN).await.unwrap();
    assert!(
        !ttl.teardowns(env).await.is_empty(),
        "no teardown after the next sweep (every {sweep:?})"
    );
    stop.send(()).unwrap();
    scheduler.await.unwrap().unwrap();
    ttl.db.drop_now().await;
}

#[tokio::test]
async fn expiry_during_provisioning_stops_it_at_the_step_boundary_then_tears_down() {
    let ttl = Ttl::new().await;
    let worker = ttl.worker(Arc::new(SystemClock));
    let (stop, scheduler) = ttl
        .scheduler(Arc::new(SystemClock), Duration::from_millis(200))
        .spawn();
    let now = SystemClock.now();
    let env = ttl
        .request("slow", now + chrono::Duration::hours(1), now)
        .await;
    let provisioning = ttl.store().latest_run_id(env).await.unwrap().unwrap();
    wait::run_state(ttl.store(), provisioning, RunState::Running, WITHIN).await;
    // Expired once its first step is in flight: an expiry set at the request
    // may come before a loaded machine's worker claims the run, which then
    // stops before its first step and is torn down at once.
    ttl.expire_now(env).await;

    ttl.until_phase(env, EnvironmentPhase::TearingDown).await;
    wait::run_state(ttl.store(), provisioning, RunState::Cancelled, WITHIN).await;
    ttl.until_phase(env, EnvironmentPhase::Deleted).await;
    // No teardown ran beside the step in flight: it began once the
    // provisioning run had stopped.
    let stopped = ttl.store().run(provisioning).await.unwrap().finished_at;
    let stopped = stopped.expect("the provisioning run stopped");
    let teardown_created = ttl.teardown_created_at(env).await;
    assert!(
        teardown_created >= stopped,
        "teardown created at {teardown_created}, provisioning stopped at {stopped}"
    );

    let steps = ttl.store().steps(provisioning).await.unwrap();
    assert_ne!(
        steps[1].state,
        hubwright_state::model::StepState::Succeeded,
        "the step after the boundary must not run"
    );
    let teardowns = ttl.teardowns(env).await;
    assert_eq!(teardowns.len(), 1, "{teardowns:?}");
    assert_eq!(teardowns[0].2, RunState::Succeeded);

    stop.send(()).unwrap();
    scheduler.await.unwrap().unwrap();
    worker.shutdown().await.unwrap();
    ttl.db.drop_now().await;
}

#[tokio::test]
async fn a_failed_teardown_is_retried_then_the_environment_shows_failed_with_the_error() {
    let ttl = Ttl::new().await;
    let worker = ttl.worker(Arc::new(SystemClock));
    let scheduler = ttl.scheduler(Arc::new(SystemClock), Duration::from_millis(100));
    let mut parked = scheduler.parked();
    let (stop, scheduler) = scheduler.spawn();
    let now = SystemClock.now();
    let env = ttl
        .request("stuck", now + chrono::Duration::milliseconds(300), now)
        .await;
    ttl.until_teardown(env).await;
    ttl.until_phase(env, EnvironmentPhase::Failed).await;

    let environment = ttl.store().environment(env).await.unwrap();
    let error = environment.last_error.unwrap_or_default();
    assert!(error.contains("transient failure 2 of 100"), "{error}");
    let teardowns = ttl.teardowns(env).await;
    assert_eq!(teardowns.len(), 1);
    let steps = ttl.store().steps(teardowns[0].0).await.unwrap();
    assert_eq!(steps[0].attempts, 2, "retried by its policy");

    // Sweeps go on; nothing starts another teardown behind the operator's back.
    parked.next(5, WITHIN).await.unwrap();
    assert_eq!(ttl.teardowns(env).await.len(), 1);
    assert_eq!(ttl.phase(env).await, EnvironmentPhase::Failed);

    stop.send(()).unwrap();
    scheduler.await.unwrap().unwrap();
    worker.shutdown().await.unwrap();
    ttl.db.drop_now().await;
}

/// Waits until each scheduler has passed twice more: the pass in flight when
/// the clock moved may not have seen the new time, the next one has.
async fn both_passed(a: &mut MomentWatch, b: &mut MomentWatch) {
    a.next(2, WITHIN).await.unwrap();
    b.next(2, WITHIN).await.unwrap();
}

#[tokio::test]
async fn warnings_are_recorded_once_per_lead_time_however_many_schedulers_run() {
    let ttl = Ttl::new().await;
    let clock = ManualClock::new(SystemClock.now());
    let start = clock.now();
    let env = ttl
        .request("lab", start + chrono::Duration::hours(2), start)
        .await;
    let sweep = Duration::from_millis(100);
    let (a, b) = (
        ttl.scheduler(Arc::new(clock.clone()), sweep),
        ttl.scheduler(Arc::new(clock.clone()), sweep),
    );
    let (mut parked_a, mut parked_b) = (a.parked(), b.parked());
    let (stop_a, a) = a.spawn();
    let (stop_b, b) = b.spawn();
    both_passed(&mut parked_a, &mut parked_b).await;
    assert!(ttl.events(env, "expiry_warning").await.is_empty());

    clock.set(start + chrono::Duration::minutes(61));
    let deadline = Instant::now() + WITHIN;
    while ttl.events(env, "expiry_warning").await.is_empty() {
        assert!(Instant::now() < deadline, "no warning an hour before");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    both_passed(&mut parked_a, &mut parked_b).await;
    let warnings = ttl.events(env, "expiry_warning").await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["lead_seconds"], 3600);

    clock.set(start + chrono::Duration::minutes(111));
    both_passed(&mut parked_a, &mut parked_b).await;
    let warnings = ttl.events(env, "expiry_warning").await;
    let leads: Vec<i64> = warnings
        .iter()
        .map(|w| w["lead_seconds"].as_i64().unwrap())
        .collect();
    assert_eq!(leads, [3600, 600]);
    assert_eq!(ttl.phase(env).await, EnvironmentPhase::Requested);

    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    ttl.db.drop_now().await;
}

fn scheduler_process(db: &TestDatabase, workflows: &Path, log: &Path) -> Process {
    let workflows = workflows.display().to_string();
    Process::start(
        Path::new(BIN),
        &db.url,
        &[
            "serve",
            "--scheduler",
            "--workflows",
            &workflows,
            "--expiry-sweep-interval",
            "300ms",
        ],
        log,
    )
}

#[tokio::test]
async fn three_scheduler_processes_race_on_500_expiries_and_each_environment_gets_one_teardown() {
    let ttl = Ttl::new().await;
    let dir = scratch_dir("ttl-race");
    write_workflow(&dir, "lab", LAB);
    let now = SystemClock.now();
    let mut envs = Vec::new();
    for _ in 0..500 {
        envs.push(
            ttl.request("lab", now + chrono::Duration::hours(1), now)
                .await,
        );
    }
    let schedulers: Vec<Process> = (0..3)
        .map(|i| scheduler_process(&ttl.db, &dir, &dir.join(format!("scheduler-{i}.log"))))
        .collect();
    for scheduler in &schedulers {
        scheduler
            .wait_for_log("scheduler started", Duration::from_secs(30))
            .await;
    }
    // All expire at the same instant, two seconds from now: every scheduler's
    // timer fires for them at once.
    let expires_at = SystemClock.now() + chrono::Duration::seconds(2);
    sqlx::query("UPDATE environments SET expires_at = $1")
        .bind(expires_at)
        .execute(ttl.store().pool())
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('hubwright_expiry', '')")
        .execute(ttl.store().pool())
        .await
        .unwrap();

    let deadline = Instant::now() + WITHIN;
    loop {
        let started = ttl
            .store()
            .teardown_run_counts()
            .await
            .unwrap()
            .iter()
            .filter(|(_, n)| *n > 0)
            .count();
        if started == envs.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{started} of 500 teardowns started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few more sweeps by all three, then count.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = ttl.store().teardown_run_counts().await.unwrap();
    assert_eq!(counts.len(), 500);
    let wrong: Vec<_> = counts.iter().filter(|(_, n)| *n != 1).collect();
    assert!(wrong.is_empty(), "not exactly one teardown: {wrong:?}");
    let expired: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE kind = 'environment_expired'")
            .fetch_one(ttl.store().pool())
            .await
            .unwrap();
    assert_eq!(expired, 500);
    let provisioning_cancelled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM runs WHERE workflow_of(definition_id) = 'provision' AND state = 'cancelled'",
    )
    .fetch_one(ttl.store().pool())
    .await
    .unwrap();
    assert_eq!(provisioning_cancelled, 500, "no worker ran: all were idle");
    let active = schedulers
        .iter()
        .filter(|s| s.log_text().contains("expired environments"))
        .count();
    eprintln!("{active} of 3 schedulers expired environments");

    drop(schedulers);
    ttl.db.drop_now().await;
}

#[tokio::test]
async fn operators_see_expiring_environments_and_warnings_in_the_metrics() {
    use hubwright_state::model::Role;
    use hubwright_testkit::server::{ApiServer, StatusCode, token};

    let db = TestDatabase::create().await;
    let dir = write_workflow(&scratch_dir("ttl-metrics"), "lab", LAB);
    let server = ApiServer::start(
        &db,
        &dir,
        &[
            "--scheduler",
            "--expiry-sweep-interval",
            "200ms",
            "--expiry-warnings",
            "1h,10m",
        ],
    )
    .await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let created = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": "soon", "template": "lab", "ttl": "30m" }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);

    // Expiring within the hour, not within ten minutes; the 1h warning is due.
    let wanted = [
        "hubwright_environment_expiring{within=\"1h\"} 1",
        "hubwright_environment_expiring{within=\"10m\"} 0",
        "hubwright_expiry_warnings_total{within=\"1h\"} 1",
    ];
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let metrics = server.get("/metrics").token(&ops).send().await;
        let text = metrics.text().to_owned();
        if wanted.iter().all(|line| text.lines().any(|l| l == *line)) {
            assert!(
                !text.contains("hubwright_expiry_warnings_total{within=\"10m\"}"),
                "{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing {wanted:?} in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
