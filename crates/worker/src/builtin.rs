//! Step kinds every worker has, useful in any workflow.

use std::time::Duration;

use hubwright_state::workflow::Dur;
use serde::Deserialize;
use serde_json::json;

use crate::registry::Registry;
use crate::step::{Outcome, Step, StepContext, StepError};

/// Registers `noop`, `sleep` and `approval`.
pub fn register(registry: &mut Registry) {
    registry
        .register(Noop)
        .register(Sleep)
        .register(crate::approval::ApprovalStep);
}

/// `noop`: succeeds at once. A placeholder and a marker in timelines.
#[derive(Debug, Clone, Copy)]
pub struct Noop;

/// `noop` takes no parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl Step for Noop {
    const KIND: &'static str = "noop";
    type Params = NoParams;

    async fn run(&self, _ctx: &StepContext, _params: NoParams) -> Result<Outcome, StepError> {
        Ok(Outcome::Done(json!({})))
    }
}

/// `sleep`: a durable timer. It holds no worker while it waits: the run is parked
/// until the time is up, and a crash or restart does not start the timer over.
#[derive(Debug, Clone, Copy)]
pub struct Sleep;

/// Parameters of `sleep`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepParams {
    /// How long, from the step's first start.
    pub duration: Dur,
}

impl Step for Sleep {
    const KIND: &'static str = "sleep";
    type Params = SleepParams;

    async fn run(&self, ctx: &StepContext, params: SleepParams) -> Result<Outcome, StepError> {
        let wake_at = ctx.first_started_at + params.duration.to_chrono();
        let now = ctx.now();
        if now >= wake_at {
            return Ok(Outcome::Done(
                json!({ "slept": params.duration.to_string() }),
            ));
        }
        let left = (wake_at - now).to_std().unwrap_or(Duration::ZERO);
        Ok(Outcome::Wait {
            until: wake_at,
            reason: format!(
                "sleeping {} more",
                Dur(Duration::from_millis(left.as_millis() as u64))
            ),
        })
    }
}
