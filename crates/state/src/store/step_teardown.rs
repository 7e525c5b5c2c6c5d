//! A step that ends its own run asks for its environment's teardown: a denied
//! or expired approval. Unlike [`Store::request_teardown`] it leaves the run
//! alone (the step is about to fail it), so the run ends `failed`, not
//! `cancelled`; the environment stays `tearing_down` through that, and the
//! worker that commits the failure starts the teardown
//! ([`Store::start_due_teardowns`]), or the sweep does.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store};

impl Store {
    /// Marks environment `id` for teardown by `actor` because of `why`, with
    /// the teardown workflow registered last for its template. `false`: it
    /// was marked already, is gone, or its template has no `teardown`
    /// workflow (it is left as its run leaves it). `traceparent`: the
    /// step's trace context, which the teardown run is started with.
    pub async fn mark_teardown_from_step(
        &self,
        id: Uuid,
        actor: &str,
        why: &str,
        now: DateTime<Utc>,
        traceparent: Option<&str>,
    ) -> Result<bool> {
        // The latest registration of the template's teardown is what the
        // running catalog holds, except after a rollback to a file registered
        // before (digests dedupe it): then a newer one may be chosen. Steps
        // have no catalog; see docs/decisions/0016-approvals.md.
        let marked = sqlx::query_scalar!(
            r#"
            WITH teardown AS (
                SELECT d.id FROM workflow_definitions d
                JOIN environments e ON e.template = d.template
                WHERE e.id = $1 AND d.workflow = 'teardown'
                ORDER BY d.id DESC LIMIT 1
            ), marked AS (
                UPDATE environments e
                SET phase = 'tearing_down', teardown_definition_id = t.id,
                    teardown_requested_at = $2, teardown_requested_by = $3,
                    teardown_traceparent = $5, updated_at = $2
                FROM teardown t
                WHERE e.id = $1 AND e.phase NOT IN ('tearing_down', 'deleted')
                RETURNING e.id
            ), logged AS (
                INSERT INTO events (environment_id, kind, actor, message, at)
                SELECT id, 'teardown_requested', $3,
                       format('%s asked for teardown: %s', $3::text, $4::text), $2
                FROM marked
            )
            SELECT id AS "id!" FROM marked
            "#,
            id,
            now,
            actor,
            why,
            traceparent,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(marked.is_some())
    }
}
