//! Approvals: the rows behind a run's `approval` step. The step opens one
//! when it first runs ([`Store::open_approval`]) and reads it on every later
//! execution; a decision ([`Store::decide_approval`]) is one guarded UPDATE
//! that also wakes the waiting run, so a worker picks it up at once; a
//! deadline that passed without one is recorded by the step
//! ([`Store::expire_approval`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::enqueue::new_id;
pub use crate::approval::{
    APPROVAL_ACTOR, Approval, ApprovalFilter, ApprovalState, Approvers, Decision, NewApproval,
    Viewer,
};
use crate::model::Role;
use crate::{Error, Result, Store};
struct Row {
    id: Uuid,
    run_id: Uuid,
    step_idx: i32,
    step_name: String,
    environment_id: Option<Uuid>,
    requested_by: String,
    approver_role: Option<Role>,
    approver_groups: Vec<String>,
    allow_self_approval: bool,
    state: ApprovalState,
    decided_by: Option<String>,
    comment: Option<String>,
    deadline: DateTime<Utc>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}

impl From<Row> for Approval {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            run_id: row.run_id,
            step_idx: row.step_idx,
            step_name: row.step_name,
            environment_id: row.environment_id,
            requested_by: row.requested_by,
            approvers: Approvers {
                role: row.approver_role,
                groups: row.approver_groups,
            },
            allow_self_approval: row.allow_self_approval,
            state: row.state,
            decided_by: row.decided_by,
            comment: row.comment,
            deadline: row.deadline,
            created_at: row.created_at,
            decided_at: row.decided_at,
        }
    }
}

impl Store {
    /// The approval of `new`'s run and step: opened now (with an
    /// `approval_pending` event, which webhooks announce) unless the step
    /// opened it in an earlier execution, in which case that one, as it is.
    pub async fn open_approval(
        &self,
        new: &NewApproval<'_>,
        now: DateTime<Utc>,
    ) -> Result<Approval> {
        if new.approvers.role.is_none() && new.approvers.groups.is_empty() {
            return Err(Error::Invalid {
                field: "approvers".to_owned(),
                rule: "name a role or at least one group".to_owned(),
            });
        }
        let message = format!(
            "{} asks for approval by {} before step {}",
            new.requested_by, new.approvers, new.step_name
        );
        // One statement: the row and its event, once per run and step.
        sqlx::query!(
            r#"
            WITH opened AS (
                INSERT INTO approvals (id, run_id, step_idx, step_name, environment_id,
                                       requested_by, approver_role, approver_groups,
                                       allow_self_approval, deadline, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                ON CONFLICT ON CONSTRAINT approvals_one_per_step DO NOTHING
                RETURNING id, run_id, step_idx, environment_id
            )
            INSERT INTO events (run_id, step_idx, environment_id, kind, actor, message, data, at)
            SELECT run_id, step_idx, environment_id, 'approval_pending', $6, $12,
                   jsonb_build_object('approval_id', id, 'approvers',
                       jsonb_build_object('role', $7::api_role, 'groups', $8::text[]),
                       'deadline', $10::timestamptz),
                   $11
            FROM opened
            "#,
            new_id(),
            new.run_id,
            new.step_idx,
            new.step_name,
            new.environment_id,
            new.requested_by,
            new.approvers.role as Option<Role>,
            &new.approvers.groups,
            new.allow_self_approval,
            new.deadline,
            now,
            message,
        )
        .execute(&self.pool)
        .await?;
        let row = sqlx::query_as!(
            Row,
            r#"
            SELECT id, run_id, step_idx, step_name, environment_id, requested_by,
                   approver_role AS "approver_role: Role", approver_groups,
                   allow_self_approval, state AS "state: ApprovalState", decided_by,
                   comment, deadline, created_at, decided_at
            FROM approvals WHERE run_id = $1 AND step_idx = $2
            "#,
            new.run_id,
            new.step_idx,
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    /// The approval with `id`, if any.
    pub async fn approval(&self, id: Uuid) -> Result<Option<Approval>> {
        let row = sqlx::query_as!(
            Row,
            r#"
            SELECT id, run_id, step_idx, step_name, environment_id, requested_by,
                   approver_role AS "approver_role: Role", approver_groups,
                   allow_self_approval, state AS "state: ApprovalState", decided_by,
                   comment, deadline, created_at, decided_at
            FROM approvals WHERE id = $1
            "#,
            id,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Approval::from))
    }

    /// A page of approvals, newest first, before `before` (the last id of
    /// the previous page).
    pub async fn list_approvals(
        &self,
        filter: &ApprovalFilter,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Approval>> {
        let viewer = filter.viewer.as_ref();
        let rows = sqlx::query_as!(
            Row,
            r#"
            SELECT id, run_id, step_idx, step_name, environment_id, requested_by,
                   approver_role AS "approver_role: Role", approver_groups,
                   allow_self_approval, state AS "state: ApprovalState", decided_by,
                   comment, deadline, created_at, decided_at
            FROM approvals
            WHERE ($1::approval_state IS NULL OR state = $1)
              AND ($2::text IS NULL OR requested_by = $2
                   OR approver_role <= $3::api_role OR approver_groups && $4::text[])
              AND ($5::uuid IS NULL OR id < $5)
            ORDER BY id DESC
            LIMIT $6
            "#,
            filter.state as Option<ApprovalState>,
            viewer.map(|v| v.subject.as_str()),
            viewer.map(|v| v.role) as Option<Role>,
            viewer.map(|v| v.groups.as_slice()).unwrap_or(&[]),
            before,
            limit,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Approval::from).collect())
    }

    /// Records `decision` by `by` with `comment` and wakes the waiting run,
    /// in one transaction. `None`: no such approval. A decision on one that
    /// is no longer pending, or whose deadline passed, is an
    /// [`Error::Conflict`] saying what happened to it. The caller has checked
    /// that `by` may decide.
    pub async fn decide_approval(
        &self,
        id: Uuid,
        decision: Decision,
        by: &str,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Approval>> {
        let (state, verb) = match decision {
            Decision::Approve => (ApprovalState::Approved, "approved"),
            Decision::Deny => (ApprovalState::Denied, "denied"),
        };
        let message = match comment {
            Some(comment) => format!("{by} {verb}: {comment}"),
            None => format!("{by} {verb}"),
        };
        let mut tx = self.pool.begin().await?;
        // Guarded: only a pending approval whose deadline has not passed moves.
        let decided = sqlx::query!(
            r#"
            WITH decided AS (
                UPDATE approvals
                SET state = $2, decided_by = $3, comment = $4, decided_at = $5, updated_at = $5
                WHERE id = $1 AND state = 'pending' AND deadline > $5
                RETURNING id, run_id, step_idx, environment_id
            ), woken AS (
                -- The step reads the decision on its next execution: now.
                UPDATE runs r SET next_run_at = $5, updated_at = $5
                FROM decided d WHERE r.id = d.run_id AND r.state = 'waiting'
            )
            INSERT INTO events (run_id, step_idx, environment_id, kind, actor, message, data, at)
            SELECT run_id, step_idx, environment_id, 'approval_' || $2::approval_state::text,
                   $3, $6, jsonb_build_object('approval_id', id, 'comment', $4::text), $5
            FROM decided
            RETURNING run_id
            "#,
            id,
            state as ApprovalState,
            by,
            comment,
            now,
            message,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if decided.is_some() {
            sqlx::query!("SELECT pg_notify('hubwright_runs', '')")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let Some(approval) = self.approval(id).await? else {
            return Ok(None);
        };
        if decided.is_none() {
            let rule = match (approval.state, &approval.decided_by) {
                (ApprovalState::Pending, _) => format!(
                    "approval {id} passed its deadline ({}) without a decision",
                    approval.deadline
                ),
                (ApprovalState::Expired, _) => format!(
                    "approval {id} expired at its deadline ({})",
                    approval.deadline
                ),
                (state, by) => format!(
                    "approval {id} was already {state} by {}",
                    by.as_deref().unwrap_or("someone")
                ),
            };
            return Err(Error::Conflict {
                field: "state".to_owned(),
                rule,
            });
        }
        Ok(Some(approval))
    }

    /// Marks approval `id` expired when it is still pending and its deadline
    /// is past at `now`; the approval as it is afterwards (a decision that
    /// came first stands).
    pub async fn expire_approval(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<Approval>> {
        sqlx::query!(
            r#"
            WITH expired AS (
                UPDATE approvals SET state = 'expired', decided_at = $2, updated_at = $2
                WHERE id = $1 AND state = 'pending' AND deadline <= $2
                RETURNING id, run_id, step_idx, environment_id, deadline
            )
            INSERT INTO events (run_id, step_idx, environment_id, kind, actor, message, data, at)
            SELECT run_id, step_idx, environment_id, 'approval_expired', 'approval',
                   format('no decision by %s', deadline), jsonb_build_object('approval_id', id), $2
            FROM expired
            "#,
            id,
            now,
        )
        .execute(&self.pool)
        .await?;
        self.approval(id).await
    }
}
