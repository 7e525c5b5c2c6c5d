//! Stopping an environment's runs once its teardown was requested: the one
//! transition a delete request, expiry and a pool's recycling share, and the
//! lock they take first.
//!
//! It is a function of its own, run in the caller's transaction right after
//! the caller marked the environments, rather than a CTE each caller repeats:
//! sqlx checks each query text on its own and cannot splice a shared one into
//! two statements, and a SQL function would take the query out of that check
//! (see `docs/decisions/0008-stopping-runs-is-one-rust-function.md`).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::Result;

/// Locks the active runs of `environment_ids`, in id order. Call it before
/// the statement that marks the environments: a run's change of state locks
/// the run and then, through the phase trigger, its environment, so a caller
/// that locked the environment first and the run after could wait in a cycle
/// with a worker's checkpoint of that run, until the deadlock detector broke
/// it a second later by failing one of them. Runs first, environment second
/// is the one order both sides take.
pub(super) async fn lock_environment_runs<'e>(
    executor: impl PgExecutor<'e>,
    environment_ids: &[Uuid],
) -> Result<()> {
    sqlx::query_scalar!(
        r#"
        SELECT r.id FROM runs r
        WHERE r.environment_id = ANY($1::uuid[]) AND r.state IN ('pending', 'waiting', 'running')
        ORDER BY r.id
        FOR UPDATE
        "#,
        environment_ids,
    )
    .fetch_all(executor)
    .await?;
    Ok(())
}

/// Stops the active runs of `environment_ids`: a pending or waiting run
/// becomes `cancelled` with its remaining steps, and a running one is asked to
/// cancel, which its worker honours at the next step boundary. Each run gets a
/// `run_cancelled` or `cancel_requested` event saying `reason`. Returns how many
/// runs it touched.
///
/// Call it in the transaction that marked the environments `tearing_down`, so
/// that the phase trigger sees the mark and leaves the phase alone, and no
/// observer sees an environment tearing down with a run that may still start;
/// that transaction takes [`lock_environment_runs`] before the mark.
pub(super) async fn stop_environment_runs<'e>(
    executor: impl PgExecutor<'e>,
    environment_ids: &[Uuid],
    actor: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    // One guarded UPDATE: only runs still active move; a run that ended in
    // the meantime is left as it is.
    let stopped = sqlx::query_scalar!(
        r#"
        WITH stopped AS (
            UPDATE runs r
            SET state = CASE WHEN r.state IN ('pending', 'waiting') THEN 'cancelled'
                             ELSE r.state END::run_state,
                finished_at = CASE WHEN r.state IN ('pending', 'waiting') THEN $4::timestamptz END,
                cancel_requested_at = $4, cancel_requested_by = $2::text, updated_at = $4
            WHERE r.environment_id = ANY($1::uuid[]) AND r.state IN ('pending', 'waiting', 'running')
            RETURNING r.id, r.environment_id, r.state
        ), logged AS (
            INSERT INTO events (run_id, environment_id, kind, actor, message, at)
            SELECT st.id, st.environment_id,
                   CASE WHEN st.state = 'cancelled' THEN 'run_cancelled' ELSE 'cancel_requested' END,
                   $2, $3::text, $4
            FROM stopped st
        )
        SELECT count(*) AS "count!" FROM stopped
        "#,
        environment_ids,
        actor,
        reason,
        now,
    )
    .fetch_one(executor)
    .await?;
    Ok(stopped)
}
