//! The chaos suite: real `hubwright serve --worker` processes against real
//! PostgreSQL, disrupted at random while they work — SIGKILLed and replaced,
//! SIGSTOPped past their lease, their database connections cut through the
//! testkit's proxy, the database restarted — and TTL schedulers SIGKILLed
//! while they race over a mass expiry. Then: every run succeeded, every step
//! was committed once by the worker that held its claim, and every repeated
//! execution is accounted for by a lost lease and what took it ([`audit`]).
//!
//! The short round runs in `just test`; the long one (`#[ignore]`d, sized by
//! `just chaos`) prints the figures `docs/reliability.md` records.

mod audit;
mod fleet;
mod rounds;
mod ttl_race;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use hubwright_state::Store;
use hubwright_state::model::RunState;
use hubwright_testkit::harness::{catalog, start_many};
use hubwright_testkit::postgres::PrivatePostgres;
use hubwright_testkit::tcp_proxy::TcpProxy;
use hubwright_testkit::{scratch_dir, wait, write_workflow};
use serde_json::{Value, json};
use uuid::Uuid;

use fleet::{Cause, Fleet, WorkerArgs};

/// What one round does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Worker processes at any time.
    pub workers: usize,
    /// Four-step runs.
    pub runs: usize,
    /// Workers SIGKILLed (each replaced at once).
    pub kills: usize,
    /// Workers SIGSTOPped until another has rescued their runs.
    pub pauses: usize,
    /// Database connections cut through the proxy, for these long each.
    pub cuts: Vec<Duration>,
    /// Restarts of the database server (needs a private one).
    pub restarts: usize,
    /// The workers' lease.
    pub lease: Duration,
    /// The TTL race after the runs, if any.
    pub ttl: Option<ttl_race::TtlPlan>,
}

/// The database of a round: a store the test reads with (past the proxy),
/// its URL, and the server when the test owns it and may restart it.
pub struct Database<'a> {
    /// Read and enqueue with this; replaced after a restart.
    pub store: Store,
    /// The URL the proxy forwards to.
    pub url: String,
    /// The server, when it is the test's own.
    pub server: Option<&'a PrivatePostgres>,
}

/// Deadline for what takes seconds when all is well.
const WITHIN: Duration = Duration::from_secs(120);

/// A, C and D record their effect; B holds the worker for a moment first,
/// so kills and pauses find steps in flight.
fn template(effects: &Path) -> String {
    format!(
        r#"
name: chaos
workflows:
  provision:
    steps:
      - {{ name: a, kind: test-record, with: {{ path: "{log}" }} }}
      - {{ name: b, kind: test-block, with: {{ duration: 300ms, record: "{log}" }} }}
      - {{ name: c, kind: test-record, with: {{ path: "{log}" }} }}
      - {{ name: d, kind: test-block, with: {{ duration: 100ms, record: "{log}" }} }}
"#,
        log = effects.display()
    )
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Kill,
    Pause,
    Cut(Duration),
    Restart,
}

/// A small seeded generator (SplitMix64): a round's choices can be replayed
/// from the seed in its figures.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// From `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap()
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Runs one round and returns its figures; panics naming every violation.
pub async fn round(db: &mut Database<'_>, plan: &Plan, rng: &mut Rng) -> Value {
    let began = Instant::now();
    let dir = scratch_dir("chaos");
    let effects = dir.join("effects.log");
    let workflows = dir.join("workflows");
    write_workflow(&workflows, "chaos", &template(&effects));
    write_workflow(&workflows, "chaos-ttl", &ttl_race::template(&effects));
    let catalog = catalog(&db.store, &workflows).await;
    let (proxy, url) = TcpProxy::for_database(&db.url).await;
    let args = WorkerArgs {
        url,
        workflows: workflows.clone(),
        logs: dir.clone(),
        lease: plan.lease,
        concurrency: 8,
    };
    let mut fleet = Fleet::start(args, plan.workers);

    let mut actions: Vec<Action> = std::iter::repeat_n(Action::Kill, plan.kills)
        .chain(std::iter::repeat_n(Action::Pause, plan.pauses))
        .chain(plan.cuts.iter().map(|d| Action::Cut(*d)))
        .chain(std::iter::repeat_n(Action::Restart, plan.restarts))
        .collect();
    rng.shuffle(&mut actions);
    // Runs arrive in waves, one before each disruption, so each finds work.
    let waves = actions.len() + 1;
    let mut runs: Vec<Uuid> = Vec::new();
    let wave = |i: usize| plan.runs * (i + 1) / waves - plan.runs * i / waves;
    for (i, action) in actions.iter().enumerate() {
        runs.extend(start_many(&db.store, &catalog, "chaos", "provision", wave(i)).await);
        let at = matches!(action, Action::Pause).then_some(1);
        let slot = busy_slot(&db.store, &fleet, at, rng).await;
        match *action {
            Action::Kill => fleet.kill_and_replace(slot).await,
            Action::Pause => {
                // Caught inside step b, which holds the worker for 300 ms.
                let since = fleet.pause(slot);
                // Past its lease: until the others have rescued all it held.
                let id = fleet.id(slot).to_owned();
                wait::until("the paused worker's runs to be rescued", WITHIN, || {
                    held(&db.store, &id)
                })
                .await;
                fleet.resume(slot, since);
            }
            Action::Cut(outage) => {
                let from = Utc::now();
                proxy.cut_for(outage).await.unwrap();
                fleet.database_disrupted(Cause::ConnectionCut, from);
            }
            Action::Restart => {
                let server = db.server.expect("restarts need the test's own server");
                let from = Utc::now();
                server.restart().await.unwrap();
                fleet.database_disrupted(Cause::PostgresRestart, from);
                // Its idle connections died with the server.
                db.store.pool().close().await;
                db.store = Store::connect(&db.url, 10).await.unwrap();
            }
        }
    }
    runs.extend(start_many(&db.store, &catalog, "chaos", "provision", wave(waves - 1)).await);
    all_succeeded(&db.store, runs.len(), &fleet).await;

    let ttl = match &plan.ttl {
        Some(ttl) => {
            let context = ttl_race::Context {
                store: &db.store,
                url: &db.url,
                catalog: &catalog,
                workflows: &workflows,
                dir: &dir,
                settled: runs.len(),
            };
            Some(ttl_race::race(&context, ttl, rng, &fleet).await)
        }
        None => None,
    };

    let audit = audit::audit(&db.store, &effects, &fleet.disruptions, plan.lease).await;
    let violations = db.store.audit_exactly_once().await.unwrap();
    assert!(
        audit.problems.is_empty() && violations.is_empty(),
        "{} violations:\n{}\n{}",
        audit.problems.len() + violations.len(),
        audit.problems.join("\n"),
        violations.join("\n")
    );
    let mut figures = audit.figures();
    // Each database disruption, and what it cost.
    let database: Vec<Value> = fleet
        .disruptions
        .iter()
        .zip(&audit.per_disruption)
        .filter(|(d, _)| d.who.is_none())
        .map(|(d, (rescues, repeated))| {
            let seconds = (d.to - d.from).num_milliseconds() as f64 / 1000.0;
            json!({ "cause": d.cause.name(), "seconds": seconds, "rescues": rescues, "re_executions": repeated })
        })
        .collect();
    let count = |cause: Cause| {
        fleet
            .disruptions
            .iter()
            .filter(|d| d.cause == cause)
            .count()
    };
    let succeeded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM runs WHERE state = 'succeeded' AND id = ANY($1)")
            .bind(&runs)
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    let extra = json!({
        "workers": plan.workers,
        "runs": runs.len(),
        "runs_succeeded": succeeded,
        "worker_processes": fleet.started(),
        "worker_kills": count(Cause::WorkerKilled),
        "worker_pauses": count(Cause::WorkerPaused),
        "connection_cuts": count(Cause::ConnectionCut),
        "database_disruptions": database,
        "postgres_restarts": count(Cause::PostgresRestart),
        "lease_seconds": plan.lease.as_secs_f64(),
        "ttl": ttl,
        "seconds": (began.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    merge(&mut figures, extra);
    drop(fleet);
    drop(proxy);
    figures
}

/// Adds `more`'s fields to `into`.
fn merge(into: &mut Value, more: Value) {
    if let (Some(into), Value::Object(more)) = (into.as_object_mut(), more) {
        into.extend(more);
    }
}

/// A slot whose worker holds a run (at step `at`, when given), once one
/// does; any slot when no run is left open. A disruption then hits work in
/// flight whenever there is any.
async fn busy_slot(store: &Store, fleet: &Fleet, at: Option<i32>, rng: &mut Rng) -> usize {
    let slots = wait::until_some("a worker to hold a run", WITHIN, || async {
        let open: Vec<(Option<String>, i32)> = sqlx::query_as(
            "SELECT lease_owner, current_step FROM runs WHERE state IN ('pending', 'running')",
        )
        .fetch_all(store.pool())
        .await
        .ok()?;
        if open.is_empty() {
            return Some((0..fleet.len()).collect::<Vec<_>>());
        }
        let busy: Vec<usize> = (0..fleet.len())
            .filter(|slot| {
                open.iter().any(|(owner, step)| {
                    owner.as_deref() == Some(fleet.id(*slot)) && at.is_none_or(|at| at == *step)
                })
            })
            .collect();
        (!busy.is_empty()).then_some(busy)
    })
    .await;
    slots[rng.below(slots.len())]
}

/// Whether `worker` holds no running run.
async fn held(store: &Store, worker: &str) -> bool {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM runs WHERE state = 'running' AND lease_owner = $1",
    )
    .bind(worker)
    .fetch_one(store.pool())
    .await
    .ok();
    held == Some(0)
}

/// Until `expected` runs have succeeded; fails at once when one failed, and
/// after [`WITHIN`] naming the runs still open.
async fn all_succeeded(store: &Store, expected: usize, fleet: &Fleet) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let counts = store.count_runs_by_state().await.unwrap_or_default();
        let of = |state: RunState| {
            counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n)
        };
        assert_eq!(of(RunState::Failed), 0, "a run failed: {counts:?}");
        if usize::try_from(of(RunState::Succeeded)).unwrap() >= expected {
            return;
        }
        if Instant::now() > deadline {
            let open: Vec<(Uuid, RunState, i32, Option<String>)> = sqlx::query_as(
                "SELECT id, state, current_step, lease_owner FROM runs WHERE state <> 'succeeded' LIMIT 20",
            )
            .fetch_all(store.pool())
            .await
            .unwrap_or_default();
            panic!(
                "{counts:?} after {WITHIN:?}, {expected} expected to succeed; open: {open:#?}\n{}",
                fleet.tail_of_logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where `just chaos` wants the figures line appended, if anywhere.
pub fn figures_file() -> Option<PathBuf> {
    std::env::var_os("HUBWRIGHT_CHAOS_FIGURES").map(PathBuf::from)
}
