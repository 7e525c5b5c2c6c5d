//! What waits on an operator or has overrun its time, for the gauges the API
//! exports at scrape time and the alerts built on them: approvals nobody has
//! decided, and environments past their expiry that are not gone.

use chrono::{DateTime, Utc};

use crate::{Result, Store};

/// Counts an operator is alerted on, at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attention {
    /// Approvals waiting for a decision.
    pub approvals_pending: i64,
    /// Environments whose expiry has passed and which are not deleted yet:
    /// their teardown has not been requested, is under way, or failed.
    pub past_expiry: i64,
    /// How long ago the longest-overdue of them expired, in seconds; 0 when
    /// there is none.
    pub oldest_past_expiry_seconds: f64,
}

impl Store {
    /// [`Attention`] at `now`. Both counts walk partial indexes
    /// (`approvals_pending`, `environments_expiry`) over the few rows that
    /// match, not the tables.
    pub async fn attention(&self, now: DateTime<Utc>) -> Result<Attention> {
        let row = sqlx::query!(
            r#"
            SELECT (SELECT count(*) FROM approvals WHERE state = 'pending') AS "approvals!",
                   count(*) AS "past_expiry!",
                   coalesce(extract(epoch FROM $1 - min(e.expires_at)), 0)::float8 AS "oldest!"
            FROM environments e
            WHERE e.phase <> 'deleted' AND e.expires_at <= $1
            "#,
            now
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Attention {
            approvals_pending: row.approvals,
            past_expiry: row.past_expiry,
            oldest_past_expiry_seconds: row.oldest,
        })
    }
}
