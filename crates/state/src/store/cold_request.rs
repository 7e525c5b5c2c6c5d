//! A request nothing can refuse and no pool can serve: accepted by one
//! statement outside any transaction block. The idempotency key with its
//! answer, the environment, its provisioning run and steps and the audit
//! record commit together or not at all, in one round trip and one commit;
//! the workers and schedulers are woken right after the commit
//! ([`super::wakeups`], docs/decisions/0027-a-creation-is-one-statement.md).
//!
//! One statement cannot read back what it wrote, so the answer is built here
//! from what is inserted: a fresh environment is `requested`, and its
//! conditions are its run's steps, all pending ([`fresh_conditions`]). The
//! suite holds this answer equal to a read of the environment.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

use super::audit::AuditRecord;
use super::enqueue::{new_id, step_count};
use super::environment_insert::name_conflict;
use super::environments::{Accepted, Idempotency, NewEnvironment};
use crate::condition::fresh_conditions;
use crate::model::{Environment, EnvironmentPhase, Role};
use crate::workflow::Snapshot;
use crate::{Result, Store};

impl Store {
    /// Accepts `env` cold, in one statement. `None` when the idempotency key
    /// was taken by an earlier request (committed by now: the statement waited
    /// for it), whose stored answer the caller replays.
    pub(super) async fn admit_cold(
        &self,
        env: &NewEnvironment<'_>,
        (snapshot, definition_id): (&Snapshot, i64),
        idempotency: Option<Idempotency<'_>>,
        audit: Option<&AuditRecord>,
        now: DateTime<Utc>,
    ) -> Result<Option<Accepted>> {
        // The database keeps microseconds: what the answer says is what a
        // read says.
        let now = now.trunc_subsecs(6);
        let expires_at = env.expires_at.trunc_subsecs(6);
        let run_id = new_id();
        let step_count = step_count(snapshot)?;
        let environment = Environment {
            id: env.id,
            name: env.name.to_owned(),
            owner: env.owner.to_owned(),
            template: env.template.to_owned(),
            parameters: env.parameters.clone(),
            cluster: env.cluster.to_owned(),
            namespace: Some(env.namespace.to_owned()),
            phase: EnvironmentPhase::Requested,
            url: None,
            expires_at,
            last_error: None,
            created_at: now,
            updated_at: now,
            conditions: fresh_conditions(snapshot.steps.iter().map(|s| s.name.as_str()), now),
        };
        let accepted = Accepted {
            environment: serde_json::to_value(&environment).unwrap_or(Value::Null),
            run_id,
        };
        let answer = serde_json::to_value(&accepted).unwrap_or(Value::Null);
        let record = audit.map(|record| {
            let mut record = record.clone();
            record.target_id = Some(env.id.to_string());
            record.columns()
        });
        let a = record.as_ref();
        // Each insert reads the one before it, so a key taken by an earlier
        // request stops everything after it; the runs' key on the environment
        // is checked at the statement's end, when both rows exist.
        let created = sqlx::query_scalar!(
            r#"
            WITH claimed AS (
                INSERT INTO idempotency_keys (owner, key, request_hash, response, created_at)
                SELECT $3, $13::text, $14::text, $15, $9 WHERE $13::text IS NOT NULL
                ON CONFLICT (owner, key) DO NOTHING
                RETURNING key
            ), admitted AS (
                SELECT 1 AS one WHERE $13::text IS NULL OR EXISTS (SELECT FROM claimed)
            ), env AS (
                INSERT INTO environments (id, name, owner, template, parameters, cluster,
                                          namespace, expires_at, created_at, updated_at)
                SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9 FROM admitted
                RETURNING id
            ), run AS (
                INSERT INTO runs (id, environment_id, definition_id, input, step_count,
                                  next_run_at, created_by, created_at, updated_at, traceparent)
                SELECT $10, env.id, $11, nullif($5, '{}'::jsonb), $12, $9, $3, $9, $9, $16 FROM env
                RETURNING id
            ), audit AS (
                INSERT INTO audit_log (at, actor, actor_role, auth, action, target_kind,
                                       target_id, outcome, status, problem_type, detail,
                                       client_addr, method, path, channel)
                SELECT $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29::text::inet,
                       $30, $31, $32
                FROM env WHERE $17
                ON CONFLICT DO NOTHING
            )
            SELECT 1 AS "created!" FROM run
            "#,
            env.id,
            env.name,
            env.owner,
            env.template,
            env.parameters,
            env.cluster,
            env.namespace,
            expires_at,
            now,
            run_id,
            definition_id,
            step_count,
            idempotency.map(|idem| idem.key),
            idempotency.map(|idem| idem.request_hash),
            answer,
            env.traceparent,
            a.is_some(),
            a.map(|c| c.at),
            a.and_then(|c| c.actor.as_deref()),
            a.and_then(|c| c.actor_role) as Option<Role>,
            a.map(|c| c.auth),
            a.and_then(|c| c.action.as_deref()),
            a.and_then(|c| c.target_kind.as_deref()),
            a.and_then(|c| c.target_id.as_deref()),
            a.map(|c| c.outcome),
            a.and_then(|c| c.status),
            a.and_then(|c| c.problem_type.as_deref()),
            a.and_then(|c| c.detail.as_deref()),
            a.and_then(|c| c.client_addr.as_deref()),
            a.and_then(|c| c.method.as_deref()),
            a.and_then(|c| c.path.as_deref()),
            a.and_then(|c| c.channel),
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|err| name_conflict(err, env))?;
        if created.is_none() {
            return Ok(None);
        }
        // After the commit, not in it: see `wakeups`.
        self.wakeups.request(&self.pool);
        Ok(Some(accepted))
    }
}
