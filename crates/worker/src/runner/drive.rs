//! Drives one claimed run: executes its current step, commits the outcome under
//! the fencing token, and goes on to the next step while the lease holds.
//!
//! A commit the database refuses for being away is tried again for as long
//! as the lease lasts (the heartbeat keeps extending it once the database is
//! back), so an outage shorter than the lease repeats no step.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::Retryable;
use hubwright_state::model::RunState;
use hubwright_state::store::checkpoint::{Fence, StepSuccess};
use hubwright_state::store::lease::{ClaimedRun, StepClaim};
use hubwright_state::workflow::{Snapshot, StepDef};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tracing::Instrument;
use uuid::Uuid;

use super::leases::LeaseSignal;
use super::{Shared, observe, outage_backoff};
use crate::cause::Cause;
use crate::retry::delay_before_retry;
use crate::step::{Outcome, StepContext, StepError};

/// How one execution ended, from the runner's point of view.
pub(super) enum Executed {
    /// The step returned an outcome.
    Outcome(Outcome),
    /// An operator cancelled the run while the step was in flight.
    Cancelled,
    /// The lease was lost while the step was in flight.
    LeaseLost,
}

/// What to do after committing.
enum Then {
    Continue(StepClaim),
    Stop,
}

struct Ctx {
    shared: Arc<Shared>,
    run_id: Uuid,
    token: i64,
    step_count: i32,
    snapshot: Arc<Snapshot>,
    input: Arc<Value>,
    /// When the run was requested, and whether its success makes an
    /// environment ready: for the time-to-ready histogram.
    requested_at: chrono::DateTime<chrono::Utc>,
    has_environment: bool,
    signal: watch::Receiver<LeaseSignal>,
    /// This run's slot of the worker's concurrency.
    slot: Mutex<Option<OwnedSemaphorePermit>>,
}

pub(super) async fn drive(
    shared: Arc<Shared>,
    claimed: ClaimedRun,
    expires_at: chrono::DateTime<chrono::Utc>,
    permit: OwnedSemaphorePermit,
) {
    let span = super::spans::run(&claimed);
    async move {
        observe::claimed(claimed.due_at, shared.clock.now());
        let (_guard, signal) = shared.leases.hold(claimed.id, claimed.token, expires_at);
        let snapshot = match (|| shared.definition(claimed.definition_id))
            .retry(outage_backoff())
            .when(is_transient)
            .adjust(|_, delay| shared.within_lease(claimed.id, delay))
            .await
        {
            Ok(snapshot) => snapshot,
            Err(err) => {
                // Dropping the lease guard stops the heartbeat for this run: it
                // expires and is rescued once the database is back.
                tracing::warn!(error = %err, "cannot load the run's definition");
                shared.rescue_soon.notify_one();
                return;
            }
        };
        let ctx = Ctx {
            run_id: claimed.id,
            token: claimed.token,
            step_count: claimed.step_count,
            slot: Mutex::new(Some(permit)),
            input: Arc::new(claimed.input),
            requested_at: claimed.requested_at,
            has_environment: claimed.has_environment,
            snapshot,
            shared,
            signal,
        };
        let mut step = claimed.step;
        loop {
            let span = super::spans::step(&ctx.snapshot, &step);
            match ctx.step(step).instrument(span).await {
                Then::Continue(next) if ctx.shared.stopping.load(Ordering::SeqCst) => {
                    let reason = format!("worker {} is shutting down", ctx.shared.id);
                    let now = ctx.shared.clock.now();
                    if let Err(err) = ctx.shared.store.release(ctx.run_id, ctx.token, &reason, now).await {
                        tracing::warn!(error = %err, step = next.idx, "could not release run; its lease will expire");
                    }
                    return;
                }
                Then::Continue(next) => step = next,
                Then::Stop => return,
            }
        }
    }
    .instrument(span)
    .await;
}

impl Ctx {
    async fn step(&self, step: StepClaim) -> Then {
        let Some(def) = usize::try_from(step.idx)
            .ok()
            .and_then(|i| self.snapshot.steps.get(i))
        else {
            let error = StepError::permanent(format!(
                "definition {} has no step {}",
                self.snapshot, step.idx
            ))
            .with_cause(Cause::Other);
            return self.commit(step, None, Outcome::Fail(error)).await;
        };
        let max_attempts = i32::try_from(def.retry.max_attempts).unwrap_or(i32::MAX);
        let executed = if step.attempts > max_attempts {
            // Only claims count attempts up front, so this is a step whose worker
            // died every time: a poison pill must not loop forever.
            Executed::Outcome(Outcome::Fail(
                StepError::permanent(format!(
                    "step {} was started {} times and its worker was lost each time",
                    def.name,
                    step.attempts - 1
                ))
                .with_cause(Cause::Crashed),
            ))
        } else {
            let started = std::time::Instant::now();
            let executed = self.execute(step, def).await;
            observe::executed(def, &executed, started.elapsed());
            executed
        };
        match executed {
            Executed::Outcome(outcome) => self.commit(step, Some(def), outcome).await,
            Executed::Cancelled => {
                let now = self.shared.clock.now();
                match self
                    .shared
                    .store
                    .commit_cancelled(self.run_id, self.token, now)
                    .await
                {
                    Ok(state) => {
                        tracing::info!(step = %def.name, "run cancelled while the step was in flight");
                        self.ended(state).await;
                    }
                    Err(err) => tracing::warn!(error = %err, "could not record the cancellation"),
                }
                Then::Stop
            }
            Executed::LeaseLost => {
                tracing::warn!(step = %def.name, during = "step", "lease lost; abandoning the step");
                Then::Stop
            }
        }
    }

    /// Runs one attempt in its own task, so a panic becomes a retryable error and
    /// a lost lease or a cancellation can stop it at any await.
    async fn execute(&self, step: StepClaim, def: &StepDef) -> Executed {
        let mut signal = self.signal.clone();
        match *signal.borrow_and_update() {
            LeaseSignal::Held => {}
            LeaseSignal::CancelRequested => return Executed::Cancelled,
            LeaseSignal::Lost => return Executed::LeaseLost,
        }
        let Some(kind) = self.shared.registry.get(&def.kind).cloned() else {
            return Executed::Outcome(Outcome::Fail(StepError::permanent(format!(
                "step kind `{}` is not registered in worker {} (known: {})",
                def.kind,
                self.shared.id,
                self.shared.registry.kinds().join(", ")
            ))));
        };
        let ctx = StepContext {
            run_id: self.run_id,
            step_idx: step.idx,
            step_name: def.name.clone(),
            attempt: step.attempts,
            is_poll: step.is_poll,
            polls: step.polls,
            first_started_at: step.first_started_at,
            input: Arc::clone(&self.input),
            worker_id: Arc::clone(&self.shared.id),
            clock: Arc::clone(&self.shared.clock),
            store: self.shared.store.clone(),
        };
        let params = def.params.clone();
        tracing::debug!(step = %def.name, attempt = step.attempts, poll = step.is_poll, "step started");
        let attempt = async move { kind.execute(&ctx, &params).await };
        let mut attempt = tokio::spawn(attempt.instrument(tracing::Span::current()));
        let timeout = tokio::time::sleep(def.timeout.0);
        tokio::pin!(timeout);
        // Biased: a step that has finished is committed (and refused by the
        // fencing token if the lease is gone) rather than silently dropped.
        let executed = tokio::select! {
            biased;
            joined = &mut attempt => match joined {
                Ok(outcome) => Executed::Outcome(outcome),
                Err(err) => Executed::Outcome(Outcome::Retry(StepError::retryable(format!(
                    "step {} crashed: {err}", def.name
                )).with_cause(Cause::Crashed))),
            },
            () = &mut timeout => Executed::Outcome(Outcome::Retry(StepError::retryable(format!(
                "step {} timed out after {}", def.name, def.timeout
            )).with_cause(Cause::Timeout))),
            signal = next_signal(&mut signal) => signal,
        };
        attempt.abort();
        executed
    }

    /// A run that stopped short (cancelled, failed) may be what a requested
    /// teardown of its environment waits for: start it now rather than at the
    /// next sweep. Succeeded runs skip this; it would cost the hot path a query.
    async fn ended(&self, state: RunState) {
        if matches!(state, RunState::Cancelled | RunState::Failed)
            && let Err(err) = self
                .shared
                .store
                .start_due_teardowns(self.shared.clock.now())
                .await
        {
            tracing::warn!(error = %err, "could not start waiting teardowns; the sweep will");
        }
    }

    /// Gives the run's concurrency slot back. Called once no further step of
    /// this claim will execute here: the commit still to await is bookkeeping,
    /// and another run can execute meanwhile. The lease is held until the
    /// commit lands.
    fn free_slot(&self) {
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        self.shared.slot_freed.notify_one();
    }

    /// Commits `outcome` under the fencing token and says whether to go on.
    async fn commit(&self, step: StepClaim, def: Option<&StepDef>, outcome: Outcome) -> Then {
        let last_step = step.idx + 1 >= self.step_count;
        if last_step || !matches!(outcome, Outcome::Done(_)) {
            self.free_slot();
        }
        let store = &self.shared.store;
        let fence = Fence {
            run_id: self.run_id,
            token: self.token,
            step_idx: step.idx,
        };
        let name = def.map_or("?", |d| d.name.as_str());
        let result = match outcome {
            Outcome::Done(output) => {
                let success = StepSuccess {
                    run_id: self.run_id,
                    token: self.token,
                    step_idx: step.idx,
                    output,
                };
                let committed = (|| self.shared.committer.commit(success.clone()))
                    .retry(outage_backoff())
                    .adjust(|_, delay| self.within_lease(delay))
                    .notify(|err, _| tracing::warn!(error = %err, "commit failed; retrying"))
                    .await;
                return match committed {
                    Ok(Some(advanced)) if advanced.state == RunState::Running => {
                        match advanced.next {
                            Some(next) => Then::Continue(next),
                            None => Then::Stop,
                        }
                    }
                    Ok(Some(advanced)) => {
                        tracing::info!(state = %advanced.state, "run finished");
                        if advanced.state == RunState::Succeeded
                            && self.has_environment
                            && self.snapshot.workflow != "teardown"
                        {
                            let now = self.shared.clock.now();
                            observe::ready(&self.snapshot.template, self.requested_at, now);
                        }
                        self.ended(advanced.state).await;
                        Then::Stop
                    }
                    Ok(None) => {
                        tracing::warn!(step = %name, during = "commit", "lease lost; checkpoint refused by the fencing token");
                        Then::Stop
                    }
                    Err(err) => {
                        self.gave_up(&err);
                        Then::Stop
                    }
                };
            }
            Outcome::Wait { until, reason } => {
                let now = self.shared.clock.now();
                (|| store.commit_wait(fence, until, &reason, !step.is_poll, now))
                    .retry(outage_backoff())
                    .when(is_transient)
                    .adjust(|_, delay| self.within_lease(delay))
                    .await
            }
            Outcome::Retry(error) => {
                let failure = error.to_failure();
                let attempts = u32::try_from(step.attempts).unwrap_or(u32::MAX);
                let policy = def.map(|d| d.retry).unwrap_or_default();
                let now = self.shared.clock.now();
                if attempts >= policy.max_attempts {
                    tracing::warn!(step = %name, attempts, error = %error, "out of attempts; failing the run");
                    (|| store.commit_failure(fence, &failure, now))
                        .retry(outage_backoff())
                        .when(is_transient)
                        .adjust(|_, delay| self.within_lease(delay))
                        .await
                } else {
                    let delay = delay_before_retry(&policy, attempts, error.retry_after);
                    let retry_at =
                        now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    tracing::info!(step = %name, attempts, ?delay, error = %error, "step failed; retry scheduled");
                    (|| store.commit_retry(fence, &failure, retry_at, now))
                        .retry(outage_backoff())
                        .when(is_transient)
                        .adjust(|_, delay| self.within_lease(delay))
                        .await
                }
            }
            Outcome::Fail(error) => {
                tracing::warn!(step = %name, error = %error, "step failed permanently");
                let failure = error.to_failure();
                let now = self.shared.clock.now();
                (|| store.commit_failure(fence, &failure, now))
                    .retry(outage_backoff())
                    .when(is_transient)
                    .adjust(|_, delay| self.within_lease(delay))
                    .await
            }
        };
        match result {
            Ok(state) => self.ended(state).await,
            Err(hubwright_state::Error::LeaseLost { .. }) => {
                tracing::warn!(step = %name, during = "commit", "lease lost; checkpoint refused by the fencing token");
            }
            Err(err) => self.gave_up(&err),
        }
        Then::Stop
    }

    /// See [`Shared::within_lease`].
    fn within_lease(&self, delay: Option<Duration>) -> Option<Duration> {
        self.shared.within_lease(self.run_id, delay)
    }

    /// The commit failed until the lease was about to run out: the run is
    /// left to expire, and the rescuer is told to look as soon as the
    /// database answers.
    fn gave_up(&self, err: &dyn std::fmt::Display) {
        tracing::error!(error = %err, "could not commit the step within its lease; the run will be rescued");
        self.shared.rescue_soon.notify_one();
    }
}

async fn next_signal(signal: &mut watch::Receiver<LeaseSignal>) -> Executed {
    loop {
        if signal.changed().await.is_err() {
            // The lease table dropped the run; only the step's own end matters.
            std::future::pending::<()>().await;
        }
        match *signal.borrow_and_update() {
            LeaseSignal::Held => {}
            LeaseSignal::CancelRequested => return Executed::Cancelled,
            LeaseSignal::Lost => return Executed::LeaseLost,
        }
    }
}

fn is_transient(err: &hubwright_state::Error) -> bool {
    matches!(err, hubwright_state::Error::Database(_))
}
