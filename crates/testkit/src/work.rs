//! One step kind executed alone, the way River's `rivertest.Worker` works one
//! job: through the real [`StepKind::execute`] (parameters given as JSON, so
//! they are deserialized and checked exactly as in production), against a
//! test database and a [`ManualClock`], returning the [`Outcome`] instead of
//! committing it.
//!
//! [`work_step`] is the one-shot form, for kinds that need nothing but their
//! parameters. A [`WorkRun`] is a real run row for kinds that read their
//! environment (`ctx.environment()`) or earlier steps' outputs
//! (`ctx.outputs()`), and executes a kind again as a poll or a later attempt.
//!
//! ```no_run
//! # async fn example() {
//! use chrono::Duration;
//! use hubwright_state::{Clock, ManualClock, SystemClock};
//! use hubwright_testkit::TestDatabase;
//! use hubwright_testkit::work::{WorkRun, work_step};
//! use hubwright_worker::Outcome;
//! use hubwright_worker::builtin::{Noop, Sleep};
//! use serde_json::json;
//!
//! let db = TestDatabase::create().await;
//! let clock = ManualClock::new(SystemClock.now());
//! assert_eq!(
//!     work_step(&db.store, &clock, &Noop, json!({})).await,
//!     Outcome::Done(json!({}))
//! );
//!
//! // A durable sleep waits, then is done once the clock has moved on.
//! let mut run = WorkRun::builder(&db.store, &clock).start().await;
//! let slept = run.work(&Sleep, json!({ "duration": "1m" })).await;
//! assert!(matches!(slept, Outcome::Wait { .. }));
//! clock.advance(Duration::minutes(1));
//! run.poll();
//! assert!(matches!(run.work(&Sleep, json!({ "duration": "1m" })).await, Outcome::Done(_)));
//! # }
//! ```

use std::sync::Arc;

use hubwright_sandbox::apiserver::TestCluster;
use hubwright_state::clusters::{ClusterConfig, Clusters, DEFAULT_CLUSTER};
use hubwright_state::model::Environment;
use hubwright_state::store::checkpoint::StepSuccess;
use hubwright_state::store::enqueue::{NewRun, new_id};
use hubwright_state::store::environments::NewEnvironment;
use hubwright_state::store::lease::StepClaim;
use hubwright_state::workflow::{Dur, RetryPolicy, Snapshot, StepDef};
use hubwright_state::{Clock, ManualClock, Store};
use hubwright_worker::{Outcome, StepContext, StepKind};
use serde_json::{Value, json};
use uuid::Uuid;

/// The worker id a [`WorkRun`] claims its run as.
pub const WORKER: &str = "work-step";

/// The kind recorded for the step under test: the run row is made before the
/// test says which kind it works, and any number of kinds may be worked on
/// one run.
const STEP_KIND: &str = "work-step";

/// Executes `kind` once with `params`, as the first attempt of a fresh run
/// without an environment, at `clock`'s time. Returns what the step came to.
pub async fn work_step(
    store: &Store,
    clock: &ManualClock,
    kind: &(impl StepKind + ?Sized),
    params: Value,
) -> Outcome {
    WorkRun::builder(store, clock)
        .start()
        .await
        .work(kind, params)
        .await
}

/// The worker's clusters configuration with one cluster, `default`:
/// `cluster`, for step kinds built over `ClusterClients` in a test.
pub fn clusters(cluster: &TestCluster) -> Clusters {
    Clusters::single(
        DEFAULT_CLUSTER,
        ClusterConfig {
            kubeconfig: Some(cluster.kubeconfig().to_owned()),
            context: cluster.context().map(str::to_owned),
            ..ClusterConfig::default()
        },
    )
}

/// The environment a [`WorkRun`] works on, as it is requested.
#[derive(Debug, Clone)]
pub struct TestEnvironment {
    /// Its name.
    pub name: String,
    /// Who asked for it.
    pub owner: String,
    /// The template it is said to come from.
    pub template: String,
    /// The cluster, as the worker's clusters configuration names it.
    pub cluster: String,
    /// Its namespace on that cluster.
    pub namespace: String,
    /// The request's resolved parameters: the run's input.
    pub parameters: Value,
}

impl TestEnvironment {
    /// `name` on cluster `default` in namespace `name`, owned by
    /// `alice@example.com`, of template `work`, without parameters.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            owner: "alice@example.com".to_owned(),
            template: "work".to_owned(),
            cluster: DEFAULT_CLUSTER.to_owned(),
            namespace: name.to_owned(),
            parameters: json!({}),
        }
    }

    /// In namespace `namespace` instead.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// With the request's `parameters` (a JSON object).
    pub fn with_parameters(mut self, parameters: Value) -> Self {
        self.parameters = parameters;
        self
    }
}

/// How to make a [`WorkRun`]: see [`WorkRun::builder`].
#[derive(Debug)]
pub struct WorkRunBuilder<'a> {
    store: &'a Store,
    clock: ManualClock,
    step_name: String,
    input: Value,
    environment: Option<TestEnvironment>,
    outputs: Vec<(String, Value)>,
}

impl WorkRunBuilder<'_> {
    /// The name of the step under test in the workflow (default `step`).
    pub fn step(mut self, name: &str) -> Self {
        self.step_name = name.to_owned();
        self
    }

    /// The run's input, for a run without an environment (with one, the
    /// input is the environment's parameters, as in production).
    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    /// The run works on `environment`, requested as the API does.
    pub fn environment(mut self, environment: TestEnvironment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// An earlier step `name` of the run succeeded with `output`: what
    /// `ctx.outputs()` reads. Earlier steps run in the order given.
    pub fn output(mut self, name: &str, output: Value) -> Self {
        self.outputs.push((name.to_owned(), output));
        self
    }

    /// Makes the run in the database and claims it the way a worker does,
    /// committing the earlier steps' outputs on the way to the step under
    /// test, whose first attempt is then due.
    ///
    /// The claim takes the run due first, so the database must hold no other
    /// run due now: give each test a [`crate::TestDatabase`] of its own.
    pub async fn start(self) -> WorkRun {
        let now = self.clock.now();
        let step = |name: &str, kind: &str| StepDef {
            name: name.to_owned(),
            kind: kind.to_owned(),
            params: json!({}),
            retry: RetryPolicy::default(),
            timeout: Dur::from_secs(60),
        };
        let mut steps: Vec<StepDef> = self
            .outputs
            .iter()
            .map(|(name, _)| step(name, "noop"))
            .collect();
        steps.push(step(&self.step_name, STEP_KIND));
        let template = self
            .environment
            .as_ref()
            .map_or("work", |env| env.template.as_str());
        let snapshot = Snapshot {
            template: template.to_owned(),
            workflow: "work".to_owned(),
            steps,
        };
        let definition_id = self
            .store
            .register_definition(&snapshot)
            .await
            .expect("register the work definition");

        let (run_id, environment) = match &self.environment {
            Some(env) => {
                let id = new_id();
                let accepted = self
                    .store
                    .request_environment(
                        &NewEnvironment {
                            id,
                            name: &env.name,
                            owner: &env.owner,
                            template: &env.template,
                            cluster: &env.cluster,
                            namespace: &env.namespace,
                            parameters: env.parameters.clone(),
                            expires_at: now + chrono::Duration::hours(1),
                            traceparent: None,
                        },
                        (&snapshot, definition_id),
                        None,
                        now,
                    )
                    .await
                    .expect("request the environment");
                let environment = self
                    .store
                    .environment(id)
                    .await
                    .expect("read the environment back");
                (accepted.run_id, Some(environment))
            }
            None => {
                let run = NewRun::new(definition_id, &snapshot, self.input.clone(), "test", now);
                let run_id = self.store.enqueue(&run, now).await.expect("enqueue");
                (run_id, None)
            }
        };

        // No worker heartbeats this lease; it only has to outlast the test.
        let lease = chrono::Duration::days(1);
        let claimed = self
            .store
            .claim(WORKER, 1, lease, now)
            .await
            .expect("claim the work run");
        let Some(run) = claimed.into_iter().next().filter(|run| run.id == run_id) else {
            panic!("the claim did not take run {run_id}: the test database holds another due run");
        };
        let mut claim = run.step;
        for (name, output) in self.outputs {
            let advanced = self
                .store
                .commit_successes(
                    &[StepSuccess {
                        run_id,
                        token: run.token,
                        step_idx: claim.idx,
                        output,
                    }],
                    now,
                )
                .await
                .expect("commit an earlier step");
            claim = advanced
                .first()
                .and_then(|advanced| advanced.next)
                .unwrap_or_else(|| panic!("committing step {name} started no next step"));
        }

        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let mut ctx =
            StepContext::new(self.store.clone(), clock, run_id, self.step_name, run.input);
        ctx.worker_id = Arc::from(WORKER);
        set_claim(&mut ctx, claim);
        WorkRun {
            ctx,
            clock: self.clock,
            environment,
        }
    }
}

fn set_claim(ctx: &mut StepContext, claim: StepClaim) {
    ctx.step_idx = claim.idx;
    ctx.attempt = claim.attempts;
    ctx.polls = claim.polls;
    ctx.is_poll = claim.is_poll;
    ctx.first_started_at = claim.first_started_at;
}

/// A run in the test database whose current step is the one under test: any
/// step kind can be worked on it, as often as the test likes.
#[derive(Debug)]
pub struct WorkRun {
    ctx: StepContext,
    clock: ManualClock,
    environment: Option<Environment>,
}

impl WorkRun {
    /// A run of one step, `step`, without an environment, at `clock`'s time;
    /// see [`WorkRunBuilder`] for the rest.
    pub fn builder<'a>(store: &'a Store, clock: &ManualClock) -> WorkRunBuilder<'a> {
        WorkRunBuilder {
            store,
            clock: clock.clone(),
            step_name: "step".to_owned(),
            input: json!({}),
            environment: None,
            outputs: Vec::new(),
        }
    }

    /// Executes `kind` with `params` once, in the current execution's context.
    pub async fn work(&self, kind: &(impl StepKind + ?Sized), params: Value) -> Outcome {
        kind.execute(&self.ctx, &params).await
    }

    /// The next execution is a poll after a `Wait`, as when the runner claims
    /// a waiting run: one more poll, the same attempt.
    pub fn poll(&mut self) {
        self.ctx.is_poll = true;
        self.ctx.polls += 1;
    }

    /// The next execution is the next attempt, as after a `Retry`.
    pub fn next_attempt(&mut self) {
        self.ctx.is_poll = false;
        self.ctx.attempt += 1;
    }

    /// What the step under test sees.
    pub fn ctx(&self) -> &StepContext {
        &self.ctx
    }

    /// The run's id.
    pub fn run_id(&self) -> Uuid {
        self.ctx.run_id
    }

    /// The clock the step reads.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The environment the run works on, as the database holds it.
    pub fn environment(&self) -> Option<&Environment> {
        self.environment.as_ref()
    }
}
