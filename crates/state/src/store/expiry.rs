//! Time-to-live: expired environments marked for teardown and their teardown
//! runs started in one transaction, warnings recorded once per lead time, and
//! the next moment the scheduler has anything to do.
//!
//! Several schedulers may call these at once. Each expired environment is
//! taken by one of them (`FOR UPDATE SKIP LOCKED`, then guarded by
//! `teardown_requested_at IS NULL`); the unique index on active runs per
//! environment is the last line: a second teardown run cannot be inserted.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use uuid::Uuid;

use super::WakeListener;
use super::enqueue::{NewRun, enqueue_many_with};
use super::stop::stop_environment_runs;
use crate::workflow::Snapshot;
use crate::{Result, Store};

/// The Postgres channel a scheduler listens on to learn that an expiry moved
/// (an environment was requested or extended).
pub const EXPIRY_CHANNEL: &str = "hubwright_expiry";

/// Who expiry's events and teardown runs name as their actor.
pub const SCHEDULER_ACTOR: &str = "scheduler";

/// The teardown workflow of one template, as the scheduler starts it.
#[derive(Debug, Clone, Copy)]
pub struct ExpiryTeardown<'a> {
    /// The template's name.
    pub template: &'a str,
    /// Its registered `teardown` workflow.
    pub snapshot: &'a Snapshot,
    /// The registered id of `snapshot`.
    pub definition_id: i64,
}

/// What one expiry pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Environments marked for teardown by this pass.
    pub marked: usize,
    /// Teardown runs started at once (the rest wait for a running provisioning
    /// run to stop at its step boundary).
    pub started: usize,
}

impl Store {
    /// Marks up to `limit` expired environments (`expires_at <= now`, teardown
    /// never requested, template in `teardowns`) `tearing_down` as the
    /// scheduler, cancels their active runs (an idle one at once, a running one
    /// at its next step boundary), and starts the teardown of each whose runs
    /// have all stopped — in one transaction.
    ///
    /// `traceparent` is called once, only when something expired: the
    /// trace context of the pass, which the teardowns are started with (now
    /// or when a running run stops), so a pass that expires nothing leaves
    /// no trace.
    pub async fn expire_due(
        &self,
        teardowns: &[ExpiryTeardown<'_>],
        limit: i64,
        now: DateTime<Utc>,
        traceparent: impl FnOnce() -> Option<String> + Send,
    ) -> Result<Expired> {
        let templates: Vec<&str> = teardowns.iter().map(|t| t.template).collect();
        let definitions: Vec<i64> = teardowns.iter().map(|t| t.definition_id).collect();
        let mut tx = self.pool.begin().await?;
        // The active runs of the environments due, the same first `limit` the
        // mark below takes, locked before any environment
        // (`lock_environment_runs` says why). Environments without one (nearly
        // all) lock nothing here, so schedulers still split the due ones
        // between them below.
        sqlx::query_scalar!(
            r#"
            SELECT r.id
            FROM runs r
            WHERE r.state IN ('pending', 'waiting', 'running')
              AND r.environment_id IN (
                  SELECT e.id FROM environments e
                  WHERE e.template = ANY($2::text[]) AND e.expires_at <= $1
                    AND e.teardown_requested_at IS NULL AND e.phase <> 'deleted'
                  ORDER BY e.expires_at
                  LIMIT $3)
            ORDER BY r.id
            FOR UPDATE OF r
            "#,
            now,
            &templates as &[&str],
            limit,
        )
        .fetch_all(&mut *tx)
        .await?;
        // Same edges as `request_teardown`, for a batch; rows another scheduler
        // holds are skipped, and the guard is re-checked on the locked row.
        let marked = sqlx::query_scalar!(
            r#"
            WITH due AS (
                SELECT e.id, t.def
                FROM environments e
                JOIN unnest($2::text[], $3::bigint[]) AS t(template, def) ON t.template = e.template
                WHERE e.expires_at <= $1 AND e.teardown_requested_at IS NULL
                  AND e.phase <> 'deleted'
                ORDER BY e.expires_at
                LIMIT $4
                FOR UPDATE OF e SKIP LOCKED
            ), marked AS (
                UPDATE environments e
                SET phase = 'tearing_down', teardown_definition_id = due.def,
                    teardown_requested_at = $1, teardown_requested_by = $5, updated_at = $1
                FROM due
                WHERE e.id = due.id AND e.teardown_requested_at IS NULL
                RETURNING e.id, e.expires_at
            ), logged AS (
                INSERT INTO events (environment_id, kind, actor, message, data, at)
                SELECT id, 'environment_expired', $5,
                       format('expired at %s; teardown requested', expires_at),
                       jsonb_build_object('expires_at', expires_at), $1
                FROM marked
            )
            SELECT id AS "id!" FROM marked
            "#,
            now,
            &templates as &[&str],
            &definitions,
            limit,
            SCHEDULER_ACTOR,
        )
        .fetch_all(&mut *tx)
        .await?;
        if marked.is_empty() {
            tx.rollback().await?;
            return Ok(Expired::default());
        }
        if let Some(traceparent) = traceparent() {
            sqlx::query!(
                "UPDATE environments SET teardown_traceparent = $2 WHERE id = ANY($1)",
                &marked,
                traceparent,
            )
            .execute(&mut *tx)
            .await?;
        }
        stop_environment_runs(
            &mut *tx,
            &marked,
            SCHEDULER_ACTOR,
            "the environment expired; the run stops",
            now,
        )
        .await?;
        // Those whose runs all stopped (idle ones were just cancelled) start
        // their teardown in the same commit; a running provisioning run starts
        // it when it stops (the worker, or the sweep).
        let ready = sqlx::query!(
            r#"
            SELECT e.id, e.teardown_definition_id AS "definition_id!", e.parameters,
                   e.teardown_traceparent
            FROM environments e
            WHERE e.id = ANY($1) AND e.phase = 'tearing_down'
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.environment_id = e.id
                              AND r.state IN ('pending', 'waiting', 'running'))
            "#,
            &marked,
        )
        .fetch_all(&mut *tx)
        .await?;
        let runs: Vec<NewRun<'_>> = ready
            .iter()
            .filter_map(|row| {
                let teardown = teardowns
                    .iter()
                    .find(|t| t.definition_id == row.definition_id)?;
                let mut run = NewRun::new(
                    teardown.definition_id,
                    teardown.snapshot,
                    row.parameters.clone(),
                    SCHEDULER_ACTOR,
                    now,
                );
                run.environment_id = Some(row.id);
                run.traceparent = row.teardown_traceparent.as_deref();
                Some(run)
            })
            .collect();
        enqueue_many_with(&mut *tx, &runs, now).await?;
        tx.commit().await?;
        Ok(Expired {
            marked: marked.len(),
            started: runs.len(),
        })
    }

    /// Records an `expiry_warning` event for each live environment that expires
    /// within one of `leads_seconds` from `now` and has not been warned for that
    /// lead and that expiry before. Returns (lead, warnings recorded now).
    pub async fn record_expiry_warnings(
        &self,
        leads_seconds: &[i64],
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query!(
            r#"
            WITH due AS (
                SELECT e.id, e.expires_at, l.lead
                FROM unnest($2::bigint[]) AS l(lead)
                JOIN environments e
                  ON e.expires_at > $1 AND e.expires_at <= $1::timestamptz + make_interval(secs => l.lead)
                WHERE e.teardown_requested_at IS NULL AND e.phase <> 'deleted'
            ), recorded AS (
                INSERT INTO expiry_warnings (environment_id, lead_seconds, expires_at, warned_at)
                SELECT id, lead, expires_at, $1 FROM due
                ON CONFLICT DO NOTHING
                RETURNING environment_id, lead_seconds, expires_at
            ), logged AS (
                INSERT INTO events (environment_id, kind, actor, message, data, at)
                SELECT environment_id, 'expiry_warning', $3,
                       format('expires at %s (warning %s before)', expires_at,
                              make_interval(secs => lead_seconds)),
                       jsonb_build_object('expires_at', expires_at, 'lead_seconds', lead_seconds),
                       $1
                FROM recorded
            )
            SELECT lead_seconds AS "lead!", count(*) AS "count!" FROM recorded GROUP BY lead_seconds
            "#,
            now,
            leads_seconds,
            SCHEDULER_ACTOR,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.lead, r.count)).collect())
    }

    /// How many live environments expire within each of `leads_seconds` from
    /// `now` (the `hubwright_environment_expiring` gauge).
    pub async fn count_expiring(
        &self,
        leads_seconds: &[i64],
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query!(
            r#"
            SELECT l.lead AS "lead!",
                   (SELECT count(*) FROM environments e
                    WHERE e.teardown_requested_at IS NULL AND e.phase <> 'deleted'
                      AND e.expires_at <= $1::timestamptz + make_interval(secs => l.lead)) AS "count!"
            FROM unnest($2::bigint[]) AS l(lead)
            "#,
            now,
            leads_seconds,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.lead, r.count)).collect())
    }

    /// The next moment after `now` at which an environment expires or a warning
    /// `leads_seconds` before an expiry falls due, if any.
    pub async fn next_expiry_event(
        &self,
        leads_seconds: &[i64],
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        // Per lead (0 = the expiry itself): the earliest expiry more than `lead`
        // away, minus the lead. Each is one step down the due index.
        Ok(sqlx::query_scalar!(
            r#"
            SELECT min(n.at) FROM (
                SELECT (SELECT min(e.expires_at) FROM environments e
                        WHERE e.teardown_requested_at IS NULL AND e.phase <> 'deleted'
                          AND e.expires_at > $1::timestamptz + make_interval(secs => l.lead))
                       - make_interval(secs => l.lead) AS at
                FROM unnest(array_append($2::bigint[], 0)) AS l(lead)
            ) n
            "#,
            now,
            leads_seconds,
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Subscribes to expiry changes: one arrives whenever an environment is
    /// requested or its expiry moves.
    pub async fn expiry_listener(&self) -> Result<WakeListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(EXPIRY_CHANNEL).await?;
        Ok(WakeListener { listener })
    }

    /// Environment ids and the number of teardown runs each has (tests and the
    /// `ttl` benchmark check "exactly one").
    pub async fn teardown_run_counts(&self) -> Result<Vec<(Uuid, i64)>> {
        let rows = sqlx::query!(
            r#"
            SELECT e.id, count(r.id) AS "count!"
            FROM environments e LEFT JOIN runs r ON r.environment_id = e.id AND workflow_of(r.definition_id) = 'teardown'
            GROUP BY e.id
            "#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.count)).collect())
    }
}

impl Store {
    /// Inserts `count` `ready` environments of `template` that expire at
    /// `expires_at`, without runs, in one statement: the fixture of the `ttl`
    /// benchmark. Returns how many were inserted.
    pub async fn insert_expiring_environments(
        &self,
        template: &str,
        count: i64,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let inserted = sqlx::query!(
            r#"
            INSERT INTO environments (id, name, owner, template, cluster, namespace, phase,
                                      expires_at, created_at, updated_at)
            SELECT gen_random_uuid(), 'env-' || n, 'bench', $1, 'default', 'jh-env-' || n,
                   'ready', $3, $4, $4
            FROM generate_series(1, $2::bigint) AS n
            "#,
            template,
            count,
            expires_at,
            now,
        )
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected())
    }

    /// For each environment's teardown run, how long after its expiry it was
    /// created, in milliseconds, sorted (the `ttl` benchmark's lags).
    pub async fn teardown_lags_ms(&self) -> Result<Vec<f64>> {
        Ok(sqlx::query_scalar!(
            r#"
            SELECT (extract(epoch FROM r.created_at - e.expires_at) * 1000)::float8 AS "lag!"
            FROM runs r JOIN environments e ON e.id = r.environment_id
            WHERE workflow_of(r.definition_id) = 'teardown'
            ORDER BY 1
            "#
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Wakes every scheduler to re-plan (after expiries were changed in bulk).
    pub async fn notify_expiry(&self) -> Result<()> {
        sqlx::query!("SELECT pg_notify('hubwright_expiry', '')")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
