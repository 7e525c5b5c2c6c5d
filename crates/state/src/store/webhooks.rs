//! The webhook outbox: lifecycle events read from `events` behind a cursor per
//! endpoint (`webhook_cursors`), under the cursor row's lock so one scheduler
//! replica delivers at a time, in order, and the cursor moves only past what
//! was delivered.
//!
//! Identity ids are handed out before commit, so an event with a smaller id
//! can become visible after a larger one. Events are read only once they are
//! older than a settle time; the transactions that write them are short, so a
//! few seconds covers the gap.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::Store;
use crate::Result;

/// The event kinds webhooks carry.
pub const WEBHOOK_KINDS: &[&str] = &["expiry_warning", "environment_expired", "approval_pending"];

/// A lifecycle event with what a receiver needs of its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// The event's id: increasing, the receiver's deduplication key.
    pub id: i64,
    /// `expiry_warning`, `environment_expired` or `approval_pending`.
    pub kind: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The timeline's words.
    pub message: String,
    /// The event's data (`expires_at`, `lead_seconds`; for an approval its
    /// `approval_id`, `approvers` and `deadline`).
    pub data: Option<Value>,
    /// The environment's id.
    pub environment_id: Uuid,
    /// Its name.
    pub name: String,
    /// Who owns it.
    pub owner: String,
    /// Its template.
    pub template: String,
    /// When it expires (now).
    pub expires_at: DateTime<Utc>,
    /// Its URL, if it had one.
    pub url: Option<String>,
    /// The trace context of the run the event belongs to, if it was traced
    /// (an approval's; expiries belong to no run): the delivery joins that
    /// trace.
    pub traceparent: Option<String>,
}

/// The cursor of one endpoint, locked for this transaction.
#[derive(Debug)]
pub struct WebhookCursor {
    tx: Transaction<'static, Postgres>,
    name: String,
    /// The last event delivered.
    pub last_event_id: i64,
}

impl Store {
    /// Creates the cursor `name` at the newest event, unless it exists: a
    /// new endpoint is not sent the past.
    pub async fn create_webhook_cursor(&self, name: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query!(
            r#"
            INSERT INTO webhook_cursors (name, last_event_id, updated_at)
            SELECT $1, coalesce(max(id), 0), $2 FROM events
            ON CONFLICT (name) DO NOTHING
            "#,
            name,
            now,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Locks the cursor `name` ([`Store::create_webhook_cursor`] made it).
    /// `None`: another replica holds it, or it does not exist.
    pub async fn lock_webhook_cursor(&self, name: &str) -> Result<Option<WebhookCursor>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query!(
            r#"
            SELECT last_event_id FROM webhook_cursors
            WHERE name = $1
            FOR UPDATE SKIP LOCKED
            "#,
            name,
        )
        .fetch_optional(&mut *tx)
        .await?;
        Ok(row.map(|row| WebhookCursor {
            tx,
            name: name.to_owned(),
            last_event_id: row.last_event_id,
        }))
    }
}

impl WebhookCursor {
    /// Up to `limit` events after the cursor that happened by `settled`.
    pub async fn pending(
        &mut self,
        limit: i64,
        settled: DateTime<Utc>,
    ) -> Result<Vec<WebhookEvent>> {
        let rows = sqlx::query!(
            r#"
            SELECT ev.id, ev.kind, ev.at, ev.message AS "message!", ev.data,
                   e.id AS environment_id, e.name, e.owner, e.template, e.expires_at, e.url,
                   r.traceparent AS "traceparent?"
            FROM events ev
            JOIN environments e ON e.id = ev.environment_id
            LEFT JOIN runs r ON r.id = ev.run_id
            WHERE ev.id > $1 AND ev.kind = ANY($2) AND ev.at <= $3
            ORDER BY ev.id
            LIMIT $4
            "#,
            self.last_event_id,
            WEBHOOK_KINDS as &[&str],
            settled,
            limit,
        )
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| WebhookEvent {
                id: r.id,
                kind: r.kind,
                at: r.at,
                message: r.message,
                data: r.data,
                environment_id: r.environment_id,
                name: r.name,
                owner: r.owner,
                template: r.template,
                expires_at: r.expires_at,
                url: r.url,
                traceparent: r.traceparent,
            })
            .collect())
    }

    /// Moves the cursor past `event_id` and releases it.
    pub async fn advance(mut self, event_id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query!(
            "UPDATE webhook_cursors SET last_event_id = $2, updated_at = $3 WHERE name = $1",
            self.name,
            event_id,
            now,
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Releases the cursor where it was.
    pub async fn release(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
