//! The `work` helpers themselves: the context a step gets is the one a
//! worker's claim would give it.

use hubwright_state::clusters::Clusters;
use hubwright_state::model::RunState;
use hubwright_testkit::work::{TestEnvironment, WORKER, WorkRun};
use hubwright_worker::kubernetes::{ClusterClients, NamespaceStep};
use serde_json::json;

use super::{failed, setup};

#[tokio::test]
async fn a_work_run_gives_the_step_its_environment_input_and_earlier_outputs() {
    let (db, clock) = setup().await;
    let run = WorkRun::builder(&db.store, &clock)
        .environment(
            TestEnvironment::named("lab-7").with_parameters(json!({ "memory_limit": "2Gi" })),
        )
        .output("namespace", json!({ "namespace": "lab-7" }))
        .output("idp", json!({ "client_id": "abc" }))
        .step("hub")
        .start()
        .await;
    let ctx = run.ctx();

    let env = ctx.environment().await.unwrap();
    assert_eq!(run.environment().map(|e| e.id), Some(env.id));
    assert_eq!(env.name, "lab-7");
    assert_eq!(env.namespace.as_deref(), Some("lab-7"));
    assert_eq!(env.cluster, "default");
    assert_eq!(*ctx.input, json!({ "memory_limit": "2Gi" }));
    assert_eq!(
        ctx.outputs().await.unwrap(),
        json!({ "namespace": { "namespace": "lab-7" }, "idp": { "client_id": "abc" } })
            .as_object()
            .unwrap()
            .clone()
    );
    assert_eq!((ctx.step_idx, ctx.step_name.as_str()), (2, "hub"));
    assert_eq!((ctx.attempt, ctx.polls, ctx.is_poll), (1, 0, false));
    assert_eq!(
        ctx.first_started_at,
        hubwright_state::Clock::now(run.clock())
    );
    assert_eq!(&*ctx.worker_id, WORKER);

    // The run is claimed like a worker's: running, at the step under test.
    let row = db.store.run(run.run_id()).await.unwrap();
    assert_eq!((row.state, row.current_step), (RunState::Running, 2));
    assert_eq!(row.lease_owner.as_deref(), Some(WORKER));
    db.drop_now().await;
}

#[tokio::test]
async fn a_step_that_needs_an_environment_fails_permanently_on_a_run_without_one() {
    let (db, clock) = setup().await;
    let run = WorkRun::builder(&db.store, &clock).step("ns").start().await;
    let step = NamespaceStep::new(ClusterClients::new(Clusters::default()));
    let error = failed(run.work(&step, json!({})).await);
    assert_eq!(
        error.message,
        format!(
            "step ns works on an environment, and run {} has none",
            run.run_id()
        )
    );
    db.drop_now().await;
}
