//! hubwright-worker: the durable step runner and the step kinds.
//!
//! A [`Scheduler`] tears expired environments down and warns before expiry;
//! [`AuditRetention`] deletes audit entries past their retention, and
//! [`RunRetention`] finished runs past theirs.
//!
//! A [`Worker`] claims due runs from Postgres, executes each run's steps in order
//! under a lease, and commits every step's [`Outcome`] before the next starts. The
//! contract it keeps is in `docs/durability.md`; the states it moves runs through
//! are drawn in `docs/state_machine.md`.

pub mod approval;
mod audit_retention;
pub mod builtin;
pub mod cause;
mod config;
pub mod error_text;
pub mod helm;
pub mod hub;
pub mod idp;
pub mod kubernetes;
pub mod metrics;
mod periodic;
pub mod preflight;
mod pulse;
mod registry;
mod retry;
mod run_retention;
mod runner;
mod scheduler;
pub mod signal;
mod step;
pub mod values;
pub mod webhooks;

pub use audit_retention::AuditRetention;
pub use cause::Cause;
pub use config::{ConfigError, WorkerConfig};
pub use pulse::Pulse;
pub use registry::Registry;
pub use retry::retry_delay;
pub use run_retention::{RetentionPass, RunRetention};
pub use runner::{Worker, WorkerHandle};
pub use scheduler::{Scheduler, SchedulerConfig};
pub use step::{Outcome, Step, StepContext, StepError, StepKind};
pub use webhooks::{Notifier, WebhookConfig};

/// Everything that can stop a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed in a way the worker cannot ride out.
    #[error(transparent)]
    State(#[from] hubwright_state::Error),
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
