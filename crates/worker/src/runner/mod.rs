//! The worker process: claims due runs, drives each one step by step, keeps its
//! leases alive, rescues runs of dead workers, and shuts down gracefully.

mod committer;
mod drive;
mod leases;
mod observe;
mod pacing;
mod presence;
mod rescue;
mod spans;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::ExponentialBuilder;
use hubwright_state::workflow::Snapshot;
use hubwright_state::{Clock, Store};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinSet;

use crate::Result;
use crate::config::WorkerConfig;
use crate::pulse::Pulse;
use crate::registry::Registry;
use crate::signal::{Moment, MomentWatch};
use committer::Committer;
use leases::Leases;
use pacing::{Next, Pacing};
use rescue::rescue;

/// The longest pause between attempts while the database is away, before
/// jitter (which adds up to as much again): a worker sees it back within
/// about a second.
const OUTAGE_MAX_DELAY: Duration = Duration::from_millis(500);

/// Attempts while the database is away: quick at first, then every half
/// second to a second, for as long as the caller lets them go on (commits:
/// while their lease lasts; heartbeats and rescue: until one succeeds).
fn outage_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(OUTAGE_MAX_DELAY)
        .without_max_times()
        .with_jitter()
}

/// State every task of one worker process shares.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Store,
    registry: Registry,
    config: WorkerConfig,
    clock: Arc<dyn Clock>,
    /// The worker id, as lease owner and event actor.
    id: Arc<str>,
    leases: Arc<Leases>,
    committer: Committer,
    /// Definition snapshots are immutable, so a cache never goes stale.
    definitions: Mutex<HashMap<i64, Arc<Snapshot>>>,
    /// Set on shutdown: runs are released at their next step boundary.
    stopping: AtomicBool,
    /// Reached when a claim round found nothing more due and the loop is
    /// about to sleep.
    idle: Moment,
    /// Beaten each time the claim loop goes round, for readiness probes.
    pulse: Pulse,
    /// Told when a database call failed: the rescuer then tries until the
    /// database answers, refreshes the leases still held and rescues the
    /// rest at once, instead of at its next round.
    rescue_soon: Notify,
    /// Told when a run gives its slot back ([`drive`]), so the claim loop
    /// counts it at once rather than when the run's task ends.
    slot_freed: Notify,
}

impl Shared {
    async fn definition(&self, id: i64) -> hubwright_state::Result<Arc<Snapshot>> {
        if let Some(found) = self.lock_definitions().get(&id) {
            return Ok(Arc::clone(found));
        }
        let snapshot = Arc::new(self.store.definition(id).await?);
        self.lock_definitions().insert(id, Arc::clone(&snapshot));
        Ok(snapshot)
    }

    fn lock_definitions(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Snapshot>>> {
        self.definitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX)
    }

    /// For a backoff's `adjust`: the next `delay` if a write about `run_id`
    /// tried again after it would still land inside the run's lease, less a
    /// margin for the attempt itself; `None` (give up) otherwise, or when
    /// the lease is no longer held here. Past that point another worker may
    /// take the run over, and the fencing token refuses the write anyway.
    fn within_lease(&self, run_id: uuid::Uuid, delay: Option<Duration>) -> Option<Duration> {
        let delay = delay?;
        let expires_at = self.leases.expires_at(run_id)?;
        let margin = (self.config.lease / 10).min(Duration::from_secs(1));
        let lands = self.clock.now()
            + chrono::Duration::from_std(delay + margin).unwrap_or(chrono::Duration::MAX);
        (lands < expires_at).then_some(delay)
    }
}

/// A worker: construct it, then [`Worker::run`] it until a shutdown signal, or
/// [`Worker::spawn`] it and keep the handle.
#[derive(Debug)]
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// A worker over `store` that executes the kinds in `registry`. Fails when
    /// the configuration breaks a rule.
    pub fn new(
        store: Store,
        registry: Registry,
        config: WorkerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        config.validate()?;
        // The loop goes round at least every poll interval; a claim stuck
        // for longer than a lease has lost its runs anyway.
        let pulse = Pulse::new("worker", config.lease.max(config.poll_interval * 3));
        let shared = Shared {
            committer: Committer::start(store.clone(), Arc::clone(&clock)),
            id: Arc::from(config.id.as_str()),
            store,
            registry,
            config,
            clock,
            leases: Arc::default(),
            definitions: Mutex::default(),
            stopping: AtomicBool::new(false),
            idle: Moment::default(),
            pulse,
            rescue_soon: Notify::new(),
            slot_freed: Notify::new(),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Comes each time a claim round found nothing more due and the worker
    /// is about to sleep: a test waits for it instead of sleeping.
    pub fn idle(&self) -> MomentWatch {
        self.shared.idle.watch()
    }

    /// The claim loop's pulse: a readiness probe asks it whether the loop
    /// still goes round.
    pub fn pulse(&self) -> Pulse {
        self.shared.pulse.clone()
    }

    /// Runs in the background until [`WorkerHandle::shutdown`].
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let id = self.id().to_owned();
        let idle = self.idle();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        WorkerHandle {
            id,
            idle,
            stop: Some(stop),
            task,
        }
    }

    /// Claims and executes runs until `shutdown` resolves; then stops claiming,
    /// lets in-flight steps finish within the grace period, and releases the
    /// leases of whatever is left.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let shared = self.shared;
        let wake = Arc::new(Notify::new());
        let mut background = JoinSet::new();
        background.spawn(listen(shared.store.clone(), Arc::clone(&wake)));
        background.spawn(leases::heartbeat(Arc::clone(&shared)));
        background.spawn(rescue(Arc::clone(&shared), Arc::clone(&wake)));
        background.spawn(presence::beat(Arc::clone(&shared)));
        tracing::info!(
            worker = %shared.id,
            concurrency = shared.config.concurrency,
            lease = ?shared.config.lease,
            "worker started"
        );

        let capacity = Arc::new(Semaphore::new(shared.config.concurrency));
        let mut pacing = Pacing::new(shared.config.concurrency, shared.config.claim_batch);
        let mut runs = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            shared.pulse.beat();
            metrics::gauge!(crate::metrics::WORKER_HEARTBEAT)
                .set(shared.clock.now().timestamp_millis() as f64 / 1000.0);
            let free = capacity.available_permits();
            let mut went_idle = false;
            let idle_for = match pacing.next(free, Instant::now(), shared.config.poll_interval) {
                Next::Wait(wait) => wait,
                Next::Claim(limit) => match claim(&shared, limit).await {
                    Ok((claimed, expires_at)) => {
                        let full = claimed.len() == limit;
                        for run in claimed {
                            let Ok(permit) = Arc::clone(&capacity).try_acquire_owned() else {
                                break;
                            };
                            runs.spawn(drive::drive(Arc::clone(&shared), run, expires_at, permit));
                        }
                        if full {
                            continue;
                        }
                        let idle_for = next_poll(&shared).await;
                        pacing.nothing_due(Instant::now(), idle_for);
                        went_idle = true;
                        idle_for
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "claim failed; retrying");
                        shared.rescue_soon.notify_one();
                        pacing.nothing_due(Instant::now(), shared.config.poll_interval);
                        shared.config.poll_interval
                    }
                },
            };
            if went_idle {
                shared.idle.reached();
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified() => pacing.woken(),
                // A run gives its slot back before its last commit lands:
                // the slot is filled then, not when the run's task ends.
                () = shared.slot_freed.notified() => {}
                () = tokio::time::sleep(idle_for) => {}
                // A run's task ends after its last commit, which may have
                // scheduled a retry or a poll no notification announces.
                Some(ended) = runs.join_next(), if !runs.is_empty() => {
                    report(ended);
                    pacing.woken();
                }
            }
        }

        tracing::info!(worker = %shared.id, in_flight = runs.len(), "shutting down");
        shared.stopping.store(true, Ordering::SeqCst);
        let drained = tokio::time::timeout(shared.config.shutdown_grace, async {
            while let Some(ended) = runs.join_next().await {
                report(ended);
            }
        })
        .await;
        if drained.is_err() {
            // The grace period is over: abandon the steps still in flight and
            // hand their runs to other workers now rather than at lease expiry.
            let held = shared.leases.snapshot();
            runs.abort_all();
            while runs.join_next().await.is_some() {}
            for (run_id, token) in held {
                let reason = format!("worker {} shut down before the step finished", shared.id);
                if let Err(err) = shared
                    .store
                    .release(run_id, token, &reason, shared.clock.now())
                    .await
                {
                    tracing::warn!(%run_id, error = %err, "could not release lease; it will expire");
                }
            }
        }
        background.abort_all();
        presence::stopped(&shared).await;
        tracing::info!(worker = %shared.id, "worker stopped");
        Ok(())
    }
}

/// Claims up to `limit` runs; returns them and when their leases run out.
async fn claim(
    shared: &Shared,
    limit: usize,
) -> hubwright_state::Result<(
    Vec<hubwright_state::store::lease::ClaimedRun>,
    chrono::DateTime<chrono::Utc>,
)> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let now = shared.clock.now();
    let claimed = shared
        .store
        .claim(&shared.id, limit, shared.lease(), now)
        .await?;
    Ok((claimed, now + shared.lease()))
}

/// How long to sleep when nothing more is due: until the next run becomes due,
/// at most the poll interval.
async fn next_poll(shared: &Shared) -> Duration {
    let poll = shared.config.poll_interval;
    match shared.store.next_due().await {
        Ok(Some(due)) => (due - shared.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(5), poll),
        Ok(None) => poll,
        Err(err) => {
            tracing::warn!(error = %err, "could not read the next due time");
            poll
        }
    }
}

fn report(ended: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended
        && err.is_panic()
    {
        tracing::error!(error = %err, "a run task panicked; its lease will expire and the run be rescued");
    }
}

/// Turns NOTIFY wake-ups into local ones. On a lost connection it reconnects,
/// and looks once it listens again.
async fn listen(store: Store, wake: Arc<Notify>) {
    loop {
        match store.wake_listener().await {
            Ok(mut listener) => {
                // Runs that became due before LISTEN took effect (at start,
                // or while reconnecting) were announced to nobody: look now.
                wake.notify_one();
                loop {
                    match listener.recv().await {
                        Ok(()) => wake.notify_one(),
                        Err(err) => {
                            tracing::warn!(error = %err, "wake-up listener failed; reconnecting");
                            wake.notify_one();
                            break;
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot listen for wake-ups; polling only"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Controls a worker started with [`Worker::spawn`].
#[derive(Debug)]
pub struct WorkerHandle {
    id: String,
    idle: MomentWatch,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl WorkerHandle {
    /// The worker's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// See [`Worker::idle`].
    pub fn idle(&self) -> MomentWatch {
        self.idle.clone()
    }

    /// Asks the worker to stop and waits until it has.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.await {
            Ok(result) => result,
            Err(err) => {
                tracing::error!(error = %err, "worker task failed");
                Ok(())
            }
        }
    }
}
