//! The queue as an operator sees it (`GET /v1/queue`): how many runs wait in
//! each state, how long the longest-waiting due run has waited, which workers
//! hold leases and how many runs their leases cover, and which runs were
//! rescued after a worker's lease ran out.
//!
//! Workers are listed twice: the processes that registered themselves
//! ([`crate::store::workers`]: idle ones too, with their version and last
//! heartbeat), and the lease holders as the runs name them
//! (`runs.lease_owner`): a worker whose leases expired shows them as
//! `expired` until a rescuer returns its runs to the queue (a
//! `lease_expired` event each), whether or not it ever registered.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::RunState;
use crate::{Result, Store};

/// How many recent rescues [`Store::queue_health`] lists.
pub const RECENT_RESCUES: i64 = 10;

/// The most workers [`Store::queue_health`] lists.
pub const MAX_WORKERS: i64 = 200;

/// The queue's health at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueHealth {
    /// The moment the figures describe (the API's clock).
    pub at: DateTime<Utc>,
    /// Runs in each state but `succeeded` (most of the table, and nothing an
    /// operator acts on; `/metrics` counts them).
    pub runs: RunCounts,
    /// Pending or waiting runs due now, not yet claimed: the queue's depth.
    pub due: i64,
    /// Pending or waiting runs due later (retry backoffs, polls, approvals).
    pub scheduled: i64,
    /// The due run that has waited longest, if any is due.
    pub oldest_due: Option<DueRun>,
    /// Every worker holding a lease, by name.
    pub workers: Vec<WorkerLeases>,
    /// Every worker process heard from in the last day, idle ones too:
    /// running first, then silent, then stopped.
    pub processes: Vec<crate::store::workers::WorkerProcess>,
    /// Runs returned to the queue (or cancelled) because their worker's lease
    /// ran out, since `rescued_since`.
    pub rescued: i64,
    /// The start of the window `rescued` counts.
    pub rescued_since: DateTime<Utc>,
    /// The latest rescues, newest first (at most 10, of any age).
    pub recent_rescues: Vec<Rescue>,
}

/// Runs per state, `succeeded` left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunCounts {
    /// Waiting for a worker (new, released, rescued, or a retry's backoff).
    pub pending: i64,
    /// Held by a worker.
    pub running: i64,
    /// Polled again later.
    pub waiting: i64,
    /// Stopped for an operator.
    pub failed: i64,
    /// Cancelled.
    pub cancelled: i64,
}

/// The due run that has waited longest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DueRun {
    /// The run.
    pub run_id: Uuid,
    /// `pending` or `waiting`.
    pub state: RunState,
    /// Its template.
    pub template: String,
    /// Its workflow.
    pub workflow: String,
    /// When it became due.
    pub due_at: DateTime<Utc>,
    /// How long it has been due, in whole seconds.
    pub overdue_seconds: i64,
}

/// One worker, as its leases show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerLeases {
    /// The worker's name (`runs.lease_owner`: `--worker-id`, or host and process id).
    pub worker: String,
    /// Runs it holds.
    pub runs: i64,
    /// The soonest of its leases to run out unless its heartbeat extends it.
    pub soonest_expiry: DateTime<Utc>,
    /// Leases already past their expiry: the worker died or hung, and a
    /// rescuer will return these runs to the queue.
    pub expired: i64,
}

/// A run rescued after its worker's lease ran out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rescue {
    /// The run.
    pub run_id: Uuid,
    /// When it was rescued.
    pub at: DateTime<Utc>,
    /// The worker whose lease ran out.
    pub previous_owner: Option<String>,
    /// Who rescued it (a worker).
    pub rescued_by: String,
    /// What became of it, in words.
    pub message: String,
}

impl Store {
    /// The queue's health at `now`, counting rescues since `rescued_since`.
    /// Read in one snapshot so the figures agree with each other; each read
    /// follows an index (`runs_claimable`, `runs_leases`, `runs_stopped_by_id`,
    /// `events_rescues`), so its cost follows the queue, not the history.
    pub async fn queue_health(
        &self,
        now: DateTime<Utc>,
        rescued_since: DateTime<Utc>,
    ) -> Result<QueueHealth> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        // One scalar sub-select per state: each matches one partial index's
        // predicate, which a single `GROUP BY state` over the table would not.
        let counts = sqlx::query!(
            r#"
            SELECT
              (SELECT count(*) FROM runs WHERE state = 'pending') AS "pending!",
              (SELECT count(*) FROM runs WHERE state = 'running') AS "running!",
              (SELECT count(*) FROM runs WHERE state = 'waiting') AS "waiting!",
              (SELECT count(*) FROM runs WHERE state = 'failed') AS "failed!",
              (SELECT count(*) FROM runs WHERE state = 'cancelled') AS "cancelled!",
              (SELECT count(*) FROM runs
               WHERE state IN ('pending', 'waiting') AND next_run_at <= $1) AS "due!",
              (SELECT count(*) FROM runs
               WHERE state IN ('pending', 'waiting') AND next_run_at > $1) AS "scheduled!",
              (SELECT count(*) FROM events
               WHERE kind = 'lease_expired' AND at > $2 AND at <= $1) AS "rescued!"
            "#,
            now,
            rescued_since,
        )
        .fetch_one(&mut *tx)
        .await?;
        // The claim's own order: the run a worker takes next.
        let oldest_due = sqlx::query!(
            r#"
            SELECT r.id, r.state AS "state: RunState", w.template, w.workflow, r.next_run_at
            FROM runs r
            JOIN workflow_definitions w ON w.id = r.definition_id
            WHERE r.state IN ('pending', 'waiting') AND r.next_run_at <= $1
            ORDER BY r.next_run_at
            LIMIT 1
            "#,
            now,
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| DueRun {
            run_id: row.id,
            state: row.state,
            template: row.template,
            workflow: row.workflow,
            due_at: row.next_run_at,
            overdue_seconds: (now - row.next_run_at).num_seconds().max(0),
        });
        let workers = sqlx::query_as!(
            WorkerLeases,
            r#"
            SELECT lease_owner AS "worker!", count(*) AS "runs!",
                   min(lease_expires_at) AS "soonest_expiry!",
                   count(*) FILTER (WHERE lease_expires_at <= $1) AS "expired!"
            FROM runs
            WHERE state = 'running'
            GROUP BY lease_owner
            ORDER BY lease_owner
            LIMIT $2
            "#,
            now,
            MAX_WORKERS,
        )
        .fetch_all(&mut *tx)
        .await?;
        let processes = Store::worker_processes(&mut tx, now).await?;
        let recent_rescues = sqlx::query_as!(
            Rescue,
            r#"
            SELECT run_id AS "run_id!", at AS "at!",
                   data ->> 'previous_owner' AS previous_owner,
                   actor AS "rescued_by!", message AS "message!"
            FROM events
            WHERE kind = 'lease_expired' AND at <= $1
            ORDER BY at DESC, id DESC
            LIMIT $2
            "#,
            now,
            RECENT_RESCUES,
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(QueueHealth {
            at: now,
            runs: RunCounts {
                pending: counts.pending,
                running: counts.running,
                waiting: counts.waiting,
                failed: counts.failed,
                cancelled: counts.cancelled,
            },
            due: counts.due,
            scheduled: counts.scheduled,
            oldest_due,
            workers,
            processes,
            rescued: counts.rescued,
            rescued_since,
            recent_rescues,
        })
    }
}
