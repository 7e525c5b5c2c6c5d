//! Workflow definition snapshots, immutable and deduplicated by digest.

use crate::workflow::Snapshot;
use crate::{Result, Store};

impl Store {
    /// Stores `snapshot` unless an identical one exists, and returns its id.
    pub async fn register_definition(&self, snapshot: &Snapshot) -> Result<i64> {
        let digest = snapshot.digest();
        // The no-op DO UPDATE makes RETURNING yield the existing row's id too.
        let id = sqlx::query_scalar!(
            r#"
            INSERT INTO workflow_definitions (template, workflow, digest, definition)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT ON CONSTRAINT workflow_definitions_digest_key
                DO UPDATE SET digest = EXCLUDED.digest
            RETURNING id
            "#,
            snapshot.template,
            snapshot.workflow,
            digest,
            snapshot.to_json(),
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// The snapshot stored under `id`.
    pub async fn definition(&self, id: i64) -> Result<Snapshot> {
        let definition = sqlx::query_scalar!(
            "SELECT definition FROM workflow_definitions WHERE id = $1",
            id
        )
        .fetch_one(&self.pool)
        .await?;
        serde_json::from_value(definition).map_err(|err| crate::Error::Invalid {
            field: format!("workflow_definitions[{id}]"),
            rule: format!("stored definition does not parse: {err}"),
        })
    }

    /// How many environments not yet deleted each of `templates` has, for
    /// those that have any, by name. A template reload must not take a
    /// template, or its teardown, away from environments that still need it.
    pub async fn live_environments_of(&self, templates: &[String]) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query!(
            r#"
            SELECT template, count(*) AS "live!"
            FROM environments
            WHERE template = ANY($1) AND phase <> 'deleted'
            GROUP BY template
            ORDER BY template
            "#,
            templates,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.template, row.live))
            .collect())
    }
}
