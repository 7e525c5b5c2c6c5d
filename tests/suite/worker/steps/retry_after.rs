//! A server's `Retry-After`: a 429 from Kubernetes becomes a `Retry` that
//! carries it, and the runner schedules the next attempt no sooner, even when
//! the step's backoff is shorter.

use std::sync::Arc;
use std::time::Duration;

use hubwright_sandbox::apiserver::{Fault, Verb};
use hubwright_state::model::{Run, RunState, StepState};
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::{Clock, Store};
use hubwright_testkit::harness::{catalog, fast_config, registry};
use hubwright_testkit::work::{TestEnvironment, WorkRun};
use hubwright_testkit::{scratch_dir, write_workflow};
use hubwright_worker::Worker;
use hubwright_worker::kubernetes::NamespaceStep;
use serde_json::json;
use uuid::Uuid;

use super::{cluster, done, retried, setup};

#[tokio::test]
async fn a_429_with_retry_after_from_kubernetes_is_a_retry_that_carries_it() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let Some(standin) = cluster.standin() else {
        eprintln!("skipped: needs the stand-in's fault injection (KUBECONFIG is set)");
        return;
    };
    let mut run = WorkRun::builder(&db.store, &clock)
        .environment(TestEnvironment::named(&cluster.unique_name("steps")))
        .start()
        .await;
    let name = run.environment().unwrap().namespace.clone().unwrap();
    cluster.delete_on_drop(&name);
    standin.inject(
        Fault::too_many_requests(7)
            .on_verb(Verb::Create)
            .on_resource("namespaces")
            .times(1),
    );
    let step = NamespaceStep::new(clients);

    let error = retried(run.work(&step, json!({})).await);
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
    assert!(
        error.message.starts_with(&format!(
            "cluster `default` answered 429 TooManyRequests to create namespaces `{name}`: "
        )),
        "{}",
        error.message
    );
    assert_eq!(error.detail.as_ref().unwrap()["code"], 429);

    // The throttling is over: the next attempt goes through.
    run.next_attempt();
    assert_eq!(done(run.work(&step, json!({})).await)["namespace"], name);
    db.drop_now().await;
}

#[tokio::test]
async fn the_runner_schedules_a_retry_no_sooner_than_retry_after_even_when_backoff_is_shorter() {
    let (db, clock) = setup().await;
    let workflows = write_workflow(
        &scratch_dir("retry-after"),
        "paced",
        r#"
name: paced
workflows:
  provision:
    steps:
      - name: paced
        kind: test-flaky
        with: { failures: 1, retry_after: 10m }
        retry: { max_attempts: 3, initial_delay: 10ms, max_delay: 10ms, jitter: false }
      - name: unpaced
        kind: test-flaky
        with: { failures: 1 }
        retry: { max_attempts: 3, initial_delay: 10ms, max_delay: 10ms, jitter: false }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let (snapshot, definition_id) = catalog.definition("paced", "provision").unwrap();
    let started = clock.now();
    let run_id = db
        .store
        .enqueue(
            &NewRun::new(definition_id, snapshot, json!({}), "test", started),
            started,
        )
        .await
        .unwrap();
    // The worker reads the manual clock: nothing is due until the test moves it.
    let worker = Worker::new(
        db.store.clone(),
        registry(),
        fast_config("w1"),
        Arc::new(clock.clone()),
    )
    .unwrap()
    .spawn();

    let run = retry_scheduled(&db.store, run_id, 0).await;
    assert_eq!(run.next_run_at, started + chrono::Duration::minutes(10));
    assert_eq!(
        db.store.steps(run_id).await.unwrap()[0]
            .error
            .as_ref()
            .map(|error| error.message.as_str()),
        Some("transient failure 1 of 1")
    );

    // Ten minutes on the retry runs and succeeds; the next step's failure,
    // without Retry-After, follows the policy's 10ms backoff.
    clock.advance(chrono::Duration::minutes(10));
    let run = retry_scheduled(&db.store, run_id, 1).await;
    assert_eq!(
        run.next_run_at,
        started + chrono::Duration::minutes(10) + chrono::Duration::milliseconds(10)
    );
    worker.shutdown().await.unwrap();
    db.drop_now().await;
}

/// Long enough for an in-process worker to claim, execute and commit.
const WITHIN_RETRY: Duration = Duration::from_secs(30);

/// Until step `idx` has failed its first attempt and the run waits, pending,
/// for the retry.
async fn retry_scheduled(store: &Store, run_id: Uuid, idx: i32) -> Run {
    let deadline = tokio::time::Instant::now() + WITHIN_RETRY;
    loop {
        // Steps first: a run read before them may predate the claim whose
        // retry the steps then show.
        let steps = store.steps(run_id).await.unwrap();
        let run = store.run(run_id).await.unwrap();
        let step = &steps[usize::try_from(idx).unwrap()];
        if run.state == RunState::Pending
            && run.current_step == idx
            && (step.state, step.attempts) == (StepState::Pending, 1)
        {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retry of step {idx} was scheduled: {run:#?} {steps:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
