//! The TTL scheduler: tears expired environments down without anyone asking,
//! and warns before they expire.
//!
//! Two paths reach the same statements in `hubwright_state::store::expiry`:
//! - **on time**: the loop sleeps until the next expiry or warning (the
//!   earliest `expires_at` is its delayed job), woken early by `NOTIFY
//!   hubwright_expiry` when an environment is requested or extended;
//! - **the sweep**: at least every `sweep_interval` it passes anyway, which
//!   catches whatever the timer missed (a scheduler that was down, a lost
//!   notification, a clock that jumped), and starts teardowns that waited for a
//!   provisioning run to stop.
//!
//! Any number of schedulers may run: the database hands each expired
//! environment to exactly one of them (see the `expiry` module).

mod config;
mod plans;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hubwright_state::workflow::CatalogHolder;
use hubwright_state::{Clock, Store};
use hubwright_telemetry::TraceParent;
use tokio::sync::Notify;

use crate::Result;
use crate::pulse::Pulse;
use crate::signal::{Moment, MomentWatch};
pub use config::SchedulerConfig;
use plans::{Plans, fill_pool, report_pool};

/// Most environments expired by one statement.
const BATCH: i64 = 500;

/// The scheduler: construct it, then [`Scheduler::run`] it until shutdown.
#[derive(Debug)]
pub struct Scheduler {
    store: Store,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    /// The templates in force: their `teardown` workflows expire their
    /// environments (those of a template without one never expire), and
    /// their pools are kept at size. Reloaded without a restart.
    templates: Arc<CatalogHolder>,
    /// The pools of the templates last seen, worked out again when the
    /// templates in force change.
    plans: Mutex<Option<Arc<Plans>>>,
    /// Reached each time the loop has passed and planned its next wake-up,
    /// right before it sleeps.
    parked: Moment,
    /// Beaten each time the loop goes round, for readiness probes.
    pulse: Pulse,
}

impl Scheduler {
    /// A scheduler for the templates `templates` holds (registered).
    pub fn new(
        store: Store,
        templates: Arc<CatalogHolder>,
        config: SchedulerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        config.validate()?;
        // The loop goes round at least every sweep interval; a pass over a
        // large backlog may take a while longer.
        let pulse = Pulse::new(
            "scheduler",
            config.sweep_interval * 2 + Duration::from_secs(60),
        );
        Ok(Self {
            store,
            clock,
            config,
            templates,
            plans: Mutex::new(None),
            parked: Moment::default(),
            pulse,
        })
    }

    /// Comes each time the loop has done a pass, planned its next wake-up and
    /// is about to sleep: a test waits for it instead of sleeping.
    pub fn parked(&self) -> MomentWatch {
        self.parked.watch()
    }

    /// The loop's pulse: a readiness probe asks it whether the loop still
    /// goes round.
    pub fn pulse(&self) -> Pulse {
        self.pulse.clone()
    }

    fn leads(&self) -> Vec<i64> {
        self.config
            .warnings
            .iter()
            .map(|w| i64::try_from(w.as_secs()).unwrap_or(i64::MAX))
            .collect()
    }

    /// One pass: expires everything due (in batches), records warnings that
    /// fell due, and with `sweep` also starts teardowns that waited for a run
    /// to stop and refreshes the gauge. Returns how many environments expired.
    pub async fn pass(&self, sweep: bool) -> Result<usize> {
        let plans = self.plans();
        let teardowns = plans.teardowns();
        let mut expired = 0;
        loop {
            let now = self.clock.now();
            // A batch that expires something is a trace of its own, which
            // the teardowns it asks for join; one that expires nothing
            // makes no span.
            let span = std::sync::OnceLock::new();
            let batch = self
                .store
                .expire_due(&teardowns, BATCH, now, || {
                    let started = expiry_span();
                    let context = TraceParent::of_span(&started).map(|tp| tp.to_string());
                    let _ = span.set(started);
                    context
                })
                .await?;
            expired += batch.marked;
            if batch.marked > 0 {
                metrics::counter!(crate::metrics::ENVIRONMENTS_EXPIRED)
                    .increment(batch.marked as u64);
                let span = span.get().cloned().unwrap_or_else(tracing::Span::none);
                span.record("expired", batch.marked);
                span.record("teardowns_started", batch.started);
                span.in_scope(|| {
                    tracing::info!(
                        expired = batch.marked,
                        teardowns_started = batch.started,
                        "expired environments; teardown requested"
                    );
                });
            }
            if i64::try_from(batch.marked).unwrap_or(i64::MAX) < BATCH {
                break;
            }
        }
        let leads = self.leads();
        let now = self.clock.now();
        if !leads.is_empty() {
            for (lead, count) in self.store.record_expiry_warnings(&leads, now).await? {
                let within = lead_label(lead);
                metrics::counter!(crate::metrics::EXPIRY_WARNINGS, "within" => within.clone())
                    .increment(u64::try_from(count).unwrap_or(0));
                tracing::info!(count, within, "expiry warnings recorded");
            }
        }
        // One pool's trouble (a database hiccup, a bad namespace) neither
        // stops the others nor the expiries.
        for plan in &plans.pools {
            if let Err(err) = fill_pool(&self.store, plan, now).await {
                tracing::warn!(pool = plan.template(), cluster = plan.cluster(), error = %err, "pool fill failed");
            }
        }
        if sweep {
            for plan in &plans.pools {
                if let Err(err) = report_pool(&self.store, plan, now).await {
                    tracing::warn!(pool = plan.template(), error = %err, "pool figures unavailable");
                }
            }
            let started = self.store.start_due_teardowns(now).await?;
            if started > 0 {
                tracing::info!(started, "started teardowns that waited for a run to stop");
            }
            for (lead, count) in self.store.count_expiring(&leads, now).await? {
                metrics::gauge!(crate::metrics::ENVIRONMENT_EXPIRING, "within" => lead_label(lead))
                    .set(count as f64);
            }
        }
        Ok(expired)
    }

    /// How long to sleep: until the next expiry or warning, at most until the
    /// next sweep.
    async fn next_wake(&self, until_sweep: Duration) -> Duration {
        let now = self.clock.now();
        match self.store.next_expiry_event(&self.leads(), now).await {
            Ok(Some(at)) => (at - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(until_sweep),
            Ok(None) => until_sweep,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the next expiry");
                until_sweep
            }
        }
    }

    /// Expires environments on time until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(self.store.clone(), Arc::clone(&wake)));
        tracing::info!(
            sweep_interval = ?self.config.sweep_interval,
            warnings = ?self.config.warnings,
            templates = self.plans().teardowns().len(),
            "scheduler started"
        );
        tokio::pin!(shutdown);
        let mut next_sweep = tokio::time::Instant::now();
        loop {
            self.pulse.beat();
            metrics::gauge!(crate::metrics::SCHEDULER_HEARTBEAT)
                .set(self.clock.now().timestamp_millis() as f64 / 1000.0);
            let sweep = tokio::time::Instant::now() >= next_sweep;
            if sweep {
                next_sweep = tokio::time::Instant::now() + self.config.sweep_interval;
            }
            if let Err(err) = self.pass(sweep).await {
                tracing::warn!(error = %err, "expiry pass failed; retrying at the next wake-up");
            }
            let until_sweep = next_sweep.saturating_duration_since(tokio::time::Instant::now());
            // A timer that fires at the expiry itself finds it due: Postgres
            // compares with the same clock. Never spin faster than 5 ms.
            let sleep = self
                .next_wake(until_sweep)
                .await
                .max(Duration::from_millis(5));
            self.parked.reached();
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
        listener.abort();
        tracing::info!("scheduler stopped");
        Ok(())
    }

    /// Runs in the background until the returned sender is dropped or sent to.
    pub fn spawn(
        self,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<()>>,
    ) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        (stop, task)
    }
}

/// `3600` → `1h`, `600` → `10m`, `90` → `90s`: the metric label and log field.
fn lead_label(seconds: i64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Turns NOTIFY on the expiry channel into local wake-ups; the sweep covers
/// anything missed while the connection is down.
async fn listen(store: Store, wake: Arc<Notify>) {
    loop {
        match store.expiry_listener().await {
            Ok(mut listener) => loop {
                match listener.recv().await {
                    Ok(()) => wake.notify_one(),
                    Err(err) => {
                        tracing::warn!(error = %err, "expiry listener failed; reconnecting");
                        wake.notify_one();
                        break;
                    }
                }
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for expiry changes; sweeping only")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The root span of one expiry batch: its trace is the one the teardowns it
/// starts join (docs/decisions/0023-tracing.md). A root, whatever span the
/// loop runs in.
fn expiry_span() -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "expire",
        otel.name = "scheduler expire environments",
        expired = tracing::field::Empty,
        teardowns_started = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(context) = TraceParent::of_span(&span) {
        span.record("trace_id", context.trace_id_hex());
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_labels_read_like_the_flag() {
        assert_eq!(lead_label(3600), "1h");
        assert_eq!(lead_label(600), "10m");
        assert_eq!(lead_label(90), "90s");
    }
}
