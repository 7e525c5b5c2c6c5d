//! Requesting an environment: accepted with its provisioning run (or a
//! pool member's hand-over), its idempotency key's answer and its audit
//! record in one commit, under the owner's limits
//! (docs/decisions/0026-api-throughput.md and 0027 count its statements).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::admission::{Quota, admit};
use super::audit::AuditRecord;
use super::audit_insert::insert_audit;
use super::enqueue::{NewRun, enqueue_with};
use super::environment_insert::insert_environment;
use super::environment_reads::fetch_environment;
use super::environments::{Accepted, Idempotency, NewEnvironment};
use super::pools::{PoolRequest, claim_member, record_miss};
use crate::workflow::Snapshot;
use crate::{Error, Result, Store};

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

impl Store {
    /// Accepts an environment and enqueues its provisioning run, atomically: when
    /// this returns, both are committed and a worker's wake-up is sent or on
    /// its way (docs/decisions/0027-a-creation-is-one-statement.md).
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
    /// says; the audit record in the same commit. Without a pool or a limit
    /// that could refuse it, one statement (`cold_request`); otherwise one
    /// transaction (docs/decisions/0026-api-throughput.md counts its
    /// statements). One commit either way.
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
        // Without a pool to try or a limit that could refuse, nothing needs a
        // transaction block: one statement accepts it.
        let nothing_can_refuse = quota.is_none_or(|quota| !quota.limits.may_refuse(quota.demand));
        if pool.is_none() && nothing_can_refuse {
            return match self
                .admit_cold(env, provision, idempotency, audit, now)
                .await?
            {
                Some(accepted) => Ok(Admitted {
                    accepted,
                    replayed: false,
                }),
                None => match idempotency {
                    Some(idem) => Ok(Admitted {
                        accepted: self.replay(env.owner, idem).await?,
                        replayed: true,
                    }),
                    // Without a key the statement always inserts or fails.
                    None => Err(Error::Database(sqlx::Error::RowNotFound)),
                },
            };
        }
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
}
