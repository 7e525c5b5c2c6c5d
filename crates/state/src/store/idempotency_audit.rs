//! The API benchmark's exactly-once audit: every `Idempotency-Key` the API
//! accepted stands for exactly one environment with exactly one provisioning
//! run, and no environment was created without one.

use crate::{Result, Store};

/// What the audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyAudit {
    /// Idempotency keys stored (one per distinct key the clients sent).
    pub keys: i64,
    /// Environments in the database.
    pub environments: i64,
    /// Up to 100 violations, each naming the key or environment.
    pub violations: Vec<String>,
}

impl Store {
    /// Audits keys against environments and their runs. Meant for a database
    /// in which every environment was created with a key (the benchmark's).
    pub async fn audit_idempotent_creations(&self) -> Result<IdempotencyAudit> {
        let violations = sqlx::query_scalar!(
            r#"
            SELECT problem AS "problem!" FROM (
                SELECT format('key %s of %s: no environment', k.key, k.owner) AS problem
                FROM idempotency_keys k
                LEFT JOIN environments e ON e.id::text = k.response->'environment'->>'id'
                WHERE e.id IS NULL
                UNION ALL
                SELECT format('key %s of %s: %s provisioning runs', k.key, k.owner, count(r.id))
                FROM idempotency_keys k
                LEFT JOIN runs r ON r.environment_id::text = k.response->'environment'->>'id'
                GROUP BY k.owner, k.key
                HAVING count(r.id) <> 1
                UNION ALL
                SELECT format('environment %s (%s of %s): no idempotency key', e.id, e.name, e.owner)
                FROM environments e
                WHERE NOT EXISTS (
                    SELECT 1 FROM idempotency_keys k
                    WHERE k.response->'environment'->>'id' = e.id::text)
            ) AS violations
            ORDER BY 1
            LIMIT 100
            "#
        )
        .fetch_all(&self.pool)
        .await?;
        let counts = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM idempotency_keys) AS "keys!",
                      (SELECT count(*) FROM environments) AS "environments!""#
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(IdempotencyAudit {
            keys: counts.keys,
            environments: counts.environments,
            violations,
        })
    }
}
