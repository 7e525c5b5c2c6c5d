//! How workers own runs: claim with `FOR UPDATE SKIP LOCKED`, extend the lease by
//! heartbeat, rescue runs whose lease ran out, release on shutdown.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{Result, Store};

/// A run a worker now owns, positioned at its first uncommitted step.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    /// The run.
    pub id: Uuid,
    /// Fencing token: every write about this run must carry it.
    pub token: i64,
    /// The definition snapshot to execute.
    pub definition_id: i64,
    /// The request's parameters.
    pub input: Value,
    /// The step to execute now.
    pub step: StepClaim,
    /// Number of steps in the run.
    pub step_count: i32,
    /// When the run became due: it has waited for a worker since.
    pub due_at: DateTime<Utc>,
    /// When the run was requested.
    pub requested_at: DateTime<Utc>,
    /// Whether the run works on an environment (its success makes the
    /// environment ready, unless it is a teardown).
    pub has_environment: bool,
    /// The trace context of the request that created the run, if it was
    /// traced ([`crate::store::enqueue::NewRun::traceparent`]).
    pub traceparent: Option<String>,
}

/// The step a worker is about to execute.
#[derive(Debug, Clone, Copy)]
pub struct StepClaim {
    /// Its index.
    pub idx: i32,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// "Not ready yet" polls so far, this one included.
    pub polls: i32,
    /// Whether this execution is a poll after a wait (it does not count as an attempt).
    pub is_poll: bool,
    /// When the step first started (a durable sleep measures from here).
    pub first_started_at: DateTime<Utc>,
}

/// A lease still held after a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    /// The run.
    pub run_id: Uuid,
    /// Whether an operator asked to cancel it.
    pub cancel_requested: bool,
}

impl Store {
    /// Claims up to `limit` due runs for `worker` and starts their current step.
    ///
    /// One statement: the CTE picks due rows in (due time, id) order and skips
    /// rows other workers have locked, so concurrent claimers never wait on or
    /// double-claim each other; the UPDATEs bump the fencing token and count the
    /// step's attempt (or poll, when it was waiting).
    pub async fn claim(
        &self,
        worker: &str,
        limit: i64,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedRun>> {
        let rows = sqlx::query!(
            r#"
            WITH due AS (
                -- The row is locked here, so what it reads of the step's
                -- start is what `claimed` replaces.
                SELECT id, state = 'waiting' AS is_poll,
                       step_started_event_id AS replaced_id, step_started_by AS replaced_by,
                       step_attempts AS replaced_attempt,
                       step_started_at_boundary AS replaced_at_boundary,
                       coalesce(step_restarted_at, step_started_at) AS replaced_at
                FROM runs
                WHERE state IN ('pending', 'waiting') AND next_run_at <= $1
                -- The index's order (`runs_claimable`): due time, then the
                -- order the runs were written in.
                ORDER BY next_run_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                -- The run's current step is its row (migration
                -- 20261212000100), and so is the step's `step_started`
                -- (20261209000200): a start replaces the row's, and `due`
                -- gives the one replaced to `kept`. The NOTIFY is the one
                -- the stored event's trigger sent.
                UPDATE runs r
                SET state = 'running', lease_owner = $3, lease_expires_at = $4,
                    lease_token = r.lease_token + 1,
                    started_at = coalesce(r.started_at, $1), updated_at = $1,
                    step_attempts = r.step_attempts + CASE WHEN due.is_poll THEN 0 ELSE 1 END,
                    step_polls = r.step_polls + CASE WHEN due.is_poll THEN 1 ELSE 0 END,
                    step_started_at = coalesce(r.step_started_at, $1),
                    step_started_event_id = CASE WHEN due.is_poll THEN r.step_started_event_id
                                                 ELSE nextval('events_id_seq') END,
                    step_started_by = CASE WHEN due.is_poll THEN r.step_started_by ELSE $3 END,
                    step_restarted_at = CASE WHEN due.is_poll THEN r.step_restarted_at
                                             WHEN r.step_started_at IS NOT NULL THEN $1 END,
                    step_started_at_boundary = CASE WHEN due.is_poll
                                                    THEN r.step_started_at_boundary END
                FROM due
                -- The ids as an array too: the plan every claim reuses
                -- cannot know how few runs `due` holds, and joined by id
                -- alone it read the whole table to hash it (10 ms of 20,000
                -- runs, and more as the table grows). An array is looked up
                -- in the primary key.
                WHERE r.id = ANY(ARRAY(SELECT d.id FROM due d)) AND r.id = due.id
                RETURNING r.id, r.lease_token, r.definition_id, r.input, r.current_step,
                          r.step_count, due.is_poll, r.next_run_at, r.created_at,
                          r.environment_id IS NOT NULL AS has_environment, r.traceparent,
                          r.step_attempts, r.step_polls, r.step_started_at,
                          due.replaced_id, due.replaced_by, due.replaced_attempt,
                          due.replaced_at_boundary, due.replaced_at,
                          CASE WHEN NOT due.is_poll
                               THEN pg_notify('hubwright_events',
                                              r.id::text || ' ' || r.step_started_event_id::text)
                          END AS woke
            ), kept AS (
                -- A claim's start is stored without a message: the timeline
                -- composes it from the kind, the data and the step's name
                -- (migration 20261208000301).
                INSERT INTO events (id, run_id, step_idx, kind, actor, message, data, at)
                OVERRIDING SYSTEM VALUE
                SELECT c.replaced_id, c.id, c.current_step, 'step_started', c.replaced_by,
                       -- As the statement that started it would have stored it.
                       stored_start_message(c.replaced_at_boundary,
                                            step_name(c.definition_id, c.current_step),
                                            c.replaced_attempt),
                       stored_start_data(c.replaced_at_boundary, c.replaced_attempt),
                       c.replaced_at
                FROM claimed c
                WHERE NOT c.is_poll AND c.replaced_id IS NOT NULL
            )
            SELECT c.id, c.lease_token, c.definition_id, coalesce(c.input, '{}') AS "input!",
                   c.step_count, c.is_poll,
                   c.next_run_at, c.created_at, c.has_environment AS "has_environment!",
                   c.traceparent, c.current_step AS idx, c.step_attempts AS attempts,
                   c.step_polls AS polls, c.step_started_at AS "started_at!"
            FROM claimed c
            ORDER BY c.id
            "#,
            now,
            limit,
            worker,
            now + lease,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| ClaimedRun {
                id: row.id,
                token: row.lease_token,
                definition_id: row.definition_id,
                input: row.input,
                step_count: row.step_count,
                due_at: row.next_run_at,
                requested_at: row.created_at,
                has_environment: row.has_environment,
                traceparent: row.traceparent,
                step: StepClaim {
                    idx: row.idx,
                    attempts: row.attempts,
                    polls: row.polls,
                    is_poll: row.is_poll.unwrap_or(false),
                    first_started_at: row.started_at,
                },
            })
            .collect())
    }

    /// Extends the leases `worker` holds (run id, token) and reports which are
    /// still held; a run missing from the answer was lost and must be abandoned.
    pub async fn heartbeat(
        &self,
        leases: &[(Uuid, i64)],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldLease>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, tokens): (Vec<Uuid>, Vec<i64>) = leases.iter().copied().unzip();
        let rows = sqlx::query!(
            r#"
            WITH held AS (
                -- Locked in id order, as a batched checkpoint locks them
                -- (`checkpoint/success.rs`): a worker's heartbeat and its
                -- checkpoint run at once on two connections, and locking
                -- the same runs in two orders deadlocked them (a second
                -- lost to the deadlock detector, and under load a commit
                -- given up near the end of its lease, its step run again).
                SELECT r.id
                FROM runs r
                JOIN unnest($1::uuid[], $2::bigint[]) AS h(id, token)
                     ON r.id = h.id AND r.lease_token = h.token
                WHERE r.state = 'running'
                ORDER BY r.id
                FOR UPDATE OF r
            )
            UPDATE runs r
            SET lease_expires_at = $3, updated_at = $4
            FROM held
            WHERE r.id = held.id
            RETURNING r.id, r.cancel_requested_at IS NOT NULL AS "cancel_requested!"
            "#,
            &ids,
            &tokens,
            now + lease,
            now,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| HeldLease {
                run_id: row.id,
                cancel_requested: row.cancel_requested,
            })
            .collect())
    }

    /// Returns up to `limit` runs whose lease expired (their worker died or hung)
    /// to `pending`, or to `cancelled` if cancellation was requested. Safe to run
    /// from every worker at once. Returns how many were rescued.
    pub async fn rescue_expired(
        &self,
        rescuer: &str,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let rescued = sqlx::query_scalar!(
            r#"
            WITH expired AS (
                SELECT id, lease_owner, lease_expires_at, current_step,
                       cancel_requested_at IS NOT NULL AS cancelling
                FROM runs
                WHERE state = 'running' AND lease_expires_at <= $1
                ORDER BY lease_expires_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            ), runs_done AS (
                UPDATE runs r
                SET state = CASE WHEN e.cancelling THEN 'cancelled' ELSE 'pending' END::run_state,
                    finished_at = CASE WHEN e.cancelling THEN $1 END,
                    next_run_at = $1, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
                FROM expired e
                WHERE r.id = e.id
                RETURNING r.id
            ), logged AS (
                INSERT INTO events (run_id, step_idx, kind, actor, message, data, at)
                SELECT e.id, e.current_step, 'lease_expired', $3,
                       format('lease of worker %s expired; run %s', e.lease_owner,
                              CASE WHEN e.cancelling THEN 'cancelled' ELSE 'returned to the queue' END),
                       -- When the lease ran out, beside when it was noticed:
                       -- what stopped the owner happened within a lease before.
                       jsonb_build_object('previous_owner', e.lease_owner,
                                          'lease_expired_at', e.lease_expires_at), $1
                FROM expired e
            )
            SELECT count(*) AS "count!" FROM runs_done
            "#,
            now,
            limit,
            rescuer,
        )
        .fetch_one(&self.pool)
        .await?;
        if rescued > 0 {
            // Rescued runs are due now: wake the claimers.
            sqlx::query!("SELECT pg_notify('hubwright_runs', '')")
                .execute(&self.pool)
                .await?;
        }
        Ok(u64::try_from(rescued).unwrap_or(0))
    }

    /// Gives a run back to the queue without an outcome (graceful shutdown): the
    /// step's attempt is not counted, since the step did nothing wrong.
    pub async fn release(
        &self,
        run_id: Uuid,
        token: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let released = sqlx::query_scalar!(
            r#"
            WITH owned AS (
                -- The row is locked here, so what it reads of the step's
                -- start is what `runs_done` clears.
                SELECT id, lease_owner, current_step, definition_id, step_started_event_id,
                       step_started_by, step_attempts, step_started_at_boundary,
                       coalesce(step_restarted_at, step_started_at) AS step_started_at
                FROM runs
                WHERE id = $1 AND lease_token = $2 AND state = 'running'
                FOR UPDATE
            ), runs_done AS (
                -- The attempt is given back, so the row's start, which names
                -- it, becomes a stored event.
                UPDATE runs r
                SET state = 'pending', next_run_at = $3, lease_owner = NULL,
                    lease_expires_at = NULL, updated_at = $3,
                    step_attempts = greatest(r.step_attempts - 1, 0),
                    step_started_event_id = NULL, step_started_by = NULL,
                    step_started_at_boundary = NULL
                FROM owned o WHERE r.id = o.id
                RETURNING r.id
            ), logged AS (
                INSERT INTO events (id, run_id, step_idx, kind, actor, message, data, at)
                OVERRIDING SYSTEM VALUE
                SELECT o.step_started_event_id, o.id, o.current_step, 'step_started',
                       o.step_started_by,
                       -- As the statement that started it would have stored it.
                       stored_start_message(o.step_started_at_boundary,
                                            step_name(o.definition_id, o.current_step),
                                            o.step_attempts),
                       stored_start_data(o.step_started_at_boundary, o.step_attempts),
                       o.step_started_at
                FROM owned o
                WHERE o.step_started_event_id IS NOT NULL
                UNION ALL
                SELECT nextval('events_id_seq'), o.id, o.current_step, 'lease_released',
                       o.lease_owner, $4, NULL, $3
                FROM owned o
            )
            SELECT count(*) AS "count!" FROM runs_done
            "#,
            run_id,
            token,
            now,
            reason,
        )
        .fetch_one(&self.pool)
        .await?;
        if released == 1 {
            sqlx::query!("SELECT pg_notify('hubwright_runs', '')")
                .execute(&self.pool)
                .await?;
        }
        Ok(released == 1)
    }

    /// When the next pending or waiting run becomes due, if any.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let next = sqlx::query_scalar!(
            r#"
            SELECT next_run_at FROM runs
            WHERE state IN ('pending', 'waiting')
            ORDER BY next_run_at
            LIMIT 1
            "#
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(next)
    }
}
