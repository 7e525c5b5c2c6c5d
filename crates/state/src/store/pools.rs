//! Warm pools: members taken over by requests in one transaction, and kept
//! at size by the scheduler (see `docs/decisions/0024-warm-pools.md`).
//!
//! A member is an environment owned by `pool:<template>` whose `pool` and
//! `pool_digest` are set and `claimed_at` is not. A claim locks the oldest
//! ready member with `FOR UPDATE SKIP LOCKED`, so two requests never get the
//! same one and neither waits for the other; one that finds none provisions
//! cold and says so in an event.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::admission::Quota;
use super::enqueue::{NewRun, enqueue_with};
use super::environment_insert::name_conflict;
use super::environments::{Accepted, Admission, Idempotency, NewEnvironment};
use crate::workflow::Snapshot;
use crate::{Result, Store};

/// What a request needs to take a member of its template's pool.
#[derive(Debug, Clone)]
pub struct PoolRequest<'a> {
    /// The pool's current digest: only members built from it are taken.
    pub digest: &'a str,
    /// The member's parameters once the request's claimable values are in.
    pub claimed_parameters: Value,
    /// The template's `assign` workflow, which hands the member over.
    pub assign: (&'a Snapshot, i64),
}

impl Store {
    /// Accepts a request that the template's pool can serve: takes its
    /// oldest ready member and starts the `assign` workflow on it, or
    /// provisions cold when none is ready (an `pool_miss` event says so).
    /// Idempotency and limits apply as in
    /// [`Store::request_environment_within`].
    pub async fn request_environment_pooled(
        &self,
        env: &NewEnvironment<'_>,
        provision: (&Snapshot, i64),
        pool: PoolRequest<'_>,
        idempotency: Option<Idempotency<'_>>,
        quota: Option<Quota<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Accepted> {
        let admission = Admission {
            pool: Some(pool),
            idempotency,
            quota,
            audit: None,
        };
        Ok(self
            .admit_environment(env, provision, admission, now)
            .await?
            .accepted)
    }
}

/// Takes the oldest ready member of `env.template`'s pool on `env.cluster`
/// for `env`, in the caller's transaction: it becomes the requester's under
/// the requested name, its TTL starts now, its phase is `provisioning` until
/// the `assign` run succeeds. Returns `(environment, assign run)`, or `None`
/// when no member is ready.
pub(super) async fn claim_member(
    conn: &mut PgConnection,
    env: &NewEnvironment<'_>,
    pool: &PoolRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, Uuid)>> {
    // `created_at` moves to the claim: the template's maximum life counts
    // from when the requester got it, not from when the pool built it.
    let claimed = sqlx::query_scalar!(
        r#"
        WITH member AS (
            SELECT id FROM environments
            WHERE pool = $1 AND cluster = $2 AND pool_digest = $3
              AND claimed_at IS NULL AND phase = 'ready' AND teardown_requested_at IS NULL
              AND expires_at > $8
            ORDER BY created_at, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        ), taken AS (
            UPDATE environments e
            SET owner = $4, name = $5, parameters = $6, expires_at = $7,
                claimed_at = $8, created_at = $8, updated_at = $8, phase = 'provisioning'
            FROM member WHERE e.id = member.id
            RETURNING e.id
        ), counted AS (
            INSERT INTO pool_counters (template, cluster, claims)
            SELECT $1, $2, 1 FROM taken
            ON CONFLICT (template, cluster) DO UPDATE SET claims = pool_counters.claims + 1
        ), logged AS (
            INSERT INTO events (environment_id, kind, actor, message, data, at)
            SELECT id, 'pool_claimed', $4,
                   format('%s took a ready member of pool %s on %s', $4::text, $1::text, $2::text),
                   jsonb_build_object('pool', $1::text, 'cluster', $2::text), $8
            FROM taken
        )
        SELECT id AS "id!" FROM taken
        "#,
        env.template,
        env.cluster,
        pool.digest,
        env.owner,
        env.name,
        pool.claimed_parameters,
        env.expires_at,
        now,
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|err| name_conflict(err, env))?;
    let Some(id) = claimed else {
        return Ok(None);
    };
    let (snapshot, definition_id) = pool.assign;
    let mut run = NewRun::new(
        definition_id,
        snapshot,
        pool.claimed_parameters.clone(),
        env.owner,
        now,
    );
    run.environment_id = Some(id);
    let run_id = enqueue_with(&mut *conn, &run, now).await?;
    Ok(Some((id, run_id)))
}

/// Counts a miss and says on the cold environment why it was not served
/// from the pool.
pub(super) async fn record_miss(
    conn: &mut PgConnection,
    env: &NewEnvironment<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        r#"
        WITH counted AS (
            INSERT INTO pool_counters (template, cluster, misses) VALUES ($1, $2, 1)
            ON CONFLICT (template, cluster) DO UPDATE SET misses = pool_counters.misses + 1
        )
        INSERT INTO events (environment_id, kind, actor, message, data, at)
        VALUES ($3, 'pool_miss', $4,
                format('no ready member in pool %s on %s; provisioning cold', $1::text, $2::text),
                jsonb_build_object('pool', $1::text, 'cluster', $2::text), $5)
        "#,
        env.template,
        env.cluster,
        env.id,
        env.owner,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}
