//! Step kinds whose behaviour a test controls. They prove the runner's
//! semantics before real steps exist, and stay the cheapest way to test them.

use std::io::Write;
use std::time::Duration;

use hubwright_state::workflow::Dur;
use hubwright_worker::{Outcome, Registry, Step, StepContext, StepError};
use serde::Deserialize;
use serde_json::json;

/// Registers every testkit kind.
pub fn register(registry: &mut Registry) {
    registry
        .register(Block)
        .register(Flaky)
        .register(Fail)
        .register(Record)
        .register(Polls);
}

/// `test-block`: holds the worker for `duration` (a step in flight, to crash or
/// pause a worker in the middle of).
#[derive(Debug)]
pub struct Block;

/// Parameters of `test-block`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockParams {
    /// How long to hold.
    pub duration: Dur,
    /// Append a line here when the step finishes, like `test-record`.
    #[serde(default)]
    pub record: Option<String>,
}

impl Step for Block {
    const KIND: &'static str = "test-block";
    type Params = BlockParams;

    async fn run(&self, ctx: &StepContext, params: BlockParams) -> Result<Outcome, StepError> {
        tokio::time::sleep(params.duration.0).await;
        if let Some(path) = &params.record {
            append_effect(path, ctx)?;
        }
        Ok(Outcome::Done(
            json!({ "worker": &*ctx.worker_id, "attempt": ctx.attempt }),
        ))
    }
}

/// `test-flaky`: fails its first `failures` attempts with a retryable error
/// (a 503, with `Retry-After` when `retry_after` is given), then succeeds.
#[derive(Debug)]
pub struct Flaky;

/// Parameters of `test-flaky`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlakyParams {
    /// Attempts that fail before one succeeds.
    pub failures: i32,
    /// What each failure asks the runner to wait at least, as a server's
    /// `Retry-After` does.
    #[serde(default)]
    pub retry_after: Option<Dur>,
}

impl Step for Flaky {
    const KIND: &'static str = "test-flaky";
    type Params = FlakyParams;

    async fn run(&self, ctx: &StepContext, params: FlakyParams) -> Result<Outcome, StepError> {
        if ctx.attempt <= params.failures {
            let error = StepError::retryable(format!(
                "transient failure {} of {}",
                ctx.attempt, params.failures
            ))
            .with_detail(json!({ "status": 503 }));
            return Err(match params.retry_after {
                Some(after) => error.with_retry_after(after.0),
                None => error,
            });
        }
        Ok(Outcome::Done(json!({ "attempt": ctx.attempt })))
    }
}

/// `test-fail`: fails permanently with `message`, unless the file `until_exists`
/// names exists: the test "fixes the cause" by creating it, then retries.
#[derive(Debug)]
pub struct Fail;

/// Parameters of `test-fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailParams {
    /// The error message, kept verbatim.
    pub message: String,
    /// Succeed once this file exists.
    #[serde(default)]
    pub until_exists: Option<String>,
}

impl Step for Fail {
    const KIND: &'static str = "test-fail";
    type Params = FailParams;

    async fn run(&self, ctx: &StepContext, params: FailParams) -> Result<Outcome, StepError> {
        if params
            .until_exists
            .as_deref()
            .is_some_and(|path| std::path::Path::new(path).exists())
        {
            return Ok(Outcome::Done(json!({ "attempt": ctx.attempt })));
        }
        Err(StepError::permanent(params.message).with_detail(json!({ "status": 403 })))
    }
}

/// `test-record`: an external side effect. Appends `run step attempt worker` to
/// the file at `path`, so a test can count how often each step's effect really
/// happened.
#[derive(Debug)]
pub struct Record;

/// Parameters of `test-record`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    /// The effect log.
    pub path: String,
}

impl Step for Record {
    const KIND: &'static str = "test-record";
    type Params = RecordParams;

    async fn run(&self, ctx: &StepContext, params: RecordParams) -> Result<Outcome, StepError> {
        append_effect(&params.path, ctx)?;
        Ok(Outcome::Done(
            json!({ "worker": &*ctx.worker_id, "attempt": ctx.attempt }),
        ))
    }
}

fn append_effect(path: &str, ctx: &StepContext) -> Result<(), StepError> {
    let line = format!(
        "{} {} {} {}\n",
        ctx.run_id, ctx.step_idx, ctx.attempt, ctx.worker_id
    );
    // One write of one short line with O_APPEND is atomic among processes.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .map_err(|err| StepError::retryable(format!("cannot record effect in {path}: {err}")))
}

/// `test-polls`: "not ready yet" for its first `polls` executions, then done.
#[derive(Debug)]
pub struct Polls;

/// Parameters of `test-polls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollsParams {
    /// Waits before it is ready.
    pub polls: i32,
    /// Between polls.
    #[serde(default = "default_interval")]
    pub interval: Dur,
}

fn default_interval() -> Dur {
    Dur(Duration::from_millis(50))
}

impl Step for Polls {
    const KIND: &'static str = "test-polls";
    type Params = PollsParams;

    async fn run(&self, ctx: &StepContext, params: PollsParams) -> Result<Outcome, StepError> {
        let polled = ctx.polls;
        if polled < params.polls {
            return Ok(Outcome::wait(
                ctx,
                params.interval.0,
                format!("not ready yet ({polled} of {} polls)", params.polls),
            ));
        }
        Ok(Outcome::Done(
            json!({ "polls": polled, "attempt": ctx.attempt }),
        ))
    }
}
