//! The contract between the runner and a step kind: a step executes one attempt
//! and returns exactly one [`Outcome`]; the runner maps each outcome to exactly
//! one state transition.
//!
//! A [`Step`] returns `Result<Outcome, StepError>` so it can use `?`; the blanket
//! [`StepKind`] impl is the one place an error becomes `Retry` or `Fail`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubwright_state::model::{Environment, ErrorClass, StepFailure};
use hubwright_state::store::effects::CallingOut;
use hubwright_state::{Clock, Store};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::cause::Cause;
use crate::error_text::sanitize;

/// What one execution of a step came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The step's effect is in place; `output` is committed and later steps can
    /// read it.
    Done(Value),
    /// Not ready yet (a hub still starting, a namespace still terminating): poll
    /// again at `until`. Does not use up an attempt.
    Wait {
        /// When to execute the step again.
        until: DateTime<Utc>,
        /// What is being waited for, for the timeline.
        reason: String,
    },
    /// A transient error: retried with backoff while attempts remain.
    Retry(StepError),
    /// A permanent error: the run stops in `failed` for an operator.
    Fail(StepError),
}

impl Outcome {
    /// Maps an error to `Retry` or `Fail` by the class it was born with.
    pub fn from_error(error: StepError) -> Self {
        match error.class {
            ErrorClass::Retryable => Self::Retry(error),
            ErrorClass::Permanent => Self::Fail(error),
        }
    }

    /// A teardown step's outcome when what it removes was never made: its
    /// provisioning counterpart never called out.
    pub fn never_created() -> Self {
        Self::Done(serde_json::json!({ "skipped": "never created" }))
    }

    /// Poll again after `after`.
    pub fn wait(ctx: &StepContext, after: Duration, reason: impl Into<String>) -> Self {
        let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        Self::Wait {
            until: ctx.now() + after,
            reason: sanitize(&reason.into()),
        }
    }
}

/// An error a step reports, classified where it is born. Its message is
/// bounded and stripped of anything like Secret data when it is made
/// ([`crate::error_text`]): it often quotes what a cluster or tool said.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// Retryable or permanent.
    pub class: ErrorClass,
    /// Shown to operators verbatim; never a secret.
    pub message: String,
    /// Structured detail (status codes, object names); never a secret.
    pub detail: Option<Value>,
    /// How long the far side asked us to wait before trying again (a 429 or
    /// 503 with `Retry-After`): the runner schedules the retry no sooner.
    pub retry_after: Option<Duration>,
    /// Why, when the code that made the error knows better than its
    /// detail's status says ([`StepError::cause`]).
    pub cause: Option<Cause>,
}

impl StepError {
    /// A transient error.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Retryable,
            message: sanitize(&message.into()),
            detail: None,
            retry_after: None,
            cause: None,
        }
    }

    /// An error retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            message: sanitize(&message.into()),
            detail: None,
            retry_after: None,
            cause: None,
        }
    }

    /// Adds structured detail.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Asks the runner to wait at least `after` before the next attempt, as the
    /// server that refused the call said.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Says why, for the `reason` label of step metrics.
    pub fn with_cause(mut self, cause: Cause) -> Self {
        self.cause = Some(cause);
        self
    }

    /// Why the step failed: the cause it was given, else the one its
    /// detail's status implies ([`Cause::of_detail`]).
    pub fn cause(&self) -> Cause {
        self.cause
            .unwrap_or_else(|| Cause::of_detail(self.detail.as_ref()))
    }

    /// As recorded in the database.
    pub fn to_failure(&self) -> StepFailure {
        StepFailure {
            class: self.class,
            // Again, for a message changed after it was made.
            message: sanitize(&self.message),
            detail: self.detail.clone(),
        }
    }
}

/// What a step knows about the execution it is part of.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The run.
    pub run_id: Uuid,
    /// The step's position.
    pub step_idx: i32,
    /// The step's name in the workflow.
    pub step_name: String,
    /// Attempts so far, this one included.
    pub attempt: i32,
    /// Whether this execution polls after an earlier `Wait`.
    pub is_poll: bool,
    /// Polls so far (executions after a `Wait`), this one included.
    pub polls: i32,
    /// When the step first started, across attempts, polls and workers.
    pub first_started_at: DateTime<Utc>,
    /// The run's validated parameters.
    pub input: Arc<Value>,
    /// The worker executing it.
    pub worker_id: Arc<str>,
    // Not public: a step reads time through `now()` and the database through
    // the methods below, so neither can be swapped under a running step.
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Store,
}

impl StepContext {
    /// The context of a first attempt of step `step_name` (index 0) of run
    /// `run_id`, starting now by `clock`, with the run's validated `input`, on
    /// worker `local`. Set the public fields for any other execution (a later
    /// attempt, a poll).
    ///
    /// The runner builds one per execution from the claim; tests build one to
    /// execute a single step kind (see `hubwright_testkit::work`).
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        run_id: Uuid,
        step_name: impl Into<String>,
        input: Value,
    ) -> Self {
        Self {
            run_id,
            step_idx: 0,
            step_name: step_name.into(),
            attempt: 1,
            is_poll: false,
            polls: 0,
            first_started_at: clock.now(),
            input: Arc::new(input),
            worker_id: Arc::from("local"),
            clock,
            store,
        }
    }

    /// The current time from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The environment the run works on. A run without one cannot execute an
    /// environment's steps: that is a permanent error.
    pub async fn environment(&self) -> Result<Environment, StepError> {
        match self.store.run_environment(self.run_id).await {
            Ok(Some(environment)) => Ok(environment),
            Ok(None) => Err(StepError::permanent(format!(
                "step {} works on an environment, and run {} has none",
                self.step_name, self.run_id
            ))),
            Err(err) => Err(StepError::retryable(format!(
                "reading the run's environment: {err}"
            ))),
        }
    }

    /// Outputs of the run's succeeded steps, by step name.
    pub async fn outputs(&self) -> Result<serde_json::Map<String, Value>, StepError> {
        self.store
            .step_outputs(self.run_id)
            .await
            .map_err(|err| StepError::retryable(format!("reading earlier outputs: {err}")))
    }

    /// Records that this step, of `kind`, is about to change `what` beyond
    /// hubwright (never a secret). A step that creates what a teardown step
    /// undoes calls it before its first call out, after everything that can
    /// fail without calling out (configuration, templates, binaries): the
    /// teardown step skips its work when no such record exists
    /// ([`StepContext::ever_called_out`]). Once per run and step; cheap to
    /// call on every attempt.
    pub async fn calling_out(&self, kind: &str, what: &str) -> Result<(), StepError> {
        let call = CallingOut {
            run_id: self.run_id,
            step_idx: self.step_idx,
            kind,
            actor: &self.worker_id,
            what,
        };
        self.store
            .record_calling_out(call, self.now())
            .await
            .map_err(|err| StepError::retryable(format!("recording the call out: {err}")))
    }

    /// Whether a step of `kind` ever called out for this run's environment,
    /// in any run (see [`StepContext::calling_out`]). A teardown step asks
    /// about its provisioning counterpart: when it never called out, nothing
    /// it makes can exist, and the teardown step is done without calling out
    /// itself ([`Outcome::never_created`]), even where the cluster or the
    /// binaries it would need are missing.
    pub async fn ever_called_out(&self, kind: &str) -> Result<bool, StepError> {
        let env = self.environment().await?;
        self.store
            .ever_called_out(env.id, kind)
            .await
            .map_err(|err| StepError::retryable(format!("reading what provisioning made: {err}")))
    }
}

/// A boxed future, so step kinds can live behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A step kind behind `dyn`: what the registry stores. Implement [`Step`] instead;
/// every `Step` is a `StepKind`.
pub trait StepKind: Send + Sync + 'static {
    /// The name workflow files use.
    fn kind(&self) -> &'static str;
    /// Checks a step's `with:` parameters; the error names the field and the rule.
    fn validate(&self, params: &Value) -> Result<(), String>;
    /// Executes one attempt.
    fn execute<'a>(&'a self, ctx: &'a StepContext, params: &'a Value) -> BoxFuture<'a, Outcome>;
}

/// A step kind with typed parameters.
pub trait Step: Send + Sync + 'static {
    /// The name workflow files use.
    const KIND: &'static str;
    /// The `with:` parameters; use `#[serde(deny_unknown_fields)]`.
    type Params: DeserializeOwned + Send + Sync;
    /// Executes one attempt. Must be idempotent: any await may be the last.
    /// An error becomes `Retry` or `Fail` by its class.
    fn run(
        &self,
        ctx: &StepContext,
        params: Self::Params,
    ) -> impl Future<Output = Result<Outcome, StepError>> + Send;
}

impl<S: Step> StepKind for S {
    fn kind(&self) -> &'static str {
        S::KIND
    }

    fn validate(&self, params: &Value) -> Result<(), String> {
        serde_json::from_value::<S::Params>(params.clone())
            .map(drop)
            .map_err(|err| err.to_string())
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext, params: &'a Value) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match serde_json::from_value::<S::Params>(params.clone()) {
                Ok(params) => match self.run(ctx, params).await {
                    Ok(outcome) => outcome,
                    Err(error) => Outcome::from_error(error),
                },
                // Validated at start-up, so this means the snapshot predates a
                // change to the kind's parameters.
                Err(err) => Outcome::Fail(StepError::permanent(format!(
                    "parameters of step {} do not fit kind `{}`: {err}",
                    ctx.step_name,
                    S::KIND
                ))),
            }
        })
    }
}
