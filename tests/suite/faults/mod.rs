//! The fault matrix: a fault at each real edge — the Kubernetes API, the
//! identity provider, helm, the hub's health — and the environment ends
//! `ready` when the fault passes, or `failed` with its cause named when it
//! does not (or a deadline runs out); never stuck. The cells other areas'
//! tests already prove are listed, with their tests, in
//! `docs/reliability.md`; these are the rest.

mod helm;
mod idp;
mod kubernetes;

use std::time::Duration;

use hubwright_state::Store;
use hubwright_state::model::{EnvironmentPhase, Event, RunState};
use hubwright_testkit::wait;
use uuid::Uuid;

/// Deadline for an environment to settle.
const WITHIN: Duration = Duration::from_secs(90);

/// The run's `step_retry_scheduled` events, oldest first.
async fn retries(store: &Store, run_id: Uuid) -> Vec<Event> {
    store
        .events(run_id, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.kind == "step_retry_scheduled")
        .collect()
}

/// Until the run is `state`, then checks the environment's phase follows.
async fn settles(store: &Store, env: Uuid, run_id: Uuid, state: RunState, phase: EnvironmentPhase) {
    let run = wait::run_state(store, run_id, state, WITHIN).await;
    let environment = store.environment(env).await.unwrap();
    assert_eq!(
        environment.phase, phase,
        "run {run_id} is {state} ({:?})",
        run.error
    );
}
