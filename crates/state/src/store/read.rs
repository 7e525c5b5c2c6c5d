//! Reads for the API, the CLI and the benchmarks.

use uuid::Uuid;

use crate::model::{ErrorClass, Event, Run, RunState, Step, StepState};
use crate::{Error, Result, Store};

impl Store {
    /// One run.
    pub async fn run(&self, run_id: Uuid) -> Result<Run> {
        sqlx::query_as!(
            Run,
            r#"
            SELECT id, environment_id, template, workflow, definition_id, input,
                   state AS "state: RunState", step_count, current_step, next_run_at,
                   lease_owner, lease_expires_at, claims, cancel_requested_at,
                   error_class AS "error_class: ErrorClass", error_message,
                   created_at, started_at, finished_at
            FROM runs WHERE id = $1
            "#,
            run_id
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::RunNotFound(run_id))
    }

    /// The steps of a run, in order.
    pub async fn steps(&self, run_id: Uuid) -> Result<Vec<Step>> {
        Ok(sqlx::query_as!(
            Step,
            r#"
            SELECT idx, name, kind, state AS "state: StepState", attempts, polls, output,
                   error_class AS "error_class: ErrorClass", error_message, error_detail,
                   started_at, finished_at
            FROM steps WHERE run_id = $1 ORDER BY idx
            "#,
            run_id
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The outputs of a run's succeeded steps, by step name; what later steps read.
    pub async fn step_outputs(&self, run_id: Uuid) -> Result<serde_json::Map<String, serde_json::Value>> {
        let rows = sqlx::query!(
            r#"SELECT name, output AS "output!" FROM steps
               WHERE run_id = $1 AND state = 'succeeded' ORDER BY idx"#,
            run_id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|row| (row.name, row.output)).collect())
    }

    /// A run's events after event `after` (0 for all), oldest first.
    pub async fn events(&self, run_id: Uuid, after: i64, limit: i64) -> Result<Vec<Event>> {
        Ok(sqlx::query_as!(
            Event,
            r#"
            SELECT id, run_id, step_idx, kind, actor, message, data, at
            FROM events WHERE run_id = $1 AND id > $2
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
                SELECT run_id, step_idx, count(*) || ' step_succeeded events' AS problem
                FROM events WHERE kind = 'step_succeeded'
                GROUP BY run_id, step_idx HAVING count(*) <> 1
                UNION ALL
                SELECT s.run_id, s.idx, 'succeeded without an event'
                FROM steps s
                WHERE s.state = 'succeeded' AND NOT EXISTS (
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
