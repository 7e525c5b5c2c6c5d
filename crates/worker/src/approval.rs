//! `approval`: a step a workflow puts before costly steps. The run waits,
//! durably and without holding a worker, until someone the step names
//! approves or denies through the API or CLI, or its deadline passes.
//!
//! - approved: the step succeeds with `{approved_by, comment}`;
//! - denied: the run fails (permanently, naming the denier and the comment)
//!   and the environment is torn down, as actor `approval`;
//! - no decision by the deadline: the same, "no decision by <deadline>".
//!
//! The decision wakes the run at once (it sets the run's `next_run_at`);
//! between decisions the step looks again every few seconds, which matters
//! when a decision lands while the step is executing and its wake-up is
//! overwritten by the step's own wait: that decision is then seen within one
//! poll. (A wake-up the wait cannot overwrite would let this be longer; see
//! docs/decisions/0016-approvals.md.)

use std::collections::BTreeMap;
use std::time::Duration;

use hubwright_state::model::Role;
use hubwright_state::store::approvals::{Approval, ApprovalState, Approvers, NewApproval};
use hubwright_state::workflow::Dur;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::step::{Outcome, Step, StepContext, StepError};

use hubwright_state::store::approvals::APPROVAL_ACTOR as ACTOR;

/// How often a waiting approval step looks at its row without being woken:
/// the longest a decision that raced the step's own wait goes unseen. One
/// short claim per pending approval this often is cheap beside that delay.
const POLL: Duration = Duration::from_secs(5);

/// `approval`: waits for a decision.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalStep;

/// Parameters of `approval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalParams {
    /// Who may decide: `{ role: operator }`, `{ groups: [gpu-approvers] }` or both.
    pub approvers: ApproverSpec,
    /// How long from the step's first start before the request expires.
    #[serde(default = "default_deadline")]
    pub deadline: Dur,
    /// Whether the environment's owner may decide their own request.
    #[serde(default)]
    pub allow_self_approval: bool,
    /// Ask only when every named parameter has the given value (e.g.
    /// `{ profile: gpu }`); otherwise the step succeeds at once.
    #[serde(default)]
    pub required_if: BTreeMap<String, Value>,
}

fn default_deadline() -> Dur {
    Dur(Duration::from_secs(24 * 3600))
}

/// `approvers:` as written; at least one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawApprovers")]
pub struct ApproverSpec(pub Approvers);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovers {
    role: Option<Role>,
    #[serde(default)]
    groups: Vec<String>,
}

impl TryFrom<RawApprovers> for ApproverSpec {
    type Error = String;

    fn try_from(raw: RawApprovers) -> Result<Self, String> {
        if raw.role.is_none() && raw.groups.is_empty() {
            return Err("approvers: name a `role` or at least one of `groups`".to_owned());
        }
        if let Some(empty) = raw.groups.iter().find(|g| g.trim().is_empty()) {
            return Err(format!("approvers.groups: `{empty}` is not a group name"));
        }
        Ok(Self(Approvers {
            role: raw.role,
            groups: raw.groups,
        }))
    }
}

impl ApprovalParams {
    /// Whether this run needs the approval: every `required_if` parameter
    /// has its value in the run's input (numbers and strings compare as
    /// written, so `{ gpus: 1 }` matches `1` and `"1"`).
    fn required(&self, input: &Value) -> bool {
        self.required_if.iter().all(|(name, wanted)| {
            let given = input.get(name).unwrap_or(&Value::Null);
            given == wanted || text(given).is_some_and(|g| Some(g) == text(wanted))
        })
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Step for ApprovalStep {
    const KIND: &'static str = "approval";
    type Params = ApprovalParams;

    async fn run(&self, ctx: &StepContext, params: ApprovalParams) -> Result<Outcome, StepError> {
        if !params.required(&ctx.input) {
            return Ok(Outcome::Done(json!({ "skipped": "not required" })));
        }
        let env = ctx.environment().await?;
        let approvers = params.approvers.0;
        let new = NewApproval {
            run_id: ctx.run_id,
            step_idx: ctx.step_idx,
            step_name: &ctx.step_name,
            environment_id: Some(env.id),
            requested_by: &env.owner,
            approvers: &approvers,
            allow_self_approval: params.allow_self_approval,
            // From the first start, so a crash or a retry does not move it.
            deadline: ctx.first_started_at + params.deadline.to_chrono(),
        };
        let now = ctx.now();
        let mut approval = ctx
            .store
            .open_approval(&new, now)
            .await
            .map_err(|err| StepError::retryable(format!("opening the approval: {err}")))?;
        if approval.state == ApprovalState::Pending && now >= approval.deadline {
            approval = ctx
                .store
                .expire_approval(approval.id, now)
                .await
                .map_err(|err| StepError::retryable(format!("expiring the approval: {err}")))?
                .unwrap_or(approval);
        }
        match approval.state {
            ApprovalState::Pending => {
                let until = approval
                    .deadline
                    .min(now + chrono::Duration::from_std(POLL).unwrap_or_default());
                Ok(Outcome::Wait {
                    until,
                    // Constant while it waits: one timeline event, not one a poll.
                    reason: format!("waiting for approval by {}", approval.approvers),
                })
            }
            ApprovalState::Approved => Ok(Outcome::Done(json!({
                "approval_id": approval.id,
                "approved_by": approval.decided_by,
                "comment": approval.comment,
            }))),
            ApprovalState::Denied | ApprovalState::Expired => {
                let why = ended(&approval);
                // The teardown joins this step's trace.
                let traceparent =
                    hubwright_telemetry::TraceParent::current().map(|tp| tp.to_string());
                let marked = ctx
                    .store
                    .mark_teardown_from_step(env.id, ACTOR, &why, ctx.now(), traceparent.as_deref())
                    .await
                    .map_err(|err| {
                        StepError::retryable(format!("requesting the teardown: {err}"))
                    })?;
                if !marked {
                    tracing::info!(environment = %env.id, "teardown already requested, or the template has none");
                }
                Err(StepError::permanent(why)
                    .with_detail(json!({ "approval_id": approval.id, "state": approval.state })))
            }
        }
    }
}

/// Why the run stops: who denied it and what they said, or the deadline.
fn ended(approval: &Approval) -> String {
    match approval.state {
        ApprovalState::Denied => {
            let by = approval.decided_by.as_deref().unwrap_or("someone");
            match approval.comment.as_deref() {
                Some(comment) if !comment.is_empty() => format!("denied by {by}: {comment}"),
                _ => format!("denied by {by}"),
            }
        }
        _ => format!("no decision by {}", approval.deadline.to_rfc3339()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StepKind;

    #[test]
    fn approvers_must_name_a_role_or_a_group() {
        let kind = ApprovalStep;
        let err = kind
            .validate(&json!({ "approvers": {} }))
            .expect_err("no approvers");
        assert!(err.contains("name a `role`"), "{err}");
        assert!(
            kind.validate(&json!({ "approvers": { "role": "operator" } }))
                .is_ok()
        );
        assert!(
            kind.validate(
                &json!({ "approvers": { "groups": ["gpu-approvers"] }, "deadline": "2h" })
            )
            .is_ok()
        );
        let err = kind
            .validate(&json!({ "approvers": { "role": "boss" } }))
            .expect_err("unknown role");
        assert!(err.contains("boss"), "{err}");
    }

    #[test]
    fn required_if_compares_the_run_input() {
        let params: ApprovalParams = serde_json::from_value(json!({
            "approvers": { "role": "operator" },
            "required_if": { "profile": "gpu", "gpus": 1 }
        }))
        .unwrap();
        assert!(params.required(&json!({ "profile": "gpu", "gpus": 1 })));
        assert!(params.required(&json!({ "profile": "gpu", "gpus": "1" })));
        assert!(!params.required(&json!({ "profile": "minimal", "gpus": 1 })));
        assert!(!params.required(&json!({})));
    }
}
