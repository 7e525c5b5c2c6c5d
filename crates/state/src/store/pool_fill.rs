//! Keeping a warm pool at its size: members built from an older template
//! and failed ones are torn down, and new ones provisioned through the
//! template's own `provision` workflow until the pool has `size` members
//! ready or on their way. What operators see of a pool is read here too.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::enqueue::{NewRun, enqueue_with, new_id};
use super::stop::stop_environment_runs;
use crate::workflow::{Snapshot, Template, is_dns_label, pool_owner};
use crate::{Error, Result, Store};

/// Who the pool's own actions are attributed to in events.
pub const POOL_ACTOR: &str = "pool";

/// One pool on one cluster, as the scheduler keeps it.
#[derive(Debug, Clone)]
pub struct PoolTarget<'a> {
    /// The template that declares the pool.
    pub template: &'a Template,
    /// The cluster the members live on.
    pub cluster: &'a str,
    /// Members to keep, ready or on their way.
    pub size: u32,
    /// The template's pool digest; members of another are recycled.
    pub digest: &'a str,
    /// The members' parameters.
    pub parameters: Value,
    /// How long a member may wait unclaimed: its TTL, so the expiry
    /// scheduler tears it down and the next fill replaces it.
    pub max_idle: chrono::Duration,
    /// The template's `provision` workflow, registered.
    pub provision: (&'a Snapshot, i64),
    /// The template's `teardown` workflow's registered id.
    pub teardown_definition_id: i64,
}

/// What one fill did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolFill {
    /// Members torn down: stale digest, failed or cancelled.
    pub recycled: Vec<Uuid>,
    /// Members whose provisioning started.
    pub started: Vec<Uuid>,
    /// Members keep failing: none is started before this
    /// ([`POOL_BACKOFF_FIRST`], doubling to [`POOL_BACKOFF_MAX`]).
    pub paused_until: Option<DateTime<Utc>>,
}

/// How long a pool waits after its first failed member before starting
/// another; each further failure doubles it.
pub const POOL_BACKOFF_FIRST: std::time::Duration = std::time::Duration::from_secs(30);

/// The longest a failing pool waits between members.
pub const POOL_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(30 * 60);

impl Store {
    /// Brings one pool to its size. Safe from many schedulers at once: a
    /// lock per pool and cluster makes them take turns, and each counts
    /// what the one before it committed.
    pub async fn fill_pool(&self, target: &PoolTarget<'_>, now: DateTime<Utc>) -> Result<PoolFill> {
        let template = &target.template.name;
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtext('hubwright.pools'), hashtext($1 || '/' || $2))",
            template,
            target.cluster,
        )
        .execute(&mut *tx)
        .await?;
        // The active runs of members about to be recycled (only a member of
        // an older template can have one), locked before the members
        // (`lock_environment_runs` says why).
        sqlx::query_scalar!(
            r#"
            SELECT r.id
            FROM runs r JOIN environments e ON e.id = r.environment_id
            WHERE e.pool = $1 AND e.cluster = $2 AND e.claimed_at IS NULL
              AND e.phase NOT IN ('tearing_down', 'deleted') AND e.pool_digest <> $3
              AND r.state IN ('pending', 'waiting', 'running')
            ORDER BY r.id
            FOR UPDATE OF r
            "#,
            template,
            target.cluster,
            target.digest,
        )
        .fetch_all(&mut *tx)
        .await?;
        let recycled = sqlx::query!(
            r#"
            WITH stale AS (
                SELECT id, CASE WHEN pool_digest <> $3 THEN 'its template changed'
                                ELSE format('it is %s', phase) END AS why,
                       pool_digest = $3 AND phase = 'failed' AS failed
                FROM environments
                WHERE pool = $1 AND cluster = $2 AND claimed_at IS NULL
                  AND phase NOT IN ('tearing_down', 'deleted')
                  AND (pool_digest <> $3 OR phase IN ('failed', 'cancelled'))
                FOR UPDATE
            ), marked AS (
                UPDATE environments e
                SET phase = 'tearing_down', teardown_definition_id = $4,
                    teardown_requested_at = $5, teardown_requested_by = $6, updated_at = $5
                FROM stale WHERE e.id = stale.id
                RETURNING e.id, stale.why, stale.failed
            ), logged AS (
                INSERT INTO events (environment_id, kind, actor, message, at)
                SELECT id, 'pool_recycled', $6, format('pool member recycled: %s', why), $5
                FROM marked
            )
            SELECT id AS "id!", failed AS "failed!" FROM marked
            "#,
            template,
            target.cluster,
            target.digest,
            target.teardown_definition_id,
            now,
            POOL_ACTOR,
        )
        .fetch_all(&mut *tx)
        .await?;
        let failed = recycled.iter().filter(|member| member.failed).count();
        let recycled: Vec<Uuid> = recycled.into_iter().map(|member| member.id).collect();
        let paused_until = backoff(&mut tx, target, failed, now).await?;
        if !recycled.is_empty() {
            let reason = "the pool recycles this member; the run stops";
            stop_environment_runs(&mut *tx, &recycled, POOL_ACTOR, reason, now).await?;
        }
        let live = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM environments
               WHERE pool = $1 AND cluster = $2 AND claimed_at IS NULL
                 AND phase NOT IN ('tearing_down', 'deleted', 'failed', 'cancelled')"#,
            template,
            target.cluster,
        )
        .fetch_one(&mut *tx)
        .await?;
        let missing = match paused_until {
            Some(_) => 0,
            None => i64::from(target.size).saturating_sub(live).max(0),
        };
        let mut started = Vec::new();
        for _ in 0..missing {
            started.push(add_member(&mut tx, target, now).await?);
        }
        if !started.is_empty() {
            // Schedulers sleep until the next expiry; members expire too.
            sqlx::query!("SELECT pg_notify('hubwright_expiry', '')")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        for id in &recycled {
            self.start_teardown(*id, now).await?;
        }
        Ok(PoolFill {
            recycled,
            started,
            paused_until,
        })
    }
}

/// Counts `failed` new failures of the pool's members and says until when
/// it waits, if it does: a member made since the last failure that is ready
/// ends the wait, and each failure doubles it from [`POOL_BACKOFF_FIRST`] up
/// to [`POOL_BACKOFF_MAX`].
async fn backoff(
    conn: &mut sqlx::PgConnection,
    target: &PoolTarget<'_>,
    failed: usize,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let template = &target.template.name;
    if failed > 0 {
        let failures = sqlx::query_scalar!(
            r#"INSERT INTO pool_backoff AS b (template, cluster, failures, last_failure_at,
                                              next_fill_at)
               VALUES ($1, $2, $3, $4, $4)
               ON CONFLICT (template, cluster) DO UPDATE
               SET failures = b.failures + $3, last_failure_at = $4
               RETURNING failures"#,
            template,
            target.cluster,
            i32::try_from(failed).unwrap_or(i32::MAX),
            now,
        )
        .fetch_one(&mut *conn)
        .await?;
        let wait =
            chrono::Duration::from_std(pool_backoff(failures)).unwrap_or(chrono::Duration::MAX);
        sqlx::query!(
            "UPDATE pool_backoff SET next_fill_at = $3 WHERE template = $1 AND cluster = $2",
            template,
            target.cluster,
            now + wait,
        )
        .execute(&mut *conn)
        .await?;
    }
    // The row as this fill leaves it: gone when a member made since the last
    // failure is ready (the statement's own DELETE is not visible to its
    // SELECT, hence the NOT EXISTS).
    Ok(sqlx::query_scalar!(
        r#"WITH recovered AS (
               DELETE FROM pool_backoff b
               WHERE b.template = $1 AND b.cluster = $2
                 AND EXISTS (SELECT FROM environments e
                             WHERE e.pool = $1 AND e.cluster = $2 AND e.phase = 'ready'
                               AND e.created_at > b.last_failure_at)
               RETURNING 1
           )
           SELECT next_fill_at FROM pool_backoff
           WHERE template = $1 AND cluster = $2 AND next_fill_at > $3
             AND NOT EXISTS (SELECT FROM recovered)"#,
        template,
        target.cluster,
        now,
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// How long a pool waits after its `failures`-th failure in a row:
/// [`POOL_BACKOFF_FIRST`], doubling with each failure, at most
/// [`POOL_BACKOFF_MAX`].
fn pool_backoff(failures: i32) -> std::time::Duration {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    POOL_BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(POOL_BACKOFF_MAX)
}

/// Inserts one member and its provisioning run.
async fn add_member(
    conn: &mut sqlx::PgConnection,
    target: &PoolTarget<'_>,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    let id = new_id();
    let hex = id.simple().to_string();
    let name = format!("pool-{}", &hex[hex.len() - 8..]);
    let namespace = target.template.namespace_for(&name, id);
    if !is_dns_label(&namespace, 63) {
        return Err(Error::Invalid {
            field: "namespace".to_owned(),
            rule: format!(
                "template `{}` makes namespace `{namespace}` for a pool member, not a DNS-1123 label",
                target.template.name
            ),
        });
    }
    let owner = pool_owner(&target.template.name);
    sqlx::query!(
        r#"
        WITH member AS (
            INSERT INTO environments (id, name, owner, template, parameters, cluster, namespace,
                                      expires_at, created_at, updated_at, pool, pool_digest)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $4, $10)
            RETURNING id
        )
        INSERT INTO events (environment_id, kind, actor, message, at)
        SELECT id, 'pool_member_requested', $11, 'the pool provisions a member ahead of requests', $9
        FROM member
        "#,
        id,
        name,
        owner,
        target.template.name,
        target.parameters,
        target.cluster,
        namespace,
        now + target.max_idle,
        now,
        target.digest,
        POOL_ACTOR,
    )
    .execute(&mut *conn)
    .await?;
    let (snapshot, definition_id) = target.provision;
    let mut run = NewRun::new(
        definition_id,
        snapshot,
        target.parameters.clone(),
        POOL_ACTOR,
        now,
    );
    run.environment_id = Some(id);
    enqueue_with(&mut *conn, &run, now).await?;
    Ok(id)
}

/// What operators see of one pool on one cluster.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PoolStats {
    /// The template that declares the pool.
    pub template: String,
    /// The cluster its members live on.
    pub cluster: String,
    /// Members it keeps, ready or on their way.
    pub size: u32,
    /// Members ready to be claimed (of the current digest).
    pub ready: i64,
    /// Members being provisioned.
    pub provisioning: i64,
    /// Members that failed and wait to be recycled.
    pub failed: i64,
    /// Members being torn down (recycled or past their idle time).
    pub tearing_down: i64,
    /// Requests that took a member, ever.
    pub claims: i64,
    /// Requests the pool could serve that found no ready member, ever.
    pub misses: i64,
    /// Average age in seconds of the ready members (0 without any).
    pub average_age_seconds: f64,
}

impl Store {
    /// The figures of `template`'s pool on `cluster`, which keeps `size`
    /// members of `digest`.
    pub async fn pool_stats(
        &self,
        template: &str,
        cluster: &str,
        size: u32,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<PoolStats> {
        let row = sqlx::query!(
            r#"
            SELECT
                count(*) FILTER (WHERE e.phase = 'ready' AND e.pool_digest = $3) AS "ready!",
                count(*) FILTER (WHERE e.phase IN ('requested', 'provisioning')) AS "provisioning!",
                count(*) FILTER (WHERE e.phase IN ('failed', 'cancelled')) AS "failed!",
                count(*) FILTER (WHERE e.phase = 'tearing_down') AS "tearing_down!",
                coalesce(extract(epoch FROM avg($4 - e.created_at)
                         FILTER (WHERE e.phase = 'ready' AND e.pool_digest = $3))::float8, 0)
                    AS "average_age!",
                coalesce((SELECT c.claims FROM pool_counters c
                          WHERE c.template = $1 AND c.cluster = $2), 0) AS "claims!",
                coalesce((SELECT c.misses FROM pool_counters c
                          WHERE c.template = $1 AND c.cluster = $2), 0) AS "misses!"
            FROM environments e
            WHERE e.pool = $1 AND e.cluster = $2 AND e.claimed_at IS NULL AND e.phase <> 'deleted'
            "#,
            template,
            cluster,
            digest,
            now,
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(PoolStats {
            template: template.to_owned(),
            cluster: cluster.to_owned(),
            size,
            ready: row.ready,
            provisioning: row.provisioning,
            failed: row.failed,
            tearing_down: row.tearing_down,
            claims: row.claims,
            misses: row.misses,
            average_age_seconds: row.average_age,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_the_first_to_the_most() {
        assert_eq!(pool_backoff(1), POOL_BACKOFF_FIRST);
        assert_eq!(pool_backoff(2), POOL_BACKOFF_FIRST * 2);
        assert_eq!(pool_backoff(3), POOL_BACKOFF_FIRST * 4);
        assert_eq!(
            pool_backoff(7),
            POOL_BACKOFF_MAX,
            "30s doubled 6 times is past 30m"
        );
        assert_eq!(pool_backoff(i32::MAX), POOL_BACKOFF_MAX);
        assert_eq!(
            pool_backoff(0),
            POOL_BACKOFF_FIRST,
            "never less than the first"
        );
    }
}
