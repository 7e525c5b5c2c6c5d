//! Reading environments: one, the one a run works on, and pages of them, each
//! with its conditions (the steps of its latest provisioning run, gathered by
//! the SQL function `environments_conditions` in the same query, once for
//! the whole page, so a page costs one query and one call).

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
    /// Only on this cluster.
    pub cluster: Option<String>,
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
        let environment =
            sqlx::query_scalar!("SELECT environment_id FROM runs WHERE id = $1", run_id)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        match environment {
            Some(id) => fetch_environment(&self.pool, id).await,
            None => Ok(None),
        }
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
            WITH page AS (
                SELECT e.id, e.name, e.owner, e.template, e.parameters, e.cluster,
                       e.namespace, e.phase, e.url, e.expires_at, e.last_error,
                       e.created_at, e.updated_at
                FROM environments e
                WHERE ($1::text IS NULL OR e.owner = $1)
                  AND ($2::environment_phase IS NULL OR e.phase = $2)
                  AND ($3::text IS NULL OR e.template = $3)
                  -- Asking for a phase (`deleted` included) is asking to see it.
                  AND ($4 OR $2::environment_phase IS NOT NULL OR e.phase <> 'deleted')
                  AND ($5::uuid IS NULL OR e.id > $5)
                  AND ($7::timestamptz IS NULL
                       OR (e.expires_at <= $7 AND e.teardown_requested_at IS NULL))
                  AND ($8::text IS NULL OR e.cluster = $8)
                ORDER BY e.id
                LIMIT $6
            )
            SELECT p.id, p.name, p.owner, p.template, p.parameters, p.cluster, p.namespace,
                   p.phase AS "phase: EnvironmentPhase", p.url, p.expires_at, p.last_error,
                   p.created_at, p.updated_at,
                   coalesce(c.conditions, '[]') AS "conditions!: StepDigests"
            FROM page p
            -- The page's conditions with one call, once the page is chosen.
            LEFT JOIN environments_conditions(ARRAY(SELECT id FROM page)) c
                   ON c.environment_id = p.id
            ORDER BY p.id
            "#,
            filter.owner,
            filter.phase as Option<EnvironmentPhase>,
            filter.template,
            filter.include_deleted,
            after,
            limit,
            filter.expires_before,
            filter.cluster,
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
               e.created_at, e.updated_at,
               coalesce(c.conditions, '[]') AS "conditions!: StepDigests"
        FROM environments e
        LEFT JOIN environments_conditions(ARRAY[e.id]) c ON true
        WHERE e.id = $1
        "#,
        id
    )
    .fetch_optional(executor)
    .await?)
}
