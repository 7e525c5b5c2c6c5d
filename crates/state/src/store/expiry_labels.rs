//! Which namespaces carry an expiry label older than their environment's
//! expiry: an extension moves `expires_at`, and workers carry it to the
//! cluster (worker: `kubernetes::namespace::expiry_labels`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use crate::Result;

impl Store {
    /// Live environments whose namespace was labelled with another expiry
    /// than their own, by id after `after`, at most `limit`. Environments
    /// being torn down are left out: their namespace is going.
    pub async fn expiry_labels_lagging(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar!(
            r#"
            SELECT id FROM environments
            WHERE expiry_labelled <> expires_at
              AND phase NOT IN ('tearing_down', 'deleted')
              AND teardown_requested_at IS NULL
              AND ($1::uuid IS NULL OR id > $1)
            ORDER BY id
            LIMIT $2
            "#,
            after,
            limit,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that environment `id`'s namespace now carries `expires_at` in
    /// its label (the `namespace` step, and workers after an extension).
    pub async fn expiry_labelled(&self, id: Uuid, expires_at: DateTime<Utc>) -> Result<()> {
        sqlx::query!(
            "UPDATE environments SET expiry_labelled = $2 WHERE id = $1",
            id,
            expires_at,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
