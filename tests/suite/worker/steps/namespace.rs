//! `namespace` and `namespace-delete` against the Kubernetes stand-in (or a
//! real cluster with `KUBECONFIG`).

use std::time::Duration;

use hubwright_sandbox::apiserver::TestCluster;
use hubwright_state::ManualClock;
use hubwright_testkit::TestDatabase;
use hubwright_testkit::work::{TestEnvironment, WorkRun};
use hubwright_worker::Outcome;
use hubwright_worker::kubernetes::namespace::{ENVIRONMENT_LABEL, MANAGED_BY};
use hubwright_worker::kubernetes::{NamespaceDeleteStep, NamespaceStep};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{cluster, done, failed, setup, waiting};

/// The finalizer a test holds a namespace in `Terminating` with.
const HOLD: &str = "hubwright.io/test-hold";

/// Long enough for a real cluster to finish deleting a namespace.
const WITHIN: Duration = Duration::from_secs(90);

fn params() -> Value {
    json!({
        "quota": { "limits.cpu": "{cpu_limit}", "pods": "8" },
        "container_limits": { "max": { "cpu": "{cpu_limit}" } },
    })
}

fn environment(cluster: &TestCluster) -> TestEnvironment {
    TestEnvironment::named(&cluster.unique_name("steps"))
        .with_parameters(json!({ "cpu_limit": "2" }))
}

/// A run for a fresh environment on `cluster`, and its namespace's name.
async fn environment_run(
    db: &TestDatabase,
    clock: &ManualClock,
    cluster: &TestCluster,
) -> (WorkRun, String) {
    let run = WorkRun::builder(&db.store, clock)
        .environment(environment(cluster))
        .start()
        .await;
    let name = run.environment().unwrap().namespace.clone().unwrap();
    cluster.delete_on_drop(&name);
    (run, name)
}

/// Executes `namespace-delete` until it is no longer waiting; real time
/// passes between polls (the namespace controller works on its own clock).
async fn delete_until_settled(
    run: &mut WorkRun,
    step: &NamespaceDeleteStep,
    params: Value,
) -> Outcome {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let outcome = run.work(step, params.clone()).await;
        if !matches!(outcome, Outcome::Wait { .. }) || tokio::time::Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        run.poll();
    }
}

#[tokio::test]
async fn namespace_creates_the_labelled_namespace_with_quota_limits_and_ingress_policies() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let run = WorkRun::builder(&db.store, &clock)
        .environment(environment(&cluster))
        .start()
        .await;
    let env = run.environment().unwrap().clone();
    let name = env.namespace.clone().unwrap();

    let output = done(run.work(&NamespaceStep::new(clients), params()).await);

    let client = cluster.client().await.unwrap();
    let ns = Api::<Namespace>::all(client.clone())
        .get(&name)
        .await
        .unwrap();
    assert_eq!(
        output,
        json!({
            "cluster": "default",
            "namespace": name,
            "uid": ns.metadata.uid,
            "objects": [
                "resourcequotas/hubwright",
                "limitranges/hubwright",
                "networkpolicies/hubwright-default-deny-ingress",
                "networkpolicies/hubwright-allow-proxy",
            ],
        })
    );
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(labels[MANAGED_BY.0], MANAGED_BY.1);
    assert_eq!(labels[ENVIRONMENT_LABEL], env.id.to_string());
    assert_eq!(labels["hubwright.io/owner"], "alice_example.com");
    assert_eq!(
        ns.metadata.annotations.unwrap()["hubwright.io/request-id"],
        run.run_id().to_string()
    );

    let quota = Api::<ResourceQuota>::namespaced(client.clone(), &name)
        .get("hubwright")
        .await
        .unwrap();
    let hard = quota.spec.unwrap().hard.unwrap();
    assert_eq!(hard["limits.cpu"].0, "2", "filled from the request");
    assert_eq!(hard["pods"].0, "8");
    let limits = Api::<LimitRange>::namespaced(client.clone(), &name)
        .get("hubwright")
        .await
        .unwrap();
    let limit = &limits.spec.unwrap().limits[0];
    assert_eq!(limit.type_, "Container");
    assert_eq!(limit.max.as_ref().unwrap()["cpu"].0, "2");
    let admit = Api::<NetworkPolicy>::namespaced(client, &name)
        .get("hubwright-allow-proxy")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(
        serde_json::to_value(&admit.pod_selector).unwrap(),
        json!({ "matchLabels": { "app": "jupyterhub", "component": "proxy" } })
    );
    assert_eq!(
        serde_json::to_value(&admit.ingress).unwrap(),
        json!([{ "ports": [{ "protocol": "TCP", "port": 8000 }] }])
    );
    db.drop_now().await;
}

#[tokio::test]
async fn namespace_applied_again_changes_nothing() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let (mut run, name) = environment_run(&db, &clock, &cluster).await;
    let step = NamespaceStep::new(clients);
    let first = done(run.work(&step, params()).await);
    let api = Api::<Namespace>::all(cluster.client().await.unwrap());
    let version = api.get(&name).await.unwrap().metadata.resource_version;

    run.next_attempt();
    assert_eq!(done(run.work(&step, params()).await), first);
    assert_eq!(
        api.get(&name).await.unwrap().metadata.resource_version,
        version
    );
    db.drop_now().await;
}

#[tokio::test]
async fn namespace_refuses_to_adopt_a_namespace_hubwright_did_not_make() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let (run, name) = environment_run(&db, &clock, &cluster).await;
    let api = Api::<Namespace>::all(cluster.client().await.unwrap());
    let mut theirs = Namespace::default();
    theirs.metadata.name = Some(name.clone());
    api.create(&PostParams::default(), &theirs).await.unwrap();

    let error = failed(run.work(&NamespaceStep::new(clients), params()).await);
    assert_eq!(
        error.message,
        format!(
            "namespace `{name}` on cluster `default` already exists and it is not managed by hubwright (label app.kubernetes.io/managed-by=<none>); hubwright never adopts or changes it"
        )
    );
    assert_eq!(
        error.detail,
        Some(json!({ "namespace": name, "cluster": "default" }))
    );
    db.drop_now().await;
}

#[tokio::test]
async fn namespace_delete_removes_the_namespace_and_a_missing_one_counts_as_deleted() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let (mut run, name) = environment_run(&db, &clock, &cluster).await;
    done(
        run.work(&NamespaceStep::new(clients.clone()), params())
            .await,
    );

    let delete = NamespaceDeleteStep::new(clients);
    let gone = json!({ "cluster": "default", "namespace": name, "deleted": true });
    assert_eq!(
        done(delete_until_settled(&mut run, &delete, json!({})).await),
        gone
    );
    let api = Api::<Namespace>::all(cluster.client().await.unwrap());
    assert!(api.get_opt(&name).await.unwrap().is_none());

    run.next_attempt();
    assert_eq!(done(run.work(&delete, json!({})).await), gone);
    db.drop_now().await;
}

#[tokio::test]
async fn namespace_delete_waits_on_a_finalizer_and_fails_past_its_deadline_naming_it() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let (mut run, name) = environment_run(&db, &clock, &cluster).await;
    done(
        run.work(&NamespaceStep::new(clients.clone()), params())
            .await,
    );
    let api = Api::<Namespace>::all(cluster.client().await.unwrap());
    let finalizers = |value: Value| json!({ "metadata": { "finalizers": value } });
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(finalizers(json!([HOLD]))),
    )
    .await
    .unwrap();

    let delete = NamespaceDeleteStep::new(clients);
    let params = json!({ "deadline": "1m" });
    let (until, reason) = waiting(run.work(&delete, params.clone()).await);
    assert_eq!(
        until,
        hubwright_state::Clock::now(run.clock()) + chrono::Duration::seconds(2)
    );
    assert!(
        reason.starts_with(&format!("namespace `{name}` terminating (finalizers: "))
            && reason.contains(HOLD),
        "{reason}"
    );

    clock.advance(chrono::Duration::seconds(61));
    run.poll();
    let error = failed(run.work(&delete, params).await);
    assert!(
        error.message.starts_with(&format!(
            "namespace `{name}` on cluster `default` is still terminating after 1m; held by "
        )) && error.message.contains(HOLD),
        "{}",
        error.message
    );

    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(finalizers(Value::Null)),
    )
    .await
    .unwrap();
    db.drop_now().await;
}
