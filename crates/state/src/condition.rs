//! An environment's conditions: one per step of its latest provisioning run,
//! Kubernetes-style (`type`, `status`, `reason`, `message`,
//! `last_transition_time`), so a portal shows progress without knowing
//! about runs.
//!
//! The store reads the steps' raw state in the same query as the environment
//! (the SQL function `environments_conditions`); the rule that turns a step
//! into a condition lives here, in Rust, where it is typed and documented once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::StepState;

/// Whether a condition holds, as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ConditionStatus {
    /// The step succeeded.
    True,
    /// The step failed or was cancelled.
    False,
    /// Not decided yet: the step has not run, runs, waits or will be retried.
    Unknown,
}

/// Why a condition has its status: one CamelCase word a program may branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ConditionReason {
    /// Not started yet (or waiting for a worker to claim it).
    Pending,
    /// A worker executes it now.
    Running,
    /// It said "not ready yet" and is polled again later.
    Waiting,
    /// An attempt failed with a transient error; another is scheduled.
    RetryScheduled,
    /// Done.
    Succeeded,
    /// Failed permanently or ran out of attempts; an operator may retry it.
    Failed,
    /// The run was cancelled before this step finished.
    Cancelled,
}

/// One step of an environment's provisioning, as a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Condition {
    /// The step's name in the provisioning workflow, e.g. `namespace`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True` once the step succeeded, `False` when it failed or was
    /// cancelled, `Unknown` until then.
    pub status: ConditionStatus,
    /// Why, in one word.
    pub reason: ConditionReason,
    /// The step's error verbatim when it failed or will be retried; otherwise
    /// a short human line.
    pub message: String,
    /// When the step last changed.
    pub last_transition_time: DateTime<Utc>,
}

/// A step as the environment queries read it (`jsonb_build_object` in
/// `environments_conditions`): only what a condition needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepDigest {
    name: String,
    state: StepState,
    attempts: i32,
    /// The step is the run's current one (where it resumes).
    current: bool,
    error: Option<String>,
    /// The last "not ready yet" message of a waiting step.
    note: Option<String>,
    at: DateTime<Utc>,
}

impl From<StepDigest> for Condition {
    fn from(step: StepDigest) -> Self {
        use ConditionReason as R;
        use ConditionStatus as S;
        let (status, reason, message) = match step.state {
            StepState::Succeeded => (S::True, R::Succeeded, "succeeded".to_owned()),
            StepState::Failed => (
                S::False,
                R::Failed,
                step.error.unwrap_or_else(|| "failed".to_owned()),
            ),
            StepState::Cancelled => (
                S::False,
                R::Cancelled,
                "the run was cancelled before this step finished".to_owned(),
            ),
            StepState::Running => (
                S::Unknown,
                R::Running,
                format!("running (attempt {})", step.attempts),
            ),
            StepState::Waiting => (
                S::Unknown,
                R::Waiting,
                step.note.unwrap_or_else(|| "not ready yet".to_owned()),
            ),
            StepState::Pending => match step.error {
                // A retryable error leaves the step pending with its error.
                Some(error) if step.attempts > 0 => (
                    S::Unknown,
                    R::RetryScheduled,
                    format!("attempt {} failed: {error}; retrying", step.attempts),
                ),
                _ if step.current => (S::Unknown, R::Pending, "waiting for a worker".to_owned()),
                _ => (S::Unknown, R::Pending, "not started".to_owned()),
            },
        };
        Self {
            kind: step.name,
            status,
            reason,
            message,
            last_transition_time: step.at,
        }
    }
}

/// The `conditions` column of the environment queries: a JSON array of
/// [`StepDigest`]s, decoded and turned into conditions on the way out.
#[derive(Debug, Clone, sqlx::Type)]
#[sqlx(transparent)]
pub(crate) struct StepDigests(sqlx::types::Json<Vec<StepDigest>>);

impl From<StepDigests> for Vec<Condition> {
    fn from(StepDigests(steps): StepDigests) -> Self {
        steps.0.into_iter().map(Condition::from).collect()
    }
}

/// The conditions of a provisioning run that was accepted at `at` and has not
/// been touched since: every step pending, the first one current. What
/// `environments_conditions` reads for such a run, built without reading it,
/// so a creation can answer without a read-back (a test in the suite holds
/// the two equal).
pub(crate) fn fresh_conditions<'a>(
    step_names: impl IntoIterator<Item = &'a str>,
    at: DateTime<Utc>,
) -> Vec<Condition> {
    step_names
        .into_iter()
        .enumerate()
        .map(|(idx, name)| {
            Condition::from(StepDigest {
                name: name.to_owned(),
                state: StepState::Pending,
                attempts: 0,
                current: idx == 0,
                error: None,
                note: None,
                at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(state: StepState, attempts: i32, current: bool, error: Option<&str>) -> Condition {
        Condition::from(StepDigest {
            name: "helm".to_owned(),
            state,
            attempts,
            current,
            error: error.map(str::to_owned),
            note: None,
            at: DateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn a_pending_step_with_an_error_is_a_scheduled_retry_that_quotes_it() {
        let retry = digest(StepState::Pending, 2, true, Some("503 from the API server"));
        assert_eq!(retry.status, ConditionStatus::Unknown);
        assert_eq!(retry.reason, ConditionReason::RetryScheduled);
        assert_eq!(
            retry.message,
            "attempt 2 failed: 503 from the API server; retrying"
        );
    }

    #[test]
    fn a_pending_step_without_an_error_waits_for_a_worker_or_its_turn() {
        let next = digest(StepState::Pending, 0, true, None);
        let later = digest(StepState::Pending, 0, false, None);
        assert_eq!(
            (next.reason, next.message.as_str()),
            (ConditionReason::Pending, "waiting for a worker")
        );
        assert_eq!(
            (later.reason, later.message.as_str()),
            (ConditionReason::Pending, "not started")
        );
    }

    #[test]
    fn running_failed_and_cancelled_steps_say_so() {
        let running = digest(StepState::Running, 3, true, None);
        assert_eq!(
            (running.status, running.reason, running.message.as_str()),
            (
                ConditionStatus::Unknown,
                ConditionReason::Running,
                "running (attempt 3)"
            )
        );
        let failed = digest(StepState::Failed, 1, true, Some("forbidden"));
        assert_eq!(
            (failed.status, failed.reason, failed.message.as_str()),
            (ConditionStatus::False, ConditionReason::Failed, "forbidden")
        );
        let cancelled = digest(StepState::Cancelled, 0, false, None);
        assert_eq!(
            (cancelled.status, cancelled.reason),
            (ConditionStatus::False, ConditionReason::Cancelled)
        );
    }

    #[test]
    fn conditions_serialize_kubernetes_style() {
        let json = serde_json::to_value(digest(StepState::Succeeded, 1, false, None)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "helm", "status": "True", "reason": "Succeeded",
                "message": "succeeded", "last_transition_time": "1970-01-01T00:00:00Z"
            })
        );
    }
}
