//! Accepting runs. One statement inserts the run and sends the wake-up, so
//! "accepted" and "will run" are the same commit. The run's `run_created`
//! event is its row (`created_event_id`, read through the view
//! `run_timeline`), not a row of `events`, and so is its first step (the
//! `step_*` columns, read through the view `steps`): one row per run.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::workflow::Snapshot;
use crate::{Error, Result, Store};

/// A run to accept.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// The id to give it (UUIDv7, from [`new_id`]).
    pub id: Uuid,
    /// The environment it works on, if any.
    pub environment_id: Option<Uuid>,
    /// The registered definition it executes.
    pub definition_id: i64,
    /// The same definition, for its names and steps.
    pub snapshot: &'a Snapshot,
    /// Validated parameters.
    pub input: Value,
    /// Earliest start.
    pub run_at: DateTime<Utc>,
    /// Who asked (a user, or `scheduler`).
    pub actor: &'a str,
    /// The W3C trace context of the request that asked for it, when tracing
    /// is on: the worker's spans for the run become its children, and its
    /// trace id shows on the run and its (synthesized) `run_created` event.
    pub traceparent: Option<&'a str>,
}

impl<'a> NewRun<'a> {
    /// A run of `snapshot` (registered as `definition_id`) due at `run_at`, with a
    /// fresh id and no environment.
    pub fn new(
        definition_id: i64,
        snapshot: &'a Snapshot,
        input: Value,
        actor: &'a str,
        run_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: new_id(),
            environment_id: None,
            definition_id,
            snapshot,
            input,
            run_at,
            actor,
            traceparent: None,
        }
    }
}

/// A fresh UUIDv7: ids sort by creation time, which keeps the primary-key index
/// append-only.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

impl Store {
    /// Accepts one run. It is committed (and a worker woken) when this returns.
    pub async fn enqueue(&self, run: &NewRun<'_>, now: DateTime<Utc>) -> Result<Uuid> {
        enqueue_with(&self.pool, run, now).await
    }

    /// Accepts many runs in one statement (benchmarks, bulk imports).
    pub async fn enqueue_many(&self, runs: &[NewRun<'_>], now: DateTime<Utc>) -> Result<()> {
        enqueue_many_with(&self.pool, runs, now).await
    }
}

/// Accepts many runs in one statement on any executor (the scheduler starts a
/// batch of teardowns in the transaction that marked their environments).
pub async fn enqueue_many_with<'e>(
    executor: impl PgExecutor<'e>,
    runs: &[NewRun<'_>],
    now: DateTime<Utc>,
) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let envs: Vec<Option<Uuid>> = runs.iter().map(|r| r.environment_id).collect();
    let definitions: Vec<i64> = runs.iter().map(|r| r.definition_id).collect();
    let inputs: Vec<Value> = runs.iter().map(|r| r.input.clone()).collect();
    let step_counts: Vec<i32> = runs
        .iter()
        .map(|r| step_count(r.snapshot))
        .collect::<Result<_>>()?;
    let run_ats: Vec<DateTime<Utc>> = runs.iter().map(|r| r.run_at).collect();
    let actors: Vec<String> = runs.iter().map(|r| r.actor.to_owned()).collect();
    let traceparents: Vec<Option<String>> = runs
        .iter()
        .map(|r| r.traceparent.map(str::to_owned))
        .collect();
    sqlx::query!(
        r#"
        WITH new_runs AS (
            INSERT INTO runs (id, environment_id, definition_id, input, step_count, next_run_at,
                              created_by, created_at, updated_at, traceparent)
            SELECT r.id, r.env, r.def, nullif(r.input, '{}'), r.steps, r.run_at, r.actor, $7, $7,
                   r.traceparent
            FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::jsonb[], $5::int[],
                        $6::timestamptz[], $8::text[], $9::text[])
                 AS r(id, env, def, input, steps, run_at, actor, traceparent)
        )
        SELECT pg_notify('hubwright_runs', '') FROM (SELECT 1) AS once
        "#,
        &ids,
        &envs as &[Option<Uuid>],
        &definitions,
        &inputs,
        &step_counts,
        &run_ats,
        now,
        &actors,
        &traceparents as &[Option<String>],
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Accepts one run on any executor, so callers can put it in their own
/// transaction (the API inserts the environment and its run together).
pub async fn enqueue_with<'e>(
    executor: impl PgExecutor<'e>,
    run: &NewRun<'_>,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    // The wake-up is sent only for runs due now; delayed ones are found by the
    // workers' poll for the next due time.
    sqlx::query!(
        r#"
        WITH new_run AS (
            INSERT INTO runs (id, environment_id, definition_id, input, step_count, next_run_at,
                              created_by, created_at, updated_at, traceparent)
            VALUES ($1, $2, $3, nullif($4::jsonb, '{}'), $5, $6, $8, $7, $7, $9)
            RETURNING id
        )
        SELECT pg_notify('hubwright_runs', '') FROM new_run WHERE $6 <= $7
        "#,
        run.id,
        run.environment_id,
        run.definition_id,
        run.input,
        step_count(run.snapshot)?,
        run.run_at,
        now,
        run.actor,
        run.traceparent,
    )
    .execute(executor)
    .await?;
    Ok(run.id)
}

/// How many steps `snapshot` has, as the `runs` row keeps it: 1 or more.
pub(super) fn step_count(snapshot: &Snapshot) -> Result<i32> {
    match i32::try_from(snapshot.steps.len()) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Invalid {
            field: format!("{snapshot}.steps"),
            rule: "must hold between 1 and 2^31 steps".to_owned(),
        }),
    }
}
