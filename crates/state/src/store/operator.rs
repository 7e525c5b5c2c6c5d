//! What operators (and teardown) do to runs: retry a failed run from its failed
//! step or an earlier one (named, or numbered from 1 as people count), and
//! cancel.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::RunState;
use crate::{Error, Result, Store};

/// A step as people name it: by its name in the workflow, or by its number
/// counted from 1, as `run show` lists steps. In JSON, a string or a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StepRef {
    /// The step's number, from 1.
    Number(i64),
    /// The step's name, e.g. `helm`.
    Name(String),
}

impl<'de> Deserialize<'de> for StepRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // By hand rather than `untagged`, so a wrong type gets a message that
        // says what is expected rather than "did not match any variant".
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(name) => Ok(Self::Name(name)),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
                Ok(Self::Number(n.as_i64().unwrap_or(i64::MAX)))
            }
            other => Err(serde::de::Error::custom(format!(
                "from_step must be a step name or a step number from 1 (got {other})"
            ))),
        }
    }
}

impl std::fmt::Display for StepRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Name(name) => write!(f, "`{name}`"),
        }
    }
}

/// Where a retried run resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    /// The step's index, from 0, as stored.
    pub idx: i32,
    /// The step's number, from 1, as people count.
    pub number: i32,
    /// The step's name.
    pub name: String,
    /// The trace context the run had before the retry gave it the
    /// retrying request's: the trace its earlier attempts are in.
    pub previous_traceparent: Option<String>,
}

/// The step `from` names among a run's steps (names in order): its index, or
/// an [`Error::Invalid`] on `from_step` that lists what would do.
fn resolve(from: &StepRef, names: &[String]) -> Result<i32> {
    let idx = match from {
        // `n >= 1` first: `n - 1` of the smallest i64 would overflow.
        StepRef::Number(n) if *n >= 1 => usize::try_from(*n - 1).ok().filter(|&i| i < names.len()),
        StepRef::Number(_) => None,
        StepRef::Name(name) => names.iter().position(|n| n == name),
    };
    idx.and_then(|i| i32::try_from(i).ok())
        .ok_or_else(|| Error::Invalid {
            field: "from_step".to_owned(),
            rule: format!(
                "must be a step name ({}) or a number from 1 to {} (got {from})",
                names.join(", "),
                names.len()
            ),
        })
}

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// The run was not executing: it is `cancelled` now.
    Cancelled,
    /// A step is in flight: the worker stops the run at once or at the next step
    /// boundary.
    Requested,
}

impl Store {
    /// Cancels a pending, waiting or running run. Cancelling a run that already
    /// ended is an [`Error::IllegalTransition`].
    pub async fn cancel_run(
        &self,
        run_id: Uuid,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Cancellation> {
        let row = sqlx::query!(
            r#"
            WITH current AS (
                SELECT id, state, current_step FROM runs WHERE id = $1::uuid FOR UPDATE
            ), target AS (
                SELECT id, state, current_step, state IN ('pending', 'waiting') AS idle
                FROM current WHERE state IN ('pending', 'waiting', 'running')
            ), moved AS (
                UPDATE runs r
                SET state = CASE WHEN t.idle THEN 'cancelled' ELSE r.state END,
                    finished_at = CASE WHEN t.idle THEN $2::timestamptz END,
                    cancel_requested_at = $2, cancel_requested_by = $3::text, updated_at = $2
                FROM target t WHERE r.id = t.id
                RETURNING r.state
            ), logged AS (
                INSERT INTO events (run_id, kind, actor, message, at)
                SELECT t.id,
                       CASE WHEN t.idle THEN 'run_cancelled' ELSE 'cancel_requested' END,
                       $3,
                       CASE WHEN t.idle THEN format('run cancelled by %s', $3)
                            ELSE format('cancellation requested by %s; the worker stops the run', $3) END,
                       $2
                FROM target t
            )
            SELECT c.state AS "before!: RunState", m.state AS "after?: RunState"
            FROM current c LEFT JOIN moved m ON true
            "#,
            run_id,
            now,
            actor,
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::RunNotFound(run_id))?;
        match row.after {
            Some(RunState::Cancelled) => Ok(Cancellation::Cancelled),
            Some(_) => Ok(Cancellation::Requested),
            None => Err(Error::IllegalTransition {
                run_id,
                action: "cancel",
                state: row.before,
                rule: "only pending, waiting or running runs can be cancelled",
            }),
        }
    }

    /// Retries a failed run, like [`Store::retry_run`], from a step given by
    /// name or by number from 1 (`None`: the failed step). Errors speak the
    /// same language: names and numbers from 1. With `traceparent` (the
    /// retrying request's trace context) the run's new attempts are in that
    /// trace; without, they stay in the run's.
    pub async fn retry_run_from(
        &self,
        run_id: Uuid,
        from: Option<&StepRef>,
        actor: &str,
        now: DateTime<Utc>,
        traceparent: Option<&str>,
    ) -> Result<Resumed> {
        let run = self.run(run_id).await?;
        let names: Vec<String> = self
            .steps(run_id)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        let from_idx = from.map(|from| resolve(from, &names)).transpose()?;
        // Only a failed run's failed step bounds the choice; any other state
        // is refused by `retry_run` itself, as a conflict.
        if let Some(idx) = from_idx
            && run.state == RunState::Failed
            && idx > run.current_step
        {
            let failed = usize::try_from(run.current_step).unwrap_or_default();
            return Err(Error::Invalid {
                field: "from_step".to_owned(),
                rule: format!(
                    "step {} (`{}`) never ran; retry from the failed step, {} (`{}`), or an earlier one",
                    idx + 1,
                    names
                        .get(usize::try_from(idx).unwrap_or_default())
                        .map_or("", |n| n),
                    failed + 1,
                    names.get(failed).map_or("", |n| n),
                ),
            });
        }
        let (idx, previous_traceparent) = self
            .retry_run_traced(run_id, from_idx, actor, now, traceparent)
            .await?;
        Ok(Resumed {
            idx,
            number: idx + 1,
            name: names
                .get(usize::try_from(idx).unwrap_or_default())
                .cloned()
                .unwrap_or_default(),
            previous_traceparent,
        })
    }

    /// Retries a failed run. It resumes at the failed step, or at `from_step`
    /// (an index from 0) when an operator wants earlier steps redone (it must
    /// not lie beyond the failed step). Those steps start over with a fresh
    /// attempt budget. Returns the index it resumes at.
    pub async fn retry_run(
        &self,
        run_id: Uuid,
        from_step: Option<i32>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<i32> {
        let (idx, _) = self
            .retry_run_traced(run_id, from_step, actor, now, None)
            .await?;
        Ok(idx)
    }

    /// [`Store::retry_run`], and with `traceparent` the run takes that trace
    /// context (its `run_retried` event names the trace): its new attempts
    /// are in the retrying request's trace. Returns the index it resumes at
    /// and the trace context it had before.
    pub async fn retry_run_traced(
        &self,
        run_id: Uuid,
        from_step: Option<i32>,
        actor: &str,
        now: DateTime<Utc>,
        traceparent: Option<&str>,
    ) -> Result<(i32, Option<String>)> {
        let row = sqlx::query!(
            r#"
            WITH current AS (
                -- Locked here, so what it reads of the step the run failed
                -- at is what `moved` resets and `reset_all` stores.
                SELECT id, state, current_step, traceparent, definition_id,
                       step_started_event_id, step_started_by, step_attempts,
                       step_started_at_boundary,
                       coalesce(step_restarted_at, step_started_at) AS step_started_at,
                       step_finished_event_id,
                       coalesce(step_finished_by, step_started_by) AS step_finished_by,
                       finished_at
                FROM runs WHERE id = $1 FOR UPDATE
            ), target AS (
                SELECT id, coalesce($2::int, current_step) AS from_idx, current_step
                FROM current
                WHERE state = 'failed' AND coalesce($2::int, current_step) BETWEEN 0 AND current_step
            ), reset AS (
                -- The steps from `from_idx` start over. Those the run had
                -- moved past leave `step_history`; the one it failed at is
                -- its row's (migration 20261212000100). The starts and
                -- successes they held (migration 20261209000200) become
                -- stored events, by `logged`: the timeline keeps them.
                DELETE FROM step_history h USING target t
                WHERE h.run_id = t.id AND h.idx >= t.from_idx
                RETURNING h.run_id, h.idx, h.name, h.started_event_id, h.started_by, h.attempts,
                          h.started_at_boundary, coalesce(h.restarted_at, h.started_at) AS started_at,
                          h.finished_event_id, coalesce(h.finished_by, h.started_by) AS finished_by,
                          h.finished_at
            ), moved AS (
                UPDATE runs r
                SET state = 'pending', current_step = t.from_idx, next_run_at = $3,
                    finished_at = NULL, error_class = NULL, error_message = NULL,
                    cancel_requested_at = NULL, cancel_requested_by = NULL, updated_at = $3,
                    traceparent = coalesce($5::text, r.traceparent),
                    step_attempts = 0, step_polls = 0, step_output = NULL,
                    step_error_class = NULL, step_error_message = NULL, step_error_detail = NULL,
                    step_started_at = NULL, step_restarted_at = NULL, step_started_event_id = NULL,
                    step_started_by = NULL, step_started_at_boundary = NULL,
                    step_finished_event_id = NULL, step_finished_by = NULL
                FROM target t WHERE r.id = t.id
                RETURNING r.current_step
            ), reset_all AS (
                SELECT run_id, idx, name, started_event_id, started_by, attempts,
                       started_at_boundary, started_at, finished_event_id, finished_by, finished_at
                FROM reset
                UNION ALL
                SELECT c.id, c.current_step, step_name(c.definition_id, c.current_step),
                       c.step_started_event_id, c.step_started_by, c.step_attempts,
                       c.step_started_at_boundary, c.step_started_at, c.step_finished_event_id,
                       c.step_finished_by, c.finished_at
                FROM current c JOIN target t ON t.id = c.id
            ), logged AS (
                INSERT INTO events (id, run_id, step_idx, kind, actor, message, data, at)
                OVERRIDING SYSTEM VALUE
                SELECT r.started_event_id, r.run_id, r.idx, 'step_started', r.started_by,
                       -- As the statement that started it would have stored it.
                       stored_start_message(r.started_at_boundary, r.name, r.attempts),
                       stored_start_data(r.started_at_boundary, r.attempts),
                       r.started_at
                FROM reset_all r WHERE r.started_event_id IS NOT NULL
                UNION ALL
                SELECT r.finished_event_id, r.run_id, r.idx, 'step_succeeded', r.finished_by,
                       NULL, NULL, r.finished_at
                FROM reset_all r WHERE r.finished_event_id IS NOT NULL
                UNION ALL
                SELECT nextval('events_id_seq'), t.id, t.from_idx, 'run_retried', $4::text,
                       -- Numbered from 1 and named, as people see steps.
                       format('%s retried the run from step %s (%s)', $4, t.from_idx + 1,
                              (SELECT s.name FROM steps s WHERE s.run_id = t.id AND s.idx = t.from_idx)),
                       CASE WHEN $5::text IS NOT NULL
                            THEN jsonb_build_object('trace_id', substr($5, 4, 32)) END,
                       $3
                FROM target t
            )
            SELECT c.state AS "state!: RunState", c.current_step AS "failed_step!",
                   m.current_step AS "resumed_at?", c.traceparent AS "previous_traceparent?"
            FROM current c LEFT JOIN moved m ON true
            "#,
            run_id,
            from_step,
            now,
            actor,
            traceparent,
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::RunNotFound(run_id))?;
        if let Some(resumed_at) = row.resumed_at {
            sqlx::query!("SELECT pg_notify('hubwright_runs', '')")
                .execute(&self.pool)
                .await?;
            return Ok((resumed_at, row.previous_traceparent));
        }
        if row.state != RunState::Failed {
            return Err(Error::IllegalTransition {
                run_id,
                action: "retry",
                state: row.state,
                rule: "only failed runs can be retried",
            });
        }
        Err(Error::Invalid {
            field: "from_step".to_owned(),
            rule: format!(
                "must be between 0 and {} (the failed step); later steps never ran",
                row.failed_step
            ),
        })
    }
}
