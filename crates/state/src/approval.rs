//! Approvals as the API, the CLI and the `approval` step see them; the
//! queries are in [`crate::store::approvals`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Role;

/// Who asks for the teardown of an environment whose approval was denied or
/// expired (reserved: no caller has this name).
pub const APPROVAL_ACTOR: &str = "approval";

/// Where an approval is. Mirrors the Postgres enum `approval_state`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "approval_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Nobody has decided yet; the run waits.
    Pending,
    /// Approved: the step succeeds and the run goes on.
    Approved,
    /// Denied: the run fails and the environment is torn down.
    Denied,
    /// Nobody decided by the deadline: as denied, by nobody.
    Expired,
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        })
    }
}

/// Who may decide an approval: anyone with at least `role`, or in any of
/// `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approvers {
    /// At least this role (admins count as operators).
    pub role: Option<Role>,
    /// Any of these identity-provider groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Approvers {
    /// Whether a caller with `role` in `groups` is one of them.
    pub fn include(&self, role: Role, groups: &[String]) -> bool {
        self.role.is_some_and(|needed| role >= needed)
            || self.groups.iter().any(|group| groups.contains(group))
    }
}

impl fmt::Display for Approvers {
    /// `operator`, `a member of gpu-approvers`, or both joined by `or`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(role) = self.role {
            parts.push(role.to_string());
        }
        if !self.groups.is_empty() {
            parts.push(format!("a member of {}", self.groups.join(" or ")));
        }
        f.write_str(&parts.join(" or "))
    }
}

/// One approval of one run's step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// Its id.
    pub id: Uuid,
    /// The run that waits for it.
    pub run_id: Uuid,
    /// The step's position in the run.
    pub step_idx: i32,
    /// The step's name.
    pub step_name: String,
    /// The environment the run works on.
    pub environment_id: Option<Uuid>,
    /// The environment's owner: the one who may not decide, unless allowed.
    pub requested_by: String,
    /// Who may decide.
    pub approvers: Approvers,
    /// Whether the requester may decide their own request.
    pub allow_self_approval: bool,
    /// Where it is.
    pub state: ApprovalState,
    /// Who approved or denied it.
    pub decided_by: Option<String>,
    /// What they said.
    pub comment: Option<String>,
    /// When it expires without a decision.
    pub deadline: DateTime<Utc>,
    /// When the step asked.
    pub created_at: DateTime<Utc>,
    /// When it was decided or expired.
    pub decided_at: Option<DateTime<Utc>>,
}

/// An approval a step asks for.
#[derive(Debug, Clone)]
pub struct NewApproval<'a> {
    /// The run.
    pub run_id: Uuid,
    /// The step's position.
    pub step_idx: i32,
    /// The step's name.
    pub step_name: &'a str,
    /// The environment, if the run works on one.
    pub environment_id: Option<Uuid>,
    /// The environment's owner.
    pub requested_by: &'a str,
    /// Who may decide.
    pub approvers: &'a Approvers,
    /// Whether the requester may decide.
    pub allow_self_approval: bool,
    /// When it expires.
    pub deadline: DateTime<Utc>,
}

/// A decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go on.
    Approve,
    /// Stop and tear down.
    Deny,
}

/// Which approvals to list.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    /// Only approvals in this state.
    pub state: Option<ApprovalState>,
    /// Only those this caller may decide or requested; `None`: all
    /// (operators).
    pub viewer: Option<Viewer>,
}

/// A caller, as far as listing approvals goes.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Their name.
    pub subject: String,
    /// Their role.
    pub role: Role,
    /// Their groups.
    pub groups: Vec<String>,
}
