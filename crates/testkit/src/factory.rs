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

/// A pending two-step run of alice's, accepted an hour ago at a whole second
/// (so its times compare exactly after the database's microseconds): its id
/// and that time, for tests that replay its timeline at chosen moments.
pub async fn run_accepted_an_hour_ago(store: &Store) -> (Uuid, chrono::DateTime<chrono::Utc>) {
    use chrono::Timelike;
    let now = SystemClock.now();
    let t0 = now.with_nanosecond(0).unwrap_or(now) - chrono::Duration::hours(1);
    let (snapshot, id) = two_steps(store).await;
    let run = store
        .enqueue(&NewRun::new(id, &snapshot, json!({}), "alice", t0), t0)
        .await
        .expect("enqueue");
    (run, t0)
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

/// A new run created by `actor`, due a day ago (so the claim takes it before
/// any run a test made due later), claimed by `worker` with a lease of
/// `lease`: its first step running.
async fn claimed(
    store: &Store,
    actor: &str,
    worker: &str,
    lease: chrono::Duration,
) -> hubwright_state::store::lease::ClaimedRun {
    let now = SystemClock.now();
    let run_id = enqueue_due_at(store, actor, now - chrono::Duration::days(1)).await;
    store
        .claim(worker, 1, lease, now)
        .await
        .expect("claim")
        .into_iter()
        .find(|c| c.id == run_id)
        .expect("claimed the new run")
}

/// A run created by `actor` that `worker` holds, its first step running; the
/// lease runs out after `lease` (negative: it already has, and a rescuer
/// would take the run back).
pub async fn running_run(
    store: &Store,
    actor: &str,
    worker: &str,
    lease: chrono::Duration,
) -> Uuid {
    claimed(store, actor, worker, lease).await.id
}

/// A run created by `actor` whose first step succeeded (its output
/// `{"namespace": "lab-<actor>"}`) and whose second failed permanently with
/// `message`, after `attempts` attempts (1 or more).
pub async fn failed_at_second_step(
    store: &Store,
    actor: &str,
    message: &str,
    attempts: i32,
) -> Uuid {
    use hubwright_state::store::checkpoint::StepSuccess;
    let now = SystemClock.now();
    let run = claimed(store, actor, "factory", chrono::Duration::seconds(30)).await;
    let success = StepSuccess {
        run_id: run.id,
        token: run.token,
        step_idx: 0,
        output: json!({ "namespace": format!("lab-{actor}") }),
    };
    store
        .commit_successes(&[success], now)
        .await
        .expect("the first step succeeds");
    let mut fence = Fence {
        run_id: run.id,
        token: run.token,
        step_idx: 1,
    };
    for attempt in 1..attempts {
        let failure = StepFailure {
            class: ErrorClass::Retryable,
            message: format!("attempt {attempt}: connection refused"),
            detail: None,
        };
        // Due before anything a test made, so the claim below takes it again.
        let retry_at = now - chrono::Duration::days(2);
        store
            .commit_retry(fence, &failure, retry_at, now)
            .await
            .expect("a retry is scheduled");
        fence.token = store
            .claim("factory", 1, chrono::Duration::seconds(30), now)
            .await
            .expect("claim the retry")
            .into_iter()
            .find(|c| c.id == run.id)
            .expect("claimed the retry")
            .token;
    }
    let failure = StepFailure {
        class: ErrorClass::Permanent,
        message: message.to_owned(),
        detail: Some(json!({ "status": 403 })),
    };
    store
        .commit_failure(fence, &failure, now)
        .await
        .expect("fail the run");
    run.id
}
