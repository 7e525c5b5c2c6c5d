//! Environments: what a request is made of (requested with their
//! provisioning run in one transaction: [`super::environment_requests`]),
//! extended, and torn down once nothing else runs for them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::enqueue::{NewRun, enqueue_with};
pub use super::environment_reads::EnvironmentFilter;
pub use super::environment_requests::{Admission, Admitted};
use super::stop::{lock_environment_runs, stop_environment_runs};
use crate::model::{Environment, EnvironmentPhase};
use crate::{Error, Result, Store};

/// An environment to accept. The caller has validated every field.
#[derive(Debug, Clone)]
pub struct NewEnvironment<'a> {
    /// Its id (UUIDv7, from `new_id`): chosen by the caller, which names the
    /// namespace after it.
    pub id: Uuid,
    /// DNS-1123 label.
    pub name: &'a str,
    /// The requester.
    pub owner: &'a str,
    /// Template name.
    pub template: &'a str,
    /// Target cluster.
    pub cluster: &'a str,
    /// Its namespace on that cluster (a DNS-1123 label).
    pub namespace: &'a str,
    /// The request's W3C trace context, for its provisioning run
    /// ([`NewRun::traceparent`]).
    pub traceparent: Option<&'a str>,
    /// Resolved parameters.
    pub parameters: Value,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// An `Idempotency-Key` and the hash of the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    /// The client's key.
    pub key: &'a str,
    /// Hash of the request body, so a reused key with another body is caught.
    pub request_hash: &'a str,
}

/// The hash an idempotency key is checked against: SHA-256 of the request's
/// canonical JSON (keys sorted), so formatting does not matter.
pub fn request_hash(request: &Value) -> String {
    crate::digest::sha256_hex(request.to_string().as_bytes())
}

/// The answer to an environment request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The environment as created.
    pub environment: serde_json::Value,
    /// Its provisioning run.
    pub run_id: Uuid,
}

/// What a teardown request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeardownRequest {
    /// The teardown run was enqueued now.
    Started(Uuid),
    /// A run was still active (it was asked to cancel); the teardown starts when it
    /// has stopped.
    Waiting,
    /// Teardown had been requested before, or the environment is gone: nothing to do.
    AlreadyRequested,
}

impl Store {
    /// Moves `expires_at`; the caller has checked it against the template's
    /// maximum. Refused once teardown was requested, and after
    /// `max_extensions` extensions when the template sets one.
    pub async fn extend_environment(
        &self,
        id: Uuid,
        expires_at: DateTime<Utc>,
        max_extensions: Option<u32>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Environment> {
        let max_extensions = max_extensions.map(i64::from);
        let updated = sqlx::query_scalar!(
            r#"
            WITH moved AS (
                UPDATE environments SET expires_at = $2, updated_at = $3,
                                        extensions = extensions + 1
                WHERE id = $1 AND phase NOT IN ('tearing_down', 'deleted')
                  AND teardown_requested_at IS NULL
                  AND ($5::bigint IS NULL OR extensions < $5)
                RETURNING id, extensions
            ), logged AS (
                INSERT INTO events (environment_id, kind, actor, message, data, at)
                SELECT id, 'environment_extended', $4,
                       format('%s extended the environment to %s', $4::text, $2::timestamptz),
                       jsonb_build_object('expires_at', $2::timestamptz, 'extensions', extensions), $3
                FROM moved
            )
            SELECT id FROM moved
            "#,
            id,
            expires_at,
            now,
            actor,
            max_extensions,
        )
        .fetch_optional(&self.pool)
        .await?;
        if updated.is_none() {
            let env = self.environment(id).await?;
            if matches!(
                env.phase,
                EnvironmentPhase::TearingDown | EnvironmentPhase::Deleted
            ) || self.teardown_requested(id).await?
            {
                return Err(Error::Conflict {
                    field: "phase".to_owned(),
                    rule: format!(
                        "environment {id} is {}; only live environments can be extended",
                        env.phase
                    ),
                });
            }
            return Err(Error::Conflict {
                field: "extensions".to_owned(),
                rule: format!(
                    "environment {id} was extended {} times already, the most its template allows",
                    max_extensions.unwrap_or_default()
                ),
            });
        }
        // Schedulers sleep until the next expiry; it moved. Lost, it costs a
        // sweep interval at most.
        sqlx::query!("SELECT pg_notify('hubwright_expiry', '')")
            .execute(&self.pool)
            .await?;
        self.environment(id).await
    }

    async fn teardown_requested(&self, id: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar!(
            r#"SELECT teardown_requested_at IS NOT NULL AS "requested!" FROM environments WHERE id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(false))
    }

    /// Asks for an environment's teardown: marks it `tearing_down`, cancels its
    /// active run if any (a step in flight stops at its boundary), and starts the
    /// teardown now when nothing else runs. A second request changes nothing.
    /// `traceparent`: the asking request's trace context, which the teardown
    /// run is started with, now or when the running run stops.
    pub async fn request_teardown(
        &self,
        id: Uuid,
        teardown_definition_id: i64,
        actor: &str,
        now: DateTime<Utc>,
        traceparent: Option<&str>,
    ) -> Result<TeardownRequest> {
        let mut tx = self.pool.begin().await?;
        lock_environment_runs(&mut *tx, &[id]).await?;
        let marked = sqlx::query_scalar!(
            r#"
            WITH marked AS (
                UPDATE environments
                SET phase = 'tearing_down', teardown_definition_id = $2,
                    teardown_requested_at = $3, teardown_requested_by = $4,
                    teardown_traceparent = $5, updated_at = $3
                WHERE id = $1 AND phase NOT IN ('tearing_down', 'deleted')
                RETURNING id
            ), logged AS (
                INSERT INTO events (environment_id, kind, actor, message, at)
                SELECT id, 'teardown_requested', $4, format('%s asked for teardown', $4::text), $3
                FROM marked
            )
            SELECT id AS "id!" FROM marked
            "#,
            id,
            teardown_definition_id,
            now,
            actor,
            traceparent,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if marked.is_none() {
            tx.rollback().await?;
            self.environment(id).await?;
            return Ok(TeardownRequest::AlreadyRequested);
        }
        let reason = format!("{actor} asked for teardown; the run stops");
        stop_environment_runs(&mut *tx, &[id], actor, &reason, now).await?;
        tx.commit().await?;
        Ok(match self.start_teardown(id, now).await? {
            Some(run_id) => TeardownRequest::Started(run_id),
            None => TeardownRequest::Waiting,
        })
    }

    /// Starts the teardown of an environment marked `tearing_down` if nothing
    /// else runs for it and it has not started yet. Safe to call from many
    /// processes: the unique index on active runs per environment admits one.
    pub async fn start_teardown(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<Uuid>> {
        let mut tx = self.pool.begin().await?;
        let due = sqlx::query!(
            r#"
            SELECT e.teardown_definition_id AS "definition_id!", e.teardown_requested_by AS "actor!",
                   e.parameters, e.teardown_traceparent
            FROM environments e
            WHERE e.id = $1 AND e.phase = 'tearing_down'
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.environment_id = e.id
                              AND r.state IN ('pending', 'waiting', 'running'))
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.environment_id = e.id
                              AND workflow_of(r.definition_id) = 'teardown' AND r.created_at >= e.teardown_requested_at)
            FOR UPDATE OF e SKIP LOCKED
            "#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(due) = due else {
            return Ok(None);
        };
        let snapshot = self.definition(due.definition_id).await?;
        let mut run = NewRun::new(
            due.definition_id,
            &snapshot,
            due.parameters,
            &due.actor,
            now,
        );
        run.environment_id = Some(id);
        // In the trace of whatever asked for the teardown, however much
        // later it starts.
        run.traceparent = due.teardown_traceparent.as_deref();
        let run_id = enqueue_with(&mut *tx, &run, now).await?;
        tx.commit().await?;
        Ok(Some(run_id))
    }

    /// Starts every teardown that is due (its environment's other runs have
    /// stopped). Returns how many started. The periodic sweep calls this.
    pub async fn start_due_teardowns(&self, now: DateTime<Utc>) -> Result<usize> {
        let waiting = sqlx::query_scalar!(
            r#"
            SELECT e.id FROM environments e
            WHERE e.phase = 'tearing_down'
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.environment_id = e.id
                              AND r.state IN ('pending', 'waiting', 'running'))
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.environment_id = e.id
                              AND workflow_of(r.definition_id) = 'teardown' AND r.created_at >= e.teardown_requested_at)
            ORDER BY e.teardown_requested_at
            LIMIT 100
            "#
        )
        .fetch_all(&self.pool)
        .await?;
        let mut started = 0;
        for id in waiting {
            if self.start_teardown(id, now).await?.is_some() {
                started += 1;
            }
        }
        Ok(started)
    }
}
