//! Runs in any state, made directly through the store (no worker), for tests of
//! what reads and operates on runs.

use hubwright_state::model::ErrorClass;
use hubwright_state::model::StepFailure;
use hubwright_state::store::checkpoint::Fence;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::workflow::{Dur, RetryPolicy, Snapshot, StepDef};
use hubwright_state::{Clock, Store, SystemClock};
use serde_json::json;
use uuid::Uuid;

/// A two-step definition of `noop` steps, registered.
pub async fn two_steps(store: &Store) -> (Snapshot, i64) {
    let step = |name: &str| StepDef {
        name: name.to_owned(),
        kind: "noop".to_owned(),
        params: json!({}),
        retry: RetryPolicy::default(),
        timeout: Dur::from_secs(60),
    };
    let snapshot = Snapshot {
        template: "factory".to_owned(),
        workflow: "provision".to_owned(),
        steps: vec![step("first"), step("second")],
    };
    let id = store
        .register_definition(&snapshot)
        .await
        .expect("register definition");
    (snapshot, id)
}

/// A pending run created by `actor`.
pub async fn pending_run(store: &Store, actor: &str) -> Uuid {
    enqueue_due_at(store, actor, SystemClock.now()).await
}

async fn enqueue_due_at(store: &Store, actor: &str, run_at: chrono::DateTime<chrono::Utc>) -> Uuid {
    let (snapshot, id) = two_steps(store).await;
    store
        .enqueue(
            &NewRun::new(id, &snapshot, json!({}), actor, run_at),
            SystemClock.now(),
        )
        .await
        .expect("enqueue")
}

/// A run created by `actor` whose first step failed permanently with `message`.
pub async fn failed_run(store: &Store, actor: &str, message: &str) -> Uuid {
    // Due before anything else, so the claim below takes this run.
    let now = SystemClock.now();
    let run_id = enqueue_due_at(store, actor, now - chrono::Duration::days(1)).await;
    let claimed = store
        .claim("factory", 1, chrono::Duration::seconds(30), now)
        .await
        .expect("claim");
    let run = claimed
        .iter()
        .find(|c| c.id == run_id)
        .expect("claimed the new run");
    let failure = StepFailure {
        class: ErrorClass::Permanent,
        message: message.to_owned(),
        detail: None,
    };
    let fence = Fence {
        run_id,
        token: run.token,
        step_idx: 0,
    };
    store
        .commit_failure(fence, &failure, now)
        .await
        .expect("fail the run");
    run_id
}
