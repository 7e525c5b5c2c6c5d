//! Rows and enums shared by the worker, the API and the CLI.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use crate::condition::{Condition, ConditionReason, ConditionStatus};

/// Where a run is in its life. Mirrors the Postgres enum `run_state`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "run_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for a worker: new, released, or a retry whose backoff is scheduled.
    Pending,
    /// A worker holds the lease and is executing the current step.
    Running,
    /// The current step said "not ready yet" and is polled again at `next_run_at`.
    Waiting,
    /// Every step succeeded.
    Succeeded,
    /// A step failed permanently or ran out of attempts; an operator may retry.
    Failed,
    /// Cancelled by an operator or by a teardown; no further step runs.
    Cancelled,
}

impl RunState {
    /// Whether no worker will ever pick the run up again without an operator.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        })
    }
}

/// Where a step is. Mirrors the Postgres enum `step_state`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "step_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started, or a retry is scheduled.
    Pending,
    /// Executing under a worker's lease.
    Running,
    /// Polled again later; does not use up attempts.
    Waiting,
    /// Committed with its output.
    Succeeded,
    /// Failed permanently or ran out of attempts.
    Failed,
    /// The run was cancelled while this step was next.
    Cancelled,
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        })
    }
}

/// Whether an error is worth retrying. Decided where the error is born.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "error_class", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: retried with backoff up to the step's policy.
    Retryable,
    /// Retrying cannot help: the run stops in `failed` for an operator.
    Permanent,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Retryable => "retryable",
            Self::Permanent => "permanent",
        })
    }
}

/// A step error as recorded: its class, the message verbatim and optional detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepFailure {
    /// Retryable or permanent.
    pub class: ErrorClass,
    /// The message, kept verbatim for the operator.
    pub message: String,
    /// Structured detail (status codes, object names); never secrets.
    pub detail: Option<Value>,
}

/// A run as the API and CLI show it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    /// UUIDv7, so ids sort by creation time.
    pub id: Uuid,
    /// The environment this run works on, if any.
    pub environment_id: Option<Uuid>,
    /// Template (workflow file) name.
    pub template: String,
    /// Workflow name inside the template, e.g. `provision`.
    pub workflow: String,
    /// The immutable definition snapshot the run executes.
    pub definition_id: i64,
    /// The request's parameters.
    pub input: Value,
    /// Who asked for it.
    pub created_by: String,
    /// Whose run it is: the environment's owner, or `created_by` when the run
    /// works on no environment. Developers see the runs they own.
    pub owner: String,
    /// Current state.
    pub state: RunState,
    /// Number of steps.
    pub step_count: i32,
    /// First step whose outcome is not committed.
    pub current_step: i32,
    /// When a pending or waiting run becomes claimable.
    pub next_run_at: DateTime<Utc>,
    /// The worker holding the lease, while running.
    pub lease_owner: Option<String>,
    /// When the lease runs out unless extended.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Times claimed, rescues included.
    pub claims: i32,
    /// Set when cancellation was asked for while a step was in flight.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// The error of the step that failed the run, verbatim, while the run is
    /// `failed`.
    pub error: Option<StepFailure>,
    /// Accepted at.
    pub created_at: DateTime<Utc>,
    /// First claimed at.
    pub started_at: Option<DateTime<Utc>>,
    /// Reached a terminal state at.
    pub finished_at: Option<DateTime<Utc>>,
    /// The W3C trace id (32 hex digits) of the request that created the
    /// run, when it was traced: the run's steps and their calls to
    /// Kubernetes and the identity provider are in the same trace.
    pub trace_id: Option<String>,
}

/// A step of a run as the API and CLI show it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    /// Position in the run, from 0.
    pub idx: i32,
    /// Name from the workflow definition.
    pub name: String,
    /// Step kind implemented by the worker.
    pub kind: String,
    /// Current state.
    pub state: StepState,
    /// Executions counted against the retry policy.
    pub attempts: i32,
    /// "Not ready yet" polls, which do not count as attempts.
    pub polls: i32,
    /// The committed output, once succeeded.
    pub output: Option<Value>,
    /// The last error, verbatim; cleared when the step succeeds.
    pub error: Option<StepFailure>,
    /// First started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Succeeded or failed at.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One entry of a run's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Monotonic id: events of a run sort by it.
    pub id: i64,
    /// The run.
    pub run_id: Uuid,
    /// The step, for step events.
    pub step_idx: Option<i32>,
    /// What happened, e.g. `step_succeeded`.
    pub kind: String,
    /// Who did it: a worker id or a user.
    pub actor: String,
    /// One human line.
    pub message: String,
    /// Structured detail.
    pub data: Option<Value>,
    /// When.
    pub at: DateTime<Utc>,
}

/// What an API caller may do. Ordered: each role may do what the ones before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[sqlx(type_name = "api_role", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Asks for environments and sees their own.
    Developer,
    /// Sees everything; retries and cancels runs.
    Operator,
    /// Manages tokens.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Developer => "developer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "developer" => Ok(Self::Developer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "`{other}` is not a role (developer, operator, admin)"
            )),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: a user name or service account.
    pub subject: String,
    /// What they may do.
    pub role: Role,
    /// The groups they belong to, sorted: an OpenID token's groups claim;
    /// the API adds those the policy file declares them a member of.
    pub groups: Vec<String>,
}

impl Principal {
    /// Whether the caller has at least `role`.
    pub fn has(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// Where an environment is in its life. Mirrors the Postgres enum
/// `environment_phase`; moved by its runs (see the `runs_move_environment_phase`
/// trigger) and by teardown requests.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "environment_phase", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentPhase {
    /// Accepted; its provisioning run has not started yet.
    Requested,
    /// Its provisioning run is running.
    Provisioning,
    /// Provisioned; `url` is set when a step reported one.
    Ready,
    /// A run failed; `last_error` says why. An operator can retry the run.
    Failed,
    /// Its provisioning (or teardown) run was cancelled by an operator; nothing
    /// runs for it until it is deleted (again).
    Cancelled,
    /// Teardown was requested; it starts once nothing else runs.
    TearingDown,
    /// Gone.
    Deleted,
}

impl fmt::Display for EnvironmentPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requested => "requested",
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TearingDown => "tearing_down",
            Self::Deleted => "deleted",
        })
    }
}

/// An environment as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Environment {
    /// UUIDv7.
    pub id: Uuid,
    /// DNS-1123 label, unique per owner among live environments.
    pub name: String,
    /// Who asked for it.
    pub owner: String,
    /// The template it was made from.
    pub template: String,
    /// The validated parameters.
    pub parameters: Value,
    /// The target cluster.
    pub cluster: String,
    /// The namespace, once known.
    pub namespace: Option<String>,
    /// Where it is in its life.
    pub phase: EnvironmentPhase,
    /// Its address, once ready.
    pub url: Option<String>,
    /// When it is torn down unless extended.
    pub expires_at: DateTime<Utc>,
    /// The error of the run that failed, verbatim.
    pub last_error: Option<String>,
    /// Accepted at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
    /// One per step of its latest provisioning run, in order: how far it got.
    pub conditions: Vec<Condition>,
}
