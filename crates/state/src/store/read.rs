//! Reads for the API, the CLI and the benchmarks.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{ErrorClass, Event, Run, RunState, Step, StepFailure, StepState};
use crate::{Error, Result, Store};

impl Store {
    /// One run.
    pub async fn run(&self, run_id: Uuid) -> Result<Run> {
        sqlx::query_as!(
            RunRow,
            r#"
            SELECT r.id, r.environment_id, w.template, w.workflow, r.definition_id,
                   coalesce(r.input, '{}') AS "input!",
                   r.created_by, coalesce(e.owner, r.created_by) AS "owner!",
                   r.state AS "state: RunState", r.step_count, r.current_step,
                   r.next_run_at, r.lease_owner, r.lease_expires_at,
                   -- Every claim bumps the fencing token once, and nothing else does.
                   r.lease_token::int4 AS "claims!",
                   r.cancel_requested_at, r.error_class AS "error_class: ErrorClass",
                   r.error_message,
                   -- A run fails at its current step and keeps no detail of
                   -- its own: the step has it, in the run's row.
                   CASE WHEN r.error_class IS NOT NULL THEN r.step_error_detail END
                       AS "error_detail?",
                   r.created_at, r.started_at, r.finished_at,
                   substr(r.traceparent, 4, 32) AS trace_id
            FROM runs r
            -- A run's template and workflow are its definition's.
            JOIN workflow_definitions w ON w.id = r.definition_id
            LEFT JOIN environments e ON e.id = r.environment_id
            WHERE r.id = $1
            "#,
            run_id
        )
        .fetch_optional(&self.pool)
        .await?
        .map(Run::from)
        .ok_or(Error::RunNotFound(run_id))
    }

    /// The steps of a run, in order.
    pub async fn steps(&self, run_id: Uuid) -> Result<Vec<Step>> {
        let rows = sqlx::query_as!(
            StepRow,
            r#"
            SELECT idx AS "idx!", name AS "name!", kind AS "kind!",
                   state AS "state!: StepState", attempts AS "attempts!", polls AS "polls!",
                   output, error_class AS "error_class: ErrorClass", error_message, error_detail,
                   started_at, finished_at
            FROM steps WHERE run_id = $1 ORDER BY idx
            "#,
            run_id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Step::from).collect())
    }

    /// The outputs of a run's succeeded steps, by step name; what later steps read.
    pub async fn step_outputs(
        &self,
        run_id: Uuid,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let rows = sqlx::query!(
            r#"SELECT name AS "name!", output AS "output!" FROM steps
               WHERE run_id = $1 AND state = 'succeeded' ORDER BY idx"#,
            run_id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|row| (row.name, row.output)).collect())
    }

    /// A run's events after event `after` (0 for all), oldest first: its
    /// creation (from the run row) and its stored events.
    pub async fn events(&self, run_id: Uuid, after: i64, limit: i64) -> Result<Vec<Event>> {
        Ok(sqlx::query_as!(
            Event,
            r#"
            SELECT id AS "id!", run_id AS "run_id!", step_idx, kind AS "kind!",
                   actor AS "actor!", message AS "message!", data, at AS "at!"
            FROM run_timeline WHERE run_id = $1 AND id > $2
            ORDER BY id LIMIT $3
            "#,
            run_id,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many runs are in each state.
    pub async fn count_runs_by_state(&self) -> Result<Vec<(RunState, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT state AS "state!: RunState", count(*) AS "count!" FROM runs GROUP BY state ORDER BY state"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|row| (row.state, row.count)).collect())
    }

    /// Checks the exactly-once invariants over every run: returns a description
    /// of each violation (empty when all hold). Used by benchmarks and tests.
    pub async fn audit_exactly_once(&self) -> Result<Vec<String>> {
        let rows = sqlx::query_scalar!(
            r#"
            SELECT format('run %s step %s: %s', run_id, step_idx, problem) AS "problem!"
            FROM (
                -- A success is stored, or on its step row (migration
                -- 20261209000200); a row written twice stores the first.
                SELECT run_id, step_idx, count(*) || ' step_succeeded events' AS problem
                FROM (SELECT run_id, step_idx FROM events WHERE kind = 'step_succeeded'
                      UNION ALL
                      SELECT run_id, idx FROM steps WHERE finished_event_id IS NOT NULL) AS successes
                GROUP BY run_id, step_idx HAVING count(*) <> 1
                UNION ALL
                SELECT s.run_id, s.idx, 'succeeded without an event'
                FROM steps s
                WHERE s.state = 'succeeded' AND s.finished_event_id IS NULL AND NOT EXISTS (
                    SELECT 1 FROM events e
                    WHERE e.run_id = s.run_id AND e.step_idx = s.idx AND e.kind = 'step_succeeded')
                UNION ALL
                SELECT r.id, NULL, 'run succeeded but a step did not'
                FROM runs r JOIN steps s ON s.run_id = r.id
                WHERE r.state = 'succeeded' AND s.state <> 'succeeded'
            ) AS violations
            ORDER BY 1
            LIMIT 100
            "#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

/// Figures the benchmarks read back from the database.
impl Store {
    /// When the first step started and the last one finished, over all runs.
    pub async fn step_time_span(
        &self,
    ) -> Result<Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>> {
        let row =
            sqlx::query!(r#"SELECT min(started_at) AS first, max(finished_at) AS last FROM steps"#)
                .fetch_one(&self.pool)
                .await?;
        Ok(row.first.zip(row.last))
    }

    /// For every run, milliseconds from acceptance to its first step's start.
    pub async fn start_latencies_ms(&self) -> Result<Vec<f64>> {
        let rows = sqlx::query_scalar!(
            r#"
            SELECT (extract(epoch FROM s.started_at - r.created_at) * 1000)::float8 AS "ms!"
            FROM runs r JOIN steps s ON s.run_id = r.id AND s.idx = 0
            WHERE s.started_at IS NOT NULL
            ORDER BY 1
            "#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Succeeded steps over all runs.
    pub async fn count_succeeded_steps(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM steps WHERE state = 'succeeded'"#)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Size of the current database in bytes.
    pub async fn database_size_bytes(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar!(r#"SELECT pg_database_size(current_database()) AS "bytes!""#)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Transactions this database has committed and rolled back so far
    /// (`pg_stat_database`, which backends update within seconds), for
    /// benchmarks of what idle clients cost.
    pub async fn transactions_so_far(&self) -> Result<i64> {
        Ok(sqlx::query_scalar!(
            r#"SELECT (xact_commit + xact_rollback)::bigint AS "count!"
               FROM pg_stat_database WHERE datname = current_database()"#
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// What the queue looks like right now, for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueStats {
    /// Runs due now and not yet claimed.
    pub due: i64,
    /// How long the longest-waiting due run has been due, in seconds.
    pub oldest_due_seconds: f64,
}

impl Store {
    /// Runs due and waiting for a worker, and how long the oldest has waited.
    pub async fn queue_stats(&self, now: chrono::DateTime<chrono::Utc>) -> Result<QueueStats> {
        let row = sqlx::query!(
            r#"
            SELECT count(*) AS "due!",
                   coalesce(extract(epoch FROM $1 - min(next_run_at)), 0)::float8 AS "oldest!"
            FROM runs
            WHERE state IN ('pending', 'waiting') AND next_run_at <= $1
            "#,
            now
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            due: row.due,
            oldest_due_seconds: row.oldest,
        })
    }
}

/// The error columns of a row as one value. The schema sets class and message
/// together (a CHECK on failed rows, one UPDATE everywhere else), so a row
/// with only one of them does not occur; it would read as no error.
fn failure(
    class: Option<ErrorClass>,
    message: Option<String>,
    detail: Option<Value>,
) -> Option<StepFailure> {
    Some(StepFailure {
        class: class?,
        message: message?,
        detail,
    })
}

/// A `runs` row as stored: the error flat, as its columns are.
pub(super) struct RunRow {
    pub(super) id: Uuid,
    pub(super) environment_id: Option<Uuid>,
    pub(super) template: String,
    pub(super) workflow: String,
    pub(super) definition_id: i64,
    pub(super) input: Value,
    pub(super) created_by: String,
    pub(super) owner: String,
    pub(super) state: RunState,
    pub(super) step_count: i32,
    pub(super) current_step: i32,
    pub(super) next_run_at: DateTime<Utc>,
    pub(super) lease_owner: Option<String>,
    pub(super) lease_expires_at: Option<DateTime<Utc>>,
    pub(super) claims: i32,
    pub(super) cancel_requested_at: Option<DateTime<Utc>>,
    pub(super) error_class: Option<ErrorClass>,
    pub(super) error_message: Option<String>,
    pub(super) error_detail: Option<Value>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) started_at: Option<DateTime<Utc>>,
    pub(super) finished_at: Option<DateTime<Utc>>,
    pub(super) trace_id: Option<String>,
}

impl From<RunRow> for Run {
    fn from(row: RunRow) -> Self {
        Self {
            id: row.id,
            environment_id: row.environment_id,
            template: row.template,
            workflow: row.workflow,
            definition_id: row.definition_id,
            input: row.input,
            created_by: row.created_by,
            owner: row.owner,
            state: row.state,
            step_count: row.step_count,
            current_step: row.current_step,
            next_run_at: row.next_run_at,
            lease_owner: row.lease_owner,
            lease_expires_at: row.lease_expires_at,
            claims: row.claims,
            cancel_requested_at: row.cancel_requested_at,
            error: failure(row.error_class, row.error_message, row.error_detail),
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            trace_id: row.trace_id,
        }
    }
}

/// A `steps` row as stored: the error flat, as its columns are.
struct StepRow {
    idx: i32,
    name: String,
    kind: String,
    state: StepState,
    attempts: i32,
    polls: i32,
    output: Option<Value>,
    error_class: Option<ErrorClass>,
    error_message: Option<String>,
    error_detail: Option<Value>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<StepRow> for Step {
    fn from(row: StepRow) -> Self {
        Self {
            idx: row.idx,
            name: row.name,
            kind: row.kind,
            state: row.state,
            attempts: row.attempts,
            polls: row.polls,
            output: row.output,
            error: failure(row.error_class, row.error_message, row.error_detail),
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }
}
