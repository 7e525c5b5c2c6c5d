//! Reading environments: one, the one a run works on, and pages of them, each
//! with its conditions (the steps of its latest provisioning run, gathered by
//! a lateral join in the same query, so a page costs one query).
//!
//! The three queries repeat the lateral join: sqlx checks each query text on
//! its own and cannot splice a shared fragment (see decision 0008).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::condition::StepDigests;
use crate::model::{Environment, EnvironmentPhase};
use crate::{Error, Result, Store};

/// Which environments to list.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentFilter {
    /// Only this owner's.
    pub owner: Option<String>,
    /// Only in this phase.
    pub phase: Option<EnvironmentPhase>,
    /// Only of this template.
    pub template: Option<String>,
    /// Include deleted environments. A `phase` filter includes them anyway, so
    /// `phase: deleted` finds them without this.
    pub include_deleted: bool,
    /// Only those expiring at or before this time whose teardown was not yet
    /// requested (`--expiring-within`).
    pub expires_before: Option<DateTime<Utc>>,
}

impl Store {
    /// One environment.
    pub async fn environment(&self, id: Uuid) -> Result<Environment> {
        fetch_environment(&self.pool, id)
            .await?
            .ok_or(Error::EnvironmentNotFound(id))
    }

    /// The environment run `run_id` works on, if it works on one.
    pub async fn run_environment(&self, run_id: Uuid) -> Result<Option<Environment>> {
        Ok(sqlx::query_as!(
            Environment,
            r#"
            SELECT e.id, e.name, e.owner, e.template, e.parameters, e.cluster, e.namespace,
                   e.phase AS "phase: EnvironmentPhase", e.url, e.expires_at, e.last_error,
                   e.created_at, e.updated_at, c.conditions AS "conditions!: StepDigests"
            FROM runs r JOIN environments e ON e.id = r.environment_id
            -- The same lateral join as `fetch_environment`'s.
            CROSS JOIN LATERAL (
                SELECT coalesce(jsonb_agg(jsonb_build_object(
                           'name', s.name, 'state', s.state, 'attempts', s.attempts,
                           'current', s.idx = p.current_step, 'error', s.error_message,
                           'note', CASE WHEN s.state = 'waiting' THEN (
                               SELECT ev.message FROM events ev
                               WHERE ev.run_id = p.id AND ev.step_idx = s.idx
                                 AND ev.kind = 'step_waiting'
                               ORDER BY ev.id DESC LIMIT 1) END,
                           'at', coalesce(s.updated_at, p.created_at)) ORDER BY s.idx),
                       '[]') AS conditions
                FROM (SELECT pr.id, pr.current_step, pr.created_at FROM runs pr
                      WHERE pr.environment_id = e.id AND pr.workflow = 'provision'
                      ORDER BY pr.created_at DESC, pr.id DESC LIMIT 1) p
                JOIN steps s ON s.run_id = p.id
            ) c
            WHERE r.id = $1
            "#,
            run_id
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A page of environments in id order (creation order: ids are UUIDv7), after
    /// `after`. The order is stable while rows are added. Deleted environments
    /// are left out unless the filter includes them or asks for a phase.
    pub async fn list_environments(
        &self,
        filter: &EnvironmentFilter,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Environment>> {
        Ok(sqlx::query_as!(
            Environment,
            r#"
            SELECT e.id, e.name, e.owner, e.template, e.parameters, e.cluster, e.namespace,
                   e.phase AS "phase: EnvironmentPhase", e.url, e.expires_at, e.last_error,
                   e.created_at, e.updated_at, c.conditions AS "conditions!: StepDigests"
            FROM environments e
            -- The same lateral join as `fetch_environment`'s, once per listed row.
            CROSS JOIN LATERAL (
                SELECT coalesce(jsonb_agg(jsonb_build_object(
                           'name', s.name, 'state', s.state, 'attempts', s.attempts,
                           'current', s.idx = p.current_step, 'error', s.error_message,
                           'note', CASE WHEN s.state = 'waiting' THEN (
                               SELECT ev.message FROM events ev
                               WHERE ev.run_id = p.id AND ev.step_idx = s.idx
                                 AND ev.kind = 'step_waiting'
                               ORDER BY ev.id DESC LIMIT 1) END,
                           'at', coalesce(s.updated_at, p.created_at)) ORDER BY s.idx),
                       '[]') AS conditions
                FROM (SELECT pr.id, pr.current_step, pr.created_at FROM runs pr
                      WHERE pr.environment_id = e.id AND pr.workflow = 'provision'
                      ORDER BY pr.created_at DESC, pr.id DESC LIMIT 1) p
                JOIN steps s ON s.run_id = p.id
            ) c
            WHERE ($1::text IS NULL OR e.owner = $1)
              AND ($2::environment_phase IS NULL OR e.phase = $2)
              AND ($3::text IS NULL OR e.template = $3)
              -- Asking for a phase (`deleted` included) is asking to see it.
              AND ($4 OR $2::environment_phase IS NOT NULL OR e.phase <> 'deleted')
              AND ($5::uuid IS NULL OR e.id > $5)
              AND ($7::timestamptz IS NULL
                   OR (e.expires_at <= $7 AND e.teardown_requested_at IS NULL))
            ORDER BY e.id
            LIMIT $6
            "#,
            filter.owner,
            filter.phase as Option<EnvironmentPhase>,
            filter.template,
            filter.include_deleted,
            after,
            limit,
            filter.expires_before,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The environment's most recent run, if any.
    pub async fn latest_run_id(&self, environment_id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar!(
            "SELECT id FROM runs WHERE environment_id = $1 ORDER BY id DESC LIMIT 1",
            environment_id
        )
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// One environment with its conditions, on any connection (the pool, or the
/// transaction that has just created it).
pub(super) async fn fetch_environment<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<Environment>> {
    Ok(sqlx::query_as!(
        Environment,
        r#"
        SELECT e.id, e.name, e.owner, e.template, e.parameters, e.cluster, e.namespace,
               e.phase AS "phase: EnvironmentPhase", e.url, e.expires_at, e.last_error,
               e.created_at, e.updated_at, c.conditions AS "conditions!: StepDigests"
        FROM environments e
        -- Conditions: the steps of the latest provisioning run, each as the
        -- few fields `StepDigest` reads (the rule that makes them conditions
        -- is in Rust). A waiting step's note is its last "not ready yet".
        CROSS JOIN LATERAL (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'name', s.name, 'state', s.state, 'attempts', s.attempts,
                       'current', s.idx = p.current_step, 'error', s.error_message,
                       'note', CASE WHEN s.state = 'waiting' THEN (
                           SELECT ev.message FROM events ev
                           WHERE ev.run_id = p.id AND ev.step_idx = s.idx
                             AND ev.kind = 'step_waiting'
                           ORDER BY ev.id DESC LIMIT 1) END,
                       'at', coalesce(s.updated_at, p.created_at)) ORDER BY s.idx),
                   '[]') AS conditions
            FROM (SELECT pr.id, pr.current_step, pr.created_at FROM runs pr
                  WHERE pr.environment_id = e.id AND pr.workflow = 'provision'
                  ORDER BY pr.created_at DESC, pr.id DESC LIMIT 1) p
            JOIN steps s ON s.run_id = p.id
        ) c
        WHERE e.id = $1
        "#,
        id
    )
    .fetch_optional(executor)
    .await?)
}
