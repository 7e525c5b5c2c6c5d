//! What live event streams read: notifications of new events (LISTEN on
//! [`EVENTS_CHANNEL`], sent by the `events_notify` trigger), a stream's next
//! events with its run's end in one query, the newest event of each followed
//! run (the fallback for lost notifications), and which tokens of open streams
//! still authenticate.

use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::digest::sha256_hex;
use crate::model::{Event, RunState};
use crate::{Error, Result, Store};

/// The Postgres channel the `events_notify` trigger sends `<run id> <newest
/// event id>` on after each insert into `events`.
pub const EVENTS_CHANNEL: &str = "hubwright_events";

/// What an [`EventListener`] heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventNote {
    /// Run `run_id` has events up to `newest`.
    Events {
        /// The run.
        run_id: Uuid,
        /// Its newest event id as of the notifying commit.
        newest: i64,
    },
    /// The connection was lost: notifications may have been missed. The next
    /// call reconnects.
    Lost,
}

/// Receives [`EventNote`]s; one per API process feeds every event stream.
#[derive(Debug)]
pub struct EventListener {
    listener: PgListener,
}

impl EventListener {
    /// The next note. `Err` only when the database cannot be reached (or the
    /// pool was closed): reconnecting is the caller's choice.
    pub async fn recv(&mut self) -> Result<EventNote> {
        loop {
            let Some(note) = self.listener.try_recv().await? else {
                return Ok(EventNote::Lost);
            };
            // A payload that does not parse came from someone else: ignore it.
            let parsed = note.payload().split_once(' ').and_then(|(run, newest)| {
                Some(EventNote::Events {
                    run_id: run.parse().ok()?,
                    newest: newest.parse().ok()?,
                })
            });
            if let Some(parsed) = parsed {
                return Ok(parsed);
            }
        }
    }
}

/// A hubwright token's fingerprint as stored (its SHA-256): what an event
/// stream keeps to re-check the token, instead of the secret.
pub fn token_fingerprint(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// A page of a run's events and whether the run had ended when they were read.
#[derive(Debug, Clone)]
pub struct EventsSince {
    /// The events after the cursor, oldest first.
    pub events: Vec<Event>,
    /// Whether the run was in a terminal state. Read in the same statement
    /// as the events, so the events of the final transition are among them.
    pub ended: bool,
}

impl Store {
    /// Subscribes to [`EVENTS_CHANNEL`]. Holds one pooled connection.
    pub async fn event_listener(&self) -> Result<EventListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        Ok(EventListener { listener })
    }

    /// Up to `limit` events of `run_id` after event `after`, and whether the
    /// run has ended, in one query.
    pub async fn events_since(&self, run_id: Uuid, after: i64, limit: i64) -> Result<EventsSince> {
        let rows = sqlx::query!(
            r#"
            SELECT r.state AS "state!: RunState",
                   e.id AS "id?", e.step_idx, e.kind AS "kind?", e.actor AS "actor?",
                   e.message AS "message?", e.data, e.at AS "at?"
            FROM runs r
            LEFT JOIN LATERAL (
                SELECT * FROM run_timeline
                WHERE run_id = r.id AND id > $2 ORDER BY id LIMIT $3
            ) e ON true
            WHERE r.id = $1
            ORDER BY e.id
            "#,
            run_id,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Err(Error::RunNotFound(run_id));
        };
        let ended = first.state.is_terminal();
        let events = rows
            .into_iter()
            .filter_map(|row| {
                Some(Event {
                    id: row.id?,
                    run_id,
                    step_idx: row.step_idx,
                    kind: row.kind?,
                    actor: row.actor?,
                    message: row.message?,
                    data: row.data,
                    at: row.at?,
                })
            })
            .collect();
        Ok(EventsSince { events, ended })
    }

    /// The newest event id of each of `run_ids` that has events.
    pub async fn newest_events(&self, run_ids: &[Uuid]) -> Result<Vec<(Uuid, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT run_id AS "run_id!", max(id) AS "newest!"
               FROM run_timeline WHERE run_id = ANY($1) GROUP BY run_id"#,
            run_ids
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.run_id, row.newest))
            .collect())
    }

    /// Which of `fingerprints` ([`token_fingerprint`]) belong to tokens that
    /// still authenticate (not revoked). One query for every open stream.
    pub async fn live_tokens(&self, fingerprints: &[String]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar!(
            "SELECT token_hash FROM api_tokens WHERE token_hash = ANY($1) AND revoked_at IS NULL",
            fingerprints
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
