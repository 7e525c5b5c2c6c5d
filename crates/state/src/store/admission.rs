//! Limits checked where they cannot race: an owner's live environments are
//! counted and the new one inserted in one transaction, under a lock per
//! owner, so two requests for the last slot cannot both take it.

use serde_json::Value;
use sqlx::PgConnection;

use crate::policy::{Counting, Demand, EffectiveLimits, Usage};
use crate::{Error, Result, Store};

/// The limits one request is admitted under.
#[derive(Debug, Clone, Copy)]
pub struct Quota<'a> {
    /// The owner's limits.
    pub limits: &'a EffectiveLimits,
    /// How to count what live environments take.
    pub counting: &'a Counting,
    /// What the new environment takes.
    pub demand: &'a Demand,
}

/// `(template, parameters)` of `owner`'s live environments: every phase but
/// `tearing_down` and `deleted` (a delete frees the slot at once).
async fn live(conn: &mut PgConnection, owner: &str) -> Result<Vec<(String, Value)>> {
    Ok(sqlx::query!(
        r#"SELECT template, parameters FROM environments
           WHERE owner = $1 AND phase NOT IN ('tearing_down', 'deleted')"#,
        owner
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row| (row.template, row.parameters))
    .collect())
}

/// Takes the owner's lock (until the transaction ends), counts, and refuses
/// with [`Error::LimitExceeded`] when the new environment does not fit; when
/// no limit bounds it, does neither.
pub(super) async fn admit(conn: &mut PgConnection, owner: &str, quota: Quota<'_>) -> Result<()> {
    // No limit could refuse it: nothing to count, and no lock to wait for.
    if !quota.limits.may_refuse(quota.demand) {
        return Ok(());
    }
    // Two keys: the first keeps these locks apart from any other advisory
    // lock. A hash collision between owners only makes them wait for each
    // other. Read committed: the count below sees every insert committed
    // by whoever held the lock before.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtext('hubwright.environments'), hashtext($1))",
        owner
    )
    .execute(&mut *conn)
    .await?;
    let environments = live(conn, owner).await?;
    let usage = quota
        .counting
        .usage(environments.iter().map(|(t, p)| (t.as_str(), p)));
    match quota.limits.breach(&usage, quota.demand) {
        Some(breach) => Err(Error::LimitExceeded(Box::new(breach))),
        None => Ok(()),
    }
}

impl Store {
    /// What `owner`'s live environments take, counted as `counting` says.
    pub async fn usage(&self, owner: &str, counting: &Counting) -> Result<Usage> {
        let mut conn = self.pool.acquire().await?;
        let environments = live(&mut conn, owner).await?;
        Ok(counting.usage(environments.iter().map(|(t, p)| (t.as_str(), p))))
    }
}

impl Store {
    /// How many times environment `id` was extended.
    pub async fn extensions(&self, id: uuid::Uuid) -> Result<i64> {
        sqlx::query_scalar!(
            "SELECT extensions::bigint AS \"n!\" FROM environments WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::EnvironmentNotFound(id))
    }
}
