//! Environments: requested with their provisioning run in one transaction,
//! listed, extended, and torn down once nothing else runs for them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::admission::{Quota, admit};
use super::audit::{AuditRecord, insert_audit};
use super::enqueue::{NewRun, enqueue_with};
use super::environment_insert::insert_environment;
pub use super::environment_reads::EnvironmentFilter;
use super::environment_reads::fetch_environment;
use super::pools::{PoolRequest, claim_member, record_miss};
use super::stop::stop_environment_runs;
use crate::model::{Environment, EnvironmentPhase};
use crate::workflow::Snapshot;
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

/// What a request is accepted under besides the environment and its
/// provisioning workflow; every part is optional.
#[derive(Debug, Clone, Default)]
pub struct Admission<'a> {
    /// Take a ready member of the template's pool when there is one.
    pub pool: Option<PoolRequest<'a>>,
    /// The client's `Idempotency-Key`.
    pub idempotency: Option<Idempotency<'a>>,
    /// The owner's limits.
    pub quota: Option<Quota<'a>>,
    /// The creation's audit record, committed in the creation's transaction
    /// (its target id becomes the environment's). A replay writes none.
    pub audit: Option<&'a AuditRecord>,
}

/// What [`Store::admit_environment`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// The answer.
    pub accepted: Accepted,
    /// The answer is the stored one of an earlier request with the same
    /// idempotency key: nothing was written now, no audit record either.
    pub replayed: bool,
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
    /// Accepts an environment and enqueues its provisioning run, atomically: when
    /// this returns, both are committed and a worker has been woken.
    ///
    /// With an idempotency key, the answer is stored in the same transaction: a
    /// repeat with the same key and request gets the stored answer (even while
    /// the first is still being committed: it waits for it), and a repeat with
    /// another request is an [`Error::Conflict`] on `Idempotency-Key`.
    pub async fn request_environment(
        &self,
        env: &NewEnvironment<'_>,
        provision: (&Snapshot, i64),
        idempotency: Option<Idempotency<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Accepted> {
        self.request_environment_within(env, provision, idempotency, None, now)
            .await
    }

    /// [`Store::request_environment`] within `quota`: the owner's live
    /// environments are counted under a lock per owner in the same
    /// transaction as the insert, so concurrent requests cannot both take
    /// the last slot; past a limit it is [`Error::LimitExceeded`] and nothing
    /// is stored. A replayed idempotent request is not counted again.
    pub async fn request_environment_within(
        &self,
        env: &NewEnvironment<'_>,
        provision: (&Snapshot, i64),
        idempotency: Option<Idempotency<'_>>,
        quota: Option<Quota<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Accepted> {
        let admission = Admission {
            idempotency,
            quota,
            ..Admission::default()
        };
        Ok(self
            .admit_environment(env, provision, admission, now)
            .await?
            .accepted)
    }

    /// Accepts a request under `admission`: with a pool, takes a ready member
    /// when there is one (see [`super::pools`]), otherwise provisions cold;
    /// idempotency and limits as [`Store::request_environment_within`]
    /// says; the audit record in the same commit. One transaction, one
    /// commit (docs/decisions/0026-api-throughput.md counts its statements).
    pub async fn admit_environment(
        &self,
        env: &NewEnvironment<'_>,
        provision: (&Snapshot, i64),
        admission: Admission<'_>,
        now: DateTime<Utc>,
    ) -> Result<Admitted> {
        let Admission {
            pool,
            idempotency,
            quota,
            audit,
        } = admission;
        let mut tx = self.pool.begin().await?;
        if let Some(idem) = idempotency {
            // Claims the key; a concurrent duplicate blocks here until the first
            // commits, then finds the row and replays it.
            let claimed = sqlx::query_scalar!(
                r#"INSERT INTO idempotency_keys (owner, key, request_hash, response, created_at)
                   VALUES ($1, $2, $3, 'null', $4)
                   ON CONFLICT (owner, key) DO NOTHING
                   RETURNING key"#,
                env.owner,
                idem.key,
                idem.request_hash,
                now,
            )
            .fetch_optional(&mut *tx)
            .await?;
            if claimed.is_none() {
                tx.rollback().await?;
                return Ok(Admitted {
                    accepted: self.replay(env.owner, idem).await?,
                    replayed: true,
                });
            }
        }
        if let Some(quota) = quota {
            admit(&mut tx, env.owner, quota).await?;
        }
        let claimed = match &pool {
            Some(pool) => claim_member(&mut tx, env, pool, now).await?,
            None => None,
        };
        let (id, run_id) = match claimed {
            Some(claimed) => claimed,
            None => {
                insert_environment(&mut tx, env, now).await?;
                let (snapshot, definition_id) = provision;
                let mut run = NewRun::new(
                    definition_id,
                    snapshot,
                    env.parameters.clone(),
                    env.owner,
                    now,
                );
                run.environment_id = Some(env.id);
                run.traceparent = env.traceparent;
                let run_id = enqueue_with(&mut *tx, &run, now).await?;
                if pool.is_some() {
                    record_miss(&mut tx, env, now).await?;
                }
                (env.id, run_id)
            }
        };
        // Read back with its run in place, so the answer carries its conditions.
        let environment = fetch_environment(&mut *tx, id)
            .await?
            .ok_or(Error::EnvironmentNotFound(id))?;
        let accepted = Accepted {
            environment: serde_json::to_value(&environment).unwrap_or(Value::Null),
            run_id,
        };
        // The stored answer (with a key) and the schedulers' wake-up (they
        // sleep until the next expiry; this one may be sooner) in one statement.
        let answer = idempotency.map(|_| serde_json::to_value(&accepted).unwrap_or(Value::Null));
        sqlx::query!(
            r#"WITH answer AS (
                   UPDATE idempotency_keys SET response = $3
                   WHERE $2::text IS NOT NULL AND owner = $1 AND key = $2
               )
               SELECT pg_notify('hubwright_expiry', '')"#,
            env.owner,
            idempotency.map(|idem| idem.key),
            answer,
        )
        .execute(&mut *tx)
        .await?;
        if let Some(record) = audit {
            let mut record = record.clone();
            record.target_id = Some(id.to_string());
            insert_audit(&mut *tx, &record).await?;
        }
        tx.commit().await?;
        Ok(Admitted {
            accepted,
            replayed: false,
        })
    }

    async fn replay(&self, owner: &str, idem: Idempotency<'_>) -> Result<Accepted> {
        let stored = sqlx::query!(
            "SELECT request_hash, response FROM idempotency_keys WHERE owner = $1 AND key = $2",
            owner,
            idem.key,
        )
        .fetch_one(&self.pool)
        .await?;
        if stored.request_hash != idem.request_hash {
            return Err(Error::Invalid {
                field: "Idempotency-Key".to_owned(),
                rule: "was used before with a different request; use a new key".to_owned(),
            });
        }
        serde_json::from_value(stored.response).map_err(|err| Error::Invalid {
            field: "Idempotency-Key".to_owned(),
            rule: format!("the stored answer does not parse: {err}"),
        })
    }

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
    pub async fn request_teardown(
        &self,
        id: Uuid,
        teardown_definition_id: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<TeardownRequest> {
        let mut tx = self.pool.begin().await?;
        let marked = sqlx::query_scalar!(
            r#"
            WITH marked AS (
                UPDATE environments
                SET phase = 'tearing_down', teardown_definition_id = $2,
                    teardown_requested_at = $3, teardown_requested_by = $4, updated_at = $3
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
                   e.parameters
            FROM environments e
            WHERE e.id = $1 AND e.phase = 'tearing_down'
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.environment_id = e.id
                              AND r.state IN ('pending', 'waiting', 'running'))
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.environment_id = e.id
                              AND r.workflow = 'teardown' AND r.created_at >= e.teardown_requested_at)
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
                              AND r.workflow = 'teardown' AND r.created_at >= e.teardown_requested_at)
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
