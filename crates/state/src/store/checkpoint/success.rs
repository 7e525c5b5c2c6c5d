//! Committing successful steps: each run's next step starts under the same
//! lease, or the run ends, in one statement for a batch of runs.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::RunState;
use crate::store::lease::StepClaim;
use crate::{Result, Store};

/// A step that succeeded, to commit.
#[derive(Debug, Clone)]
pub struct StepSuccess {
    /// The run.
    pub run_id: Uuid,
    /// The fencing token it was claimed with.
    pub token: i64,
    /// The step that succeeded.
    pub step_idx: i32,
    /// Its output, kept for later steps and the API.
    pub output: Value,
}

/// What became of a run after a successful step was committed.
#[derive(Debug, Clone, Copy)]
pub struct Advanced {
    /// The run.
    pub run_id: Uuid,
    /// `running` when the next step has started, else `succeeded` or `cancelled`.
    pub state: RunState,
    /// The next step, started under the same lease, when `state` is `running`.
    pub next: Option<StepClaim>,
}

impl Store {
    /// Commits successful steps of many runs in one statement and starts each
    /// run's next step under the same lease. Runs whose lease was lost are absent
    /// from the answer.
    pub async fn commit_successes(
        &self,
        batch: &[StepSuccess],
        now: DateTime<Utc>,
    ) -> Result<Vec<Advanced>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = batch.iter().map(|s| s.run_id).collect();
        let tokens: Vec<i64> = batch.iter().map(|s| s.token).collect();
        let idxs: Vec<i32> = batch.iter().map(|s| s.step_idx).collect();
        let outputs: Vec<Value> = batch.iter().map(|s| s.output.clone()).collect();
        let rows = sqlx::query!(
            r#"
            WITH owned AS (
                -- The step's `step_succeeded` event id, drawn here so that a
                -- run's `run_succeeded` id, drawn by `advanced`, sorts after it.
                -- The row is locked here, so what it reads of the run's
                -- current step (migration 20261212000100) is what the step
                -- ended as: `moved_past` stores it, `advanced` replaces it.
                SELECT r.id, i.idx, i.output, r.lease_owner, r.definition_id,
                       r.cancel_requested_at IS NOT NULL AS cancelling,
                       i.idx + 1 = r.step_count AS last,
                       nextval('events_id_seq') AS success_event_id,
                       r.step_attempts, r.step_polls, r.step_started_at, r.step_restarted_at,
                       r.step_started_event_id, r.step_started_by, r.step_started_at_boundary,
                       r.step_finished_event_id, r.step_finished_by, r.finished_at
                FROM runs r
                JOIN unnest($1::uuid[], $2::bigint[], $3::int[], $4::jsonb[])
                     AS i(id, token, idx, output) ON r.id = i.id
                WHERE r.state = 'running' AND r.lease_token = i.token AND r.current_step = i.idx
                -- In id order, as the heartbeat locks them (`lease.rs`).
                ORDER BY r.id
                FOR UPDATE OF r
            ), moved_past AS (
                -- A step the run moves past gets a row of `step_history`, as
                -- it ended.
                INSERT INTO step_history (run_id, idx, name, kind, state, attempts, polls, output,
                                          started_at, finished_at, updated_at, started_event_id,
                                          finished_event_id, restarted_at, started_by, finished_by,
                                          started_at_boundary)
                SELECT o.id, o.idx, w.definition -> 'steps' -> o.idx ->> 'name',
                       w.definition -> 'steps' -> o.idx ->> 'kind', 'succeeded', o.step_attempts,
                       o.step_polls, o.output, o.step_started_at, $5, $5, o.step_started_event_id,
                       o.success_event_id, o.step_restarted_at, o.step_started_by,
                       nullif(o.lease_owner, o.step_started_by), o.step_started_at_boundary
                FROM owned o
                JOIN workflow_definitions w ON w.id = o.definition_id
                WHERE NOT o.last
            ), advanced AS (
                -- The row's step is then the last one, succeeded, or the next
                -- one, started under the same lease (as the claim starts one,
                -- `lease.rs`) or cancelled with its run. A success the row
                -- already held (`owned`) is stored by `logged` rather than
                -- lost.
                UPDATE runs r
                SET current_step = o.idx + 1,
                    state = CASE WHEN o.last THEN 'succeeded'
                                 WHEN o.cancelling THEN 'cancelled'
                                 ELSE 'running' END::run_state,
                    finished_at = CASE WHEN o.last OR o.cancelling THEN $5 END,
                    lease_owner = CASE WHEN o.last OR o.cancelling THEN NULL ELSE r.lease_owner END,
                    lease_expires_at = CASE WHEN o.last OR o.cancelling THEN NULL
                                            ELSE r.lease_expires_at END,
                    -- The run's `run_succeeded` event is this id on its row
                    -- (migration 20261208000302).
                    finished_event_id = CASE WHEN o.last THEN nextval('events_id_seq') END,
                    updated_at = $5,
                    step_attempts = CASE WHEN o.last THEN r.step_attempts
                                         WHEN o.cancelling THEN 0 ELSE 1 END,
                    step_polls = CASE WHEN o.last THEN r.step_polls ELSE 0 END,
                    -- `{}` is stored as NULL (migration 20261212000100).
                    step_output = CASE WHEN o.last THEN nullif(o.output, '{}') END,
                    step_error_class = NULL, step_error_message = NULL, step_error_detail = NULL,
                    step_started_at = CASE WHEN o.last THEN r.step_started_at
                                           WHEN o.cancelling THEN NULL ELSE $5 END,
                    step_restarted_at = CASE WHEN o.last THEN r.step_restarted_at END,
                    step_started_event_id = CASE WHEN o.last THEN r.step_started_event_id
                                                 WHEN o.cancelling THEN NULL
                                                 ELSE nextval('events_id_seq') END,
                    step_started_by = CASE WHEN o.last THEN r.step_started_by
                                           WHEN o.cancelling THEN NULL ELSE o.lease_owner END,
                    step_started_at_boundary = CASE WHEN o.last THEN r.step_started_at_boundary
                                                    WHEN o.cancelling THEN NULL ELSE true END,
                    step_finished_event_id = CASE WHEN o.last THEN o.success_event_id END,
                    step_finished_by = CASE WHEN o.last
                                            THEN nullif(o.lease_owner, r.step_started_by) END
                FROM owned o
                WHERE r.id = o.id
                -- No event of these is stored, so no trigger wakes the
                -- run's streams: this does, with its newest event's id.
                RETURNING r.id, r.state, r.current_step, r.step_attempts, r.step_polls,
                          r.step_started_at,
                          o.step_finished_event_id AS replaced_id,
                          coalesce(o.step_finished_by, o.step_started_by) AS replaced_by,
                          o.finished_at AS replaced_at,
                          pg_notify('hubwright_events', r.id::text || ' ' ||
                              greatest(o.success_event_id, r.step_started_event_id,
                                       r.finished_event_id)::text) AS woke
            ), logged AS (
                -- A success the row held before is stored with its own id
                -- and no message (the timeline composes it, migration
                -- 20261208000301): only a row written twice has one.
                INSERT INTO events (id, run_id, step_idx, kind, actor, message, data, at)
                OVERRIDING SYSTEM VALUE
                SELECT a.replaced_id, a.id, o.idx, 'step_succeeded', a.replaced_by, NULL::text, NULL::jsonb,
                       a.replaced_at
                FROM advanced a JOIN owned o ON o.id = a.id WHERE a.replaced_id IS NOT NULL
                UNION ALL
                SELECT nextval('events_id_seq'), o.id, NULL, 'run_cancelled', o.lease_owner,
                       'run cancelled at a step boundary', NULL, $5
                FROM owned o WHERE o.cancelling AND NOT o.last
            )
            SELECT a.id, a.state AS "state!: RunState",
                   CASE WHEN a.state = 'running' THEN a.current_step END AS "next_idx?",
                   CASE WHEN a.state = 'running' THEN a.step_attempts END AS "next_attempts?",
                   CASE WHEN a.state = 'running' THEN a.step_polls END AS "next_polls?",
                   CASE WHEN a.state = 'running' THEN a.step_started_at END AS "next_started_at?"
            FROM advanced a
            "#,
            &ids,
            &tokens,
            &idxs,
            &outputs,
            now,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Advanced {
                run_id: row.id,
                state: row.state,
                next: match (
                    row.next_idx,
                    row.next_attempts,
                    row.next_polls,
                    row.next_started_at,
                ) {
                    (Some(idx), Some(attempts), Some(polls), Some(first_started_at)) => {
                        Some(StepClaim {
                            idx,
                            attempts,
                            polls,
                            is_poll: false,
                            first_started_at,
                        })
                    }
                    _ => None,
                },
            })
            .collect())
    }
}
