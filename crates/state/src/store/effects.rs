//! What steps did outside hubwright, as teardown needs to know it: a step
//! that creates something (a namespace, an OAuth client, a Helm release)
//! records, before its first call out, that it is calling out; a teardown
//! step asks whether its counterpart ever did, and where it never did there is
//! nothing to undo (docs/decisions/0010-teardown-of-partial-provisioning.md).
//!
//! The record is a `step_calling_out` event on the run's timeline: events are
//! append-only, so an operator's retry (which resets a step's row) does not
//! erase it, and the timeline shows operators the moment a step first reached
//! beyond hubwright.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store};

/// The event kind of the record.
pub const CALLING_OUT: &str = "step_calling_out";

/// One step about to call out, as it records itself.
#[derive(Debug, Clone, Copy)]
pub struct CallingOut<'a> {
    /// The run.
    pub run_id: Uuid,
    /// The step's position in it.
    pub step_idx: i32,
    /// The step's kind (what a teardown step asks about).
    pub kind: &'a str,
    /// The worker executing it.
    pub actor: &'a str,
    /// What it is about to change, for the timeline (never a secret).
    pub what: &'a str,
}

impl Store {
    /// Records that a step of a run of an environment is about to call out.
    /// Once per run, step and kind: later attempts and polls add nothing. A
    /// run without an environment records nothing (no teardown asks).
    ///
    /// Call it before the call, not after: a worker that dies in the middle
    /// of the call leaves the record, so teardown still undoes what the call
    /// may have made.
    pub async fn record_calling_out(&self, call: CallingOut<'_>, now: DateTime<Utc>) -> Result<()> {
        sqlx::query!(
            r#"
            INSERT INTO events (run_id, step_idx, kind, actor, message, data, at)
            SELECT r.id, s.idx, 'step_calling_out', $4,
                   format('step %s calls out: %s', s.name, $5::text),
                   jsonb_build_object('kind', $3::text), $6
            FROM runs r JOIN steps s ON s.run_id = r.id AND s.idx = $2
            WHERE r.id = $1 AND r.environment_id IS NOT NULL
              AND NOT EXISTS (
                  SELECT 1 FROM events e
                  WHERE e.run_id = $1 AND e.step_idx = $2 AND e.kind = 'step_calling_out'
                    AND e.data ->> 'kind' = $3::text)
            "#,
            call.run_id,
            call.step_idx,
            call.kind,
            call.actor,
            call.what,
            now,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether a step of `kind`, in any run of `environment_id`, ever recorded
    /// that it was calling out. False means no such step ever reached beyond
    /// hubwright, so nothing it would have made can exist.
    pub async fn ever_called_out(&self, environment_id: Uuid, kind: &str) -> Result<bool> {
        Ok(sqlx::query_scalar!(
            r#"
            SELECT EXISTS (
                SELECT 1 FROM runs r JOIN events e ON e.run_id = r.id
                WHERE r.environment_id = $1 AND e.kind = 'step_calling_out'
                  AND e.data ->> 'kind' = $2::text
            ) AS "called_out!"
            "#,
            environment_id,
            kind,
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
