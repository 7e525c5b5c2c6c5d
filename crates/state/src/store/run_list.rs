//! Pages of runs, newest first, for `GET /v1/runs` and `hubwright run list`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::read::RunRow;
use crate::model::{ErrorClass, Run, RunState};
use crate::{Result, Store};

/// Which runs to list. Every field narrows the page; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// Only runs of this environment.
    pub environment_id: Option<Uuid>,
    /// Only runs of this template.
    pub template: Option<String>,
    /// Only runs of this workflow, e.g. `provision` or `teardown`.
    pub workflow: Option<String>,
    /// Only runs this subject owns: of environments they own, or created by
    /// them when the run works on no environment (see [`Run::owner`]).
    pub owner: Option<String>,
    /// Only runs created at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl Store {
    /// A page of runs in descending id order (newest first: ids are UUIDv7),
    /// before `before` (the last id of the previous page). The order is stable
    /// while runs are added: new ones sort before the first page.
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Run>> {
        let mut tx = self.pool.begin().await?;
        // The pool plans every statement once, generically (see `connect`).
        // Generic plans cannot drop the `$n IS NULL OR …` branches of an
        // unused filter, so they could never use an index for one that is
        // used (`runs_stopped_by_id` for `state=failed`, `runs_environment`);
        // this query is planned with its actual values instead.
        sqlx::query_scalar!("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query_as!(
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
                   CASE WHEN r.error_class IS NOT NULL THEN r.step_error_detail END
                       AS "error_detail?",
                   r.created_at, r.started_at, r.finished_at,
                   substr(r.traceparent, 4, 32) AS trace_id
            FROM runs r
            -- A run's template and workflow are its definition's.
            JOIN workflow_definitions w ON w.id = r.definition_id
            LEFT JOIN environments e ON e.id = r.environment_id
            WHERE ($1::run_state IS NULL OR r.state = $1)
              AND ($2::uuid IS NULL OR r.environment_id = $2)
              AND ($3::text IS NULL OR w.template = $3)
              AND ($4::text IS NULL OR w.workflow = $4)
              AND ($5::text IS NULL OR coalesce(e.owner, r.created_by) = $5)
              AND ($6::timestamptz IS NULL OR r.created_at >= $6)
              AND ($7::uuid IS NULL OR r.id < $7)
            ORDER BY r.id DESC
            LIMIT $8
            "#,
            filter.state as Option<RunState>,
            filter.environment_id,
            filter.template,
            filter.workflow,
            filter.owner,
            filter.since,
            before,
            limit,
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Run::from).collect())
    }
}
