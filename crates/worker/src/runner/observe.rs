//! What the runner tells Prometheus: each step execution by kind, outcome
//! and reason, how long it took, how long runs waited for a worker, and how
//! long environments took from request to ready. Names and `# HELP` texts
//! are in [`crate::metrics`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use hubwright_state::model::ErrorClass;
use hubwright_state::workflow::StepDef;

use super::drive::Executed;
use crate::cause::{Cause, NO_REASON, reason};
use crate::metrics::{QUEUE_WAIT, STEP_DURATION, STEP_EXECUTIONS, STEP_FAILURES, TIME_TO_READY};
use crate::step::Outcome;

/// Records one execution of `def`: its outcome and reason, and how long it took.
pub(super) fn executed(def: &StepDef, executed: &Executed, took: Duration) {
    let (outcome, reason) = outcome_and_reason(executed);
    let failed = reason.is_some();
    let reason = reason.unwrap_or_else(|| NO_REASON.to_owned());
    if failed {
        metrics::counter!(STEP_FAILURES, "kind" => def.kind.clone(), "reason" => reason.clone())
            .increment(1);
    }
    metrics::counter!(STEP_EXECUTIONS, "kind" => def.kind.clone(), "outcome" => outcome, "reason" => reason)
        .increment(1);
    metrics::histogram!(STEP_DURATION, "kind" => def.kind.clone()).record(took.as_secs_f64());
}

/// The `outcome` label, and the `reason` label of a failed execution.
fn outcome_and_reason(executed: &Executed) -> (&'static str, Option<String>) {
    let failure = |error: &crate::StepError| Some(reason(error.class, error.cause()));
    match executed {
        Executed::Outcome(Outcome::Done(_)) => ("done", None),
        Executed::Outcome(Outcome::Wait { .. }) => ("wait", None),
        Executed::Outcome(Outcome::Retry(error)) => ("retry", failure(error)),
        Executed::Outcome(Outcome::Fail(error)) => ("fail", failure(error)),
        Executed::Cancelled => ("cancelled", None),
        // The run is rescued and the step executed again: retryable.
        Executed::LeaseLost => (
            "lease_lost",
            Some(reason(ErrorClass::Retryable, Cause::LeaseLost)),
        ),
    }
}

/// Records how long a claimed run waited between becoming due and `now`.
pub(super) fn claimed(due_at: DateTime<Utc>, now: DateTime<Utc>) {
    let waited = (now - due_at).to_std().unwrap_or(Duration::ZERO);
    metrics::histogram!(QUEUE_WAIT).record(waited.as_secs_f64());
}

/// Records an environment of `template` requested at `requested_at` ready at `now`.
pub(super) fn ready(template: &str, requested_at: DateTime<Utc>, now: DateTime<Utc>) {
    let took = (now - requested_at).to_std().unwrap_or(Duration::ZERO);
    metrics::histogram!(TIME_TO_READY, "template" => template.to_owned())
        .record(took.as_secs_f64());
}
