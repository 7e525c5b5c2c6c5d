//! The checks after a chaos round, and the figures they yield.
//!
//! Every execution of a step appends a line to the effects log (the
//! testkit's `test-record`, and `test-block` with `record`). Per step:
//! - the committed output names the worker and attempt that executed it; that
//!   execution's line is in the log, and the `step_succeeded` event's actor
//!   (the lease owner the checkpoint's fencing token matched) is that worker;
//! - every other line is an execution whose worker lost its lease at that
//!   step: a `lease_expired` event with that worker as `previous_owner`,
//!   used once. What took the lease away is found among the round's
//!   disruptions by when the lease ran out; a lease lost with nothing done
//!   to its worker or the database within a lease before is a violation, and
//!   so is a repeated step with no lost lease.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubwright_state::Store;
use hubwright_testkit::harness::effects;
use serde_json::{Value, json};
use uuid::Uuid;

use super::fleet::Disruption;

/// What the audit found.
#[derive(Debug, Default)]
pub struct Audit {
    /// Steps committed.
    pub steps: usize,
    /// Step executions in the effects log.
    pub executions: usize,
    /// Leases lost, by cause.
    pub rescues: BTreeMap<&'static str, u64>,
    /// Steps executed again because a lease was lost, by cause.
    pub re_executions: BTreeMap<&'static str, u64>,
    /// Leases lost and steps executed again, per disruption (indexed like
    /// the round's disruptions).
    pub per_disruption: Vec<(u64, u64)>,
    /// Each violation, described.
    pub problems: Vec<String>,
}

impl Audit {
    /// The figures, as JSON.
    pub fn figures(&self) -> Value {
        json!({
            "steps_committed": self.steps,
            "step_executions": self.executions,
            "rescues": self.rescues,
            "re_executions": self.re_executions,
            "violations": self.problems.len(),
        })
    }
}

type Key = (Uuid, i32);

/// Checks every committed step of the database against the effects log and
/// the lease expiries, attributing each to `disruptions`.
pub async fn audit(
    store: &Store,
    effects_log: &Path,
    disruptions: &[Disruption],
    lease: Duration,
) -> Audit {
    let mut audit = Audit {
        per_disruption: vec![(0, 0); disruptions.len()],
        ..Audit::default()
    };
    let mut executions: HashMap<Key, Vec<(i32, String)>> = HashMap::new();
    for (run, step, attempt, worker) in effects(effects_log) {
        audit.executions += 1;
        executions
            .entry((run, step))
            .or_default()
            .push((attempt, worker));
    }
    let mut expiries: HashMap<Key, Vec<(String, DateTime<Utc>)>> = HashMap::new();
    for (run, step, owner, expired) in lease_expiries(store).await {
        match cause_of(&owner, expired, disruptions, lease) {
            Some(index) => {
                *audit.rescues.entry(disruptions[index].cause.name()).or_default() += 1;
                audit.per_disruption[index].0 += 1;
            }
            None => audit.problems.push(format!(
                "run {run} step {step}: the lease of {owner} ran out at {expired} with nothing done to it or to the database within a lease before"
            )),
        }
        expiries
            .entry((run, step))
            .or_default()
            .push((owner, expired));
    }
    let actors = committers(store).await;
    for (key, worker, attempt) in committed(store).await {
        audit.steps += 1;
        let (run, step) = key;
        let (Some(worker), Some(attempt)) = (worker, attempt) else {
            audit.problems.push(format!(
                "run {run} step {step}: its output does not name the worker and attempt"
            ));
            continue;
        };
        if actors.get(&key) != Some(&worker) {
            audit.problems.push(format!(
                "run {run} step {step}: executed by {worker} but committed by {:?}",
                actors.get(&key)
            ));
        }
        let mut lines = executions.remove(&key).unwrap_or_default();
        match lines
            .iter()
            .position(|(a, w)| (*a, w.as_str()) == (attempt, worker.as_str()))
        {
            Some(at) => drop(lines.swap_remove(at)),
            None => audit.problems.push(format!(
                "run {run} step {step}: {worker}'s attempt {attempt} was committed but left no effect"
            )),
        }
        let mut lost = expiries.remove(&key).unwrap_or_default();
        for (attempt, worker) in lines {
            match lost.iter().position(|(owner, _)| *owner == worker) {
                Some(at) => {
                    let (owner, when) = lost.swap_remove(at);
                    // Every expiry was attributed above, or is a violation already.
                    if let Some(index) = cause_of(&owner, when, disruptions, lease) {
                        let cause = disruptions[index].cause.name();
                        *audit.re_executions.entry(cause).or_default() += 1;
                        audit.per_disruption[index].1 += 1;
                    }
                }
                None => audit.problems.push(format!(
                    "run {run} step {step}: executed again by {worker} (attempt {attempt}) though it never lost its lease there"
                )),
            }
        }
    }
    for ((run, step), lines) in executions {
        audit.problems.push(format!(
            "run {run} step {step}: {} executions of a step never committed",
            lines.len()
        ));
    }
    audit
}

/// What took `owner`'s lease away (an index into `disruptions`), given the
/// moment it ran out (`expired`).
/// Heartbeats stop when the owner is killed or paused, or its database is
/// away, so the lease runs out within one lease of that moment (never
/// before it) — and, for the database, by the time the owner's heartbeat,
/// tried again at most a second apart, gets through once it is back.
/// Something done to the owner itself counts first.
fn cause_of(
    owner: &str,
    expired: DateTime<Utc>,
    disruptions: &[Disruption],
    lease: Duration,
) -> Option<usize> {
    // The test notes the moment just before it signals or cuts.
    let slack = chrono::Duration::milliseconds(250);
    let lease = chrono::Duration::from_std(lease).unwrap();
    let explains = |d: &Disruption| {
        let end = match d.who {
            Some(_) => d.from + lease,
            None => (d.from + lease).min(d.to + chrono::Duration::seconds(1)),
        };
        d.from - slack <= expired && expired <= end + slack
    };
    let mine = disruptions
        .iter()
        .position(|d| d.who.as_deref() == Some(owner) && explains(d));
    let database = || {
        disruptions
            .iter()
            .position(|d| d.who.is_none() && explains(d))
    };
    mine.or_else(database)
}

/// A `lease_expired` event's run, step, previous owner and when the lease ran out.
type ExpiryRow = (Uuid, Option<i32>, Option<String>, Option<DateTime<Utc>>);

/// (run, step, previous owner, when the lease ran out) of every rescue.
async fn lease_expiries(store: &Store) -> Vec<(Uuid, i32, String, DateTime<Utc>)> {
    let rows: Vec<ExpiryRow> = sqlx::query_as(
        "SELECT run_id, step_idx, data->>'previous_owner', (data->>'lease_expired_at')::timestamptz \
         FROM events WHERE kind = 'lease_expired'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(run, step, owner, expired)| {
            let expired = expired.expect("a lease_expired event says when the lease ran out");
            (run, step.unwrap_or(-1), owner.unwrap_or_default(), expired)
        })
        .collect()
}

/// Each succeeded step's (run, step), and the worker and attempt its output names.
async fn committed(store: &Store) -> Vec<(Key, Option<String>, Option<i32>)> {
    let rows: Vec<(Uuid, i32, Option<String>, Option<i32>)> = sqlx::query_as(
        "SELECT run_id, idx, output->>'worker', (output->>'attempt')::int FROM steps WHERE state = 'succeeded'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(run, step, worker, attempt)| ((run, step), worker, attempt))
        .collect()
}

/// The actor of each step's `step_succeeded` event, stored or on its step
/// row (the timeline has both).
async fn committers(store: &Store) -> HashMap<Key, String> {
    let rows: Vec<(Uuid, Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT run_id, step_idx, actor FROM run_timeline WHERE kind = 'step_succeeded'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .filter_map(|(run, step, actor)| Some(((run, step?), actor?)))
        .collect()
}
