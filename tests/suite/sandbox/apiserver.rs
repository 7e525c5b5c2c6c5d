//! The Kubernetes API stand-in, driven only through the real `kube` client.
//!
//! Every test runs against [`TestCluster::from_env`]: the stand-in, or a real
//! cluster when `KUBECONFIG` is set. Tests that need the stand-in's hooks
//! (faults, request log, history compaction, fast bookmarks) say why they skip.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hubwright_sandbox::apiserver::{Fault, TestCluster, Verb};
use hubwright_testkit::wait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::core::{GroupVersionKind, Status};
use kube::discovery::{Discovery, verbs};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

async fn cluster() -> (TestCluster, Client) {
    let cluster = TestCluster::from_env().await.unwrap();
    let client = cluster.client().await.unwrap();
    (cluster, client)
}

/// Creates a fresh namespace and returns its name.
async fn namespace(cluster: &TestCluster, client: &Client) -> String {
    let name = cluster.unique_name("hw-test");
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
    name
}

async fn cleanup(client: &Client, ns: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await;
}

fn skip(cluster: &TestCluster, why: &str) -> bool {
    if cluster.is_real() {
        eprintln!("skipped on a real cluster: {why}");
        return true;
    }
    false
}

/// The `Status` of an API error; panics on success or another error.
fn status<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn config_map(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({ "metadata": { "name": name }, "data": data })).unwrap()
}

/// Sends a JSON patch (RFC 6902) to `path`; the workspace's kube has no
/// `jsonpatch` feature, so this goes through `Client::request`.
async fn json_patch(client: &Client, path: &str, ops: &Value) -> Result<Value, kube::Error> {
    let req = axum::http::Request::patch(path)
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(ops).unwrap())
        .unwrap();
    client.request::<Value>(req).await
}

fn rv<K: kube::Resource>(obj: &K) -> String {
    obj.meta().resource_version.clone().unwrap()
}

#[tokio::test]
async fn discovery_serves_every_group_to_kube_discovery() {
    let (_cluster, client) = cluster().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");

    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
        let (ar, caps) = discovery.resolve_gvk(&gvk).unwrap();
        assert_eq!(ar.plural, "deployments");
        assert!(caps.supports_operation(verbs::PATCH) && caps.supports_operation(verbs::WATCH));
        for (group, version, kind) in [
            ("", "v1", "Namespace"),
            ("", "v1", "Secret"),
            ("", "v1", "PersistentVolumeClaim"),
            ("networking.k8s.io", "v1", "NetworkPolicy"),
            ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
            ("policy", "v1", "PodDisruptionBudget"),
        ] {
            assert!(
                discovery
                    .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
                    .is_some(),
                "{kind} is discoverable"
            );
        }
    }
}

#[tokio::test]
async fn dynamic_objects_found_by_discovery_can_be_created_and_listed() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ServiceAccount"))
        .unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let sa = DynamicObject::new("hub", &ar);
    let created = api.create(&PostParams::default(), &sa).await.unwrap();
    assert!(created.metadata.uid.is_some());
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert!(names.contains(&"hub".to_owned()));
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn requests_without_the_token_get_401_with_a_status_body() {
    let (cluster, _client) = cluster().await;
    let Some(server) = cluster.standin() else {
        return eprintln!(
            "skipped on a real cluster: needs the stand-in's URL without credentials"
        );
    };
    let url = format!("{}/api/v1/namespaces", server.url());
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Unauthorized");
    assert_eq!(body["code"], 401);
    let resp = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn configmaps_are_created_read_listed_replaced_and_deleted() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &config_map("a", json!({"k": "v"})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some(ns.as_str()));

    let again = status(
        api.create(&PostParams::default(), &config_map("a", json!({})))
            .await,
    );
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(again.message, "configmaps \"a\" already exists");

    let got = api.get("a").await.unwrap();
    assert_eq!(got.data.as_ref().unwrap()["k"], "v");
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(list_rv >= rv(&created).parse().unwrap());

    let mut changed = got.clone();
    changed.data = Some([("k".to_owned(), "w".to_owned())].into());
    let replaced = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(rv(&replaced), rv(&created));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    let deleted = api.delete("a", &DeleteParams::default()).await.unwrap();
    let gone = deleted.right().expect("a Status for an immediate delete");
    assert_eq!(gone.details.unwrap().name, "a");
    let missing = status(api.get("a").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "configmaps \"a\" not found");
    let details = missing.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("a", "configmaps")
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_stale_resource_version_is_a_409_conflict() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let first = api
        .create(&PostParams::default(), &config_map("c", json!({"n": "1"})))
        .await
        .unwrap();
    let mut second = first.clone();
    second.data = Some([("n".to_owned(), "2".to_owned())].into());
    api.replace("c", &PostParams::default(), &second)
        .await
        .unwrap();

    // `first` still carries the old resourceVersion.
    let conflict = status(api.replace("c", &PostParams::default(), &first).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        conflict.message,
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let precondition =
        json!({ "metadata": { "resourceVersion": rv(&first) }, "data": { "n": "3" } });
    let conflict = status(
        api.patch("c", &PatchParams::default(), &Patch::Merge(&precondition))
            .await,
    );
    assert_eq!(conflict.code, 409);
    assert_eq!(api.get("c").await.unwrap().data.unwrap()["n"], "2");
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn invalid_names_are_422_naming_metadata_name() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let bad = status(
        Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &config_map("Bad_Name", json!({})))
            .await,
    );
    assert_eq!((bad.code, bad.reason.as_str()), (422, "Invalid"));
    assert!(bad.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", bad.message);
    let cause = &bad.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldValueInvalid", "metadata.name")
    );

    let ns_bad: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": "has.dots" } })).unwrap();
    let bad = status(
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns_bad)
            .await,
    );
    assert_eq!(bad.code, 422);
    assert!(bad.message.contains("RFC 1123 label"), "{}", bad.message);

    let svc: Service = serde_json::from_value(
        json!({ "metadata": { "name": "1hub" }, "spec": { "ports": [{ "port": 80 }] } }),
    )
    .unwrap();
    let bad = status(
        Api::<Service>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &svc)
            .await,
    );
    assert_eq!(bad.code, 422);
    assert!(bad.message.contains("DNS-1035 label"), "{}", bad.message);
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_body_of_another_kind_or_version_is_400() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let cm = ApiResource::erase::<ConfigMap>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &cm);
    let secret_ar = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    let wrong_kind = DynamicObject::new("x", &secret_ar);
    let bad = status(api.create(&PostParams::default(), &wrong_kind).await);
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));

    let deploy_ar = ApiResource::erase::<Deployment>(&());
    let mut wrong_version = DynamicObject::new("x", &cm);
    wrong_version.types.as_mut().unwrap().api_version = deploy_ar.api_version.clone();
    let bad = status(api.create(&PostParams::default(), &wrong_version).await);
    assert_eq!(bad.code, 400);
    assert_eq!(
        bad.message,
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn unknown_resources_are_404_and_unsupported_verbs_405() {
    let (_cluster, client) = cluster().await;
    let req = axum::http::Request::get("/api/v1/widgets")
        .body(Vec::new())
        .unwrap();
    let e = status(client.request::<Value>(req).await);
    assert_eq!(e.code, 404);
    let req = axum::http::Request::post("/api/v1/namespaces/default/configmaps/x")
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .unwrap();
    let e = status(client.request::<Value>(req).await);
    assert_eq!((e.code, e.reason.as_str()), (405, "MethodNotAllowed"));
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_404_naming_the_namespace() {
    let (cluster, client) = cluster().await;
    let ns = cluster.unique_name("hw-missing");
    let e = status(
        Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &config_map("a", json!({})))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, format!("namespaces \"{ns}\" not found"));
}

#[tokio::test]
async fn a_namespace_is_held_in_terminating_by_a_finalizer_and_released_by_removing_it() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let created = namespaces.get(&ns).await.unwrap();
    assert_eq!(
        created.status.as_ref().unwrap().phase.as_deref(),
        Some("Active")
    );
    assert_eq!(
        created.spec.as_ref().unwrap().finalizers.as_deref(),
        Some(&["kubernetes".to_owned()][..])
    );
    assert_eq!(created.labels()["kubernetes.io/metadata.name"], ns);

    let hold = json!({ "metadata": { "finalizers": ["hubwright.test/hold"] } });
    namespaces
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    cms.create(&PostParams::default(), &config_map("content", json!({})))
        .await
        .unwrap();

    let deleting = namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        deleting.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );

    let refused = status(
        cms.create(&PostParams::default(), &config_map("late", json!({})))
            .await,
    );
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        refused.message,
        format!(
            "configmaps \"late\" is forbidden: unable to create new content in namespace {ns} because it is being terminated"
        )
    );
    assert_eq!(
        refused.details.unwrap().causes[0].reason,
        "NamespaceTerminating"
    );

    // The namespace controller removes the content and its own finalizer...
    wait::until("the content to go", WAIT, || async {
        cms.get_opt("content").await.unwrap().is_none()
    })
    .await;
    wait::until("the kubernetes finalizer to go", WAIT, || async {
        let n = namespaces.get(&ns).await.unwrap();
        n.spec
            .and_then(|s| s.finalizers)
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    // ...but our finalizer holds the namespace in Terminating.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = namespaces.get(&ns).await.unwrap();
    assert_eq!(held.status.unwrap().phase.as_deref(), Some("Terminating"));

    let release = json!([{ "op": "remove", "path": "/metadata/finalizers" }]);
    json_patch(&client, &format!("/api/v1/namespaces/{ns}"), &release)
        .await
        .unwrap();
    wait::until("the namespace to go", WAIT, || async {
        namespaces.get_opt(&ns).await.unwrap().is_none()
    })
    .await;
    let gone = status(namespaces.get(&ns).await);
    assert_eq!(gone.message, format!("namespaces \"{ns}\" not found"));
}

#[tokio::test]
async fn deleting_a_terminating_namespace_again_is_a_conflict() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let hold = json!({ "metadata": { "finalizers": ["hubwright.test/hold"] } });
    namespaces
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    // While the kubernetes finalizer is still there, a second delete is 409;
    // after it, it is accepted. Either way the namespace stays.
    match namespaces.delete(&ns, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        Err(e) => panic!("{e}"),
    }
    assert!(namespaces.get_opt(&ns).await.unwrap().is_some());
    let release = json!({ "metadata": { "finalizers": null } });
    namespaces
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    wait::until("the namespace to go", WAIT, || async {
        namespaces.get_opt(&ns).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn objects_with_finalizers_stay_deleting_until_the_finalizers_are_removed() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let mut cm = config_map("held", json!({}));
    cm.metadata.finalizers = Some(vec!["hubwright.test/hold".to_owned()]);
    api.create(&PostParams::default(), &cm).await.unwrap();
    let deleting = api
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    api.delete("held", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("held").await.unwrap().is_some());
    let release = json!({ "metadata": { "finalizers": null } });
    api.patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
    cleanup(&client, &ns).await;
}

fn deployment(name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "hub", "image": "jupyterhub/k8s-hub:4.0.0" }] }
            }
        }
    })
}

#[tokio::test]
async fn generation_follows_the_spec_and_status_is_written_through_its_subresource() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d: Deployment = serde_json::from_value(deployment("hub", 1)).unwrap();
    let created = api.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let labels = json!({ "metadata": { "labels": { "team": "a" } } });
    let relabelled = api
        .patch("hub", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(relabelled.metadata.generation, Some(1));
    let scale = json!({ "spec": { "replicas": 2 } });
    let scaled = api
        .patch("hub", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));

    // status on the main resource is ignored...
    let sneaky = json!({ "status": { "readyReplicas": 2 } });
    let ignored = api
        .patch("hub", &PatchParams::default(), &Patch::Merge(&sneaky))
        .await
        .unwrap();
    assert_eq!(ignored.status.and_then(|s| s.ready_replicas), None);
    // ...and taken on /status, without touching the generation.
    let ready = json!({ "status": { "observedGeneration": 2, "replicas": 2, "readyReplicas": 2, "availableReplicas": 2 } });
    let marked = api
        .patch_status("hub", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    assert_eq!(marked.status.unwrap().ready_replicas, Some(2));
    assert_eq!(marked.metadata.generation, Some(2));
    let spec_via_status = json!({ "spec": { "replicas": 5 } });
    let kept = api
        .patch_status(
            "hub",
            &PatchParams::default(),
            &Patch::Merge(&spec_via_status),
        )
        .await
        .unwrap();
    assert_eq!(kept.spec.unwrap().replicas, Some(2));
    cleanup(&client, &ns).await;
}

fn cm_apply(name: &str, labels: Value, data: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name, "labels": labels }, "data": data })
}

fn managers(cm: &ConfigMap) -> Vec<(String, String)> {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn owned(cm: &ConfigMap, manager: &str) -> Value {
    let entry = cm
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|m| m.manager.as_deref() == Some(manager));
    entry
        .and_then(|m| m.fields_v1.as_ref())
        .map(|f| f.0.clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn applying_the_same_object_twice_changes_nothing() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let pp = PatchParams::apply("hubwright");
    let body = cm_apply("hub", json!({ "app": "hub" }), json!({ "a": "1" }));
    let first = api.patch("hub", &pp, &Patch::Apply(&body)).await.unwrap();
    assert_eq!(
        managers(&first),
        vec![("hubwright".to_owned(), "Apply".to_owned())]
    );
    assert_eq!(owned(&first, "hubwright")["f:data"]["f:a"], json!({}));
    assert_eq!(
        owned(&first, "hubwright")["f:metadata"]["f:labels"]["f:app"],
        json!({})
    );
    assert_eq!(
        first.metadata.managed_fields.as_ref().unwrap()[0]
            .fields_type
            .as_deref(),
        Some("FieldsV1")
    );
    let second = api.patch("hub", &pp, &Patch::Apply(&body)).await.unwrap();
    assert_eq!(rv(&second), rv(&first));
    assert_eq!(
        second.metadata.managed_fields,
        first.metadata.managed_fields
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn an_apply_that_takes_anothers_field_conflicts_until_forced() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.patch(
        "hub",
        &PatchParams::apply("other"),
        &Patch::Apply(cm_apply("hub", json!({ "x": "1" }), json!({}))),
    )
    .await
    .unwrap();
    let mine = cm_apply("hub", json!({ "x": "2" }), json!({ "mine": "yes" }));
    let conflict = status(
        api.patch(
            "hub",
            &PatchParams::apply("hubwright"),
            &Patch::Apply(&mine),
        )
        .await,
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        conflict.message,
        "Apply failed with 1 conflict: conflict with \"other\": .metadata.labels.x"
    );
    let cause = &conflict.details.unwrap().causes[0];
    assert_eq!(cause.reason, "FieldManagerConflict");
    assert_eq!(cause.field, ".metadata.labels.x");
    assert_eq!(cause.message, "conflict with \"other\"");
    let data = api.get("hub").await.unwrap().data.unwrap_or_default();
    assert!(
        !data.contains_key("mine"),
        "a conflicting apply writes nothing"
    );

    let forced = api
        .patch(
            "hub",
            &PatchParams::apply("hubwright").force(),
            &Patch::Apply(&mine),
        )
        .await
        .unwrap();
    assert_eq!(forced.labels()["x"], "2");
    assert_eq!(
        owned(&forced, "hubwright")["f:metadata"]["f:labels"]["f:x"],
        json!({})
    );
    assert!(
        owned(&forced, "other").get("f:metadata").is_none(),
        "ownership moved: {:?}",
        owned(&forced, "other")
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn equal_values_are_shared_and_dropped_fields_go_only_when_nobody_owns_them() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let a = PatchParams::apply("a");
    let b = PatchParams::apply("b");
    api.patch(
        "cm",
        &a,
        &Patch::Apply(cm_apply(
            "cm",
            json!({}),
            json!({ "one": "1", "two": "2", "three": "3" }),
        )),
    )
    .await
    .unwrap();
    // b agrees on "two": no conflict, shared ownership.
    api.patch(
        "cm",
        &b,
        &Patch::Apply(cm_apply("cm", json!({}), json!({ "two": "2" }))),
    )
    .await
    .unwrap();
    // a stops applying "two" and "three": "three" goes, "two" stays (b owns it).
    let after = api
        .patch(
            "cm",
            &a,
            &Patch::Apply(cm_apply("cm", json!({}), json!({ "one": "1" }))),
        )
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("one").map(String::as_str), Some("1"));
    assert_eq!(data.get("two").map(String::as_str), Some("2"));
    assert!(!data.contains_key("three"), "{data:?}");
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn other_writes_record_update_entries_and_apply_creates() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let created = api
        .patch(
            "cm",
            &PatchParams::apply("hubwright"),
            &Patch::Apply(cm_apply("cm", json!({}), json!({ "a": "1" }))),
        )
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    let pp = PatchParams {
        field_manager: Some("editor".to_owned()),
        ..Default::default()
    };
    let edited = api
        .patch("cm", &pp, &Patch::Merge(json!({ "data": { "a": "2" } })))
        .await
        .unwrap();
    assert!(managers(&edited).contains(&("editor".to_owned(), "Update".to_owned())));
    assert_eq!(owned(&edited, "editor")["f:data"]["f:a"], json!({}));
    // The editor now owns data.a, so applying the old value conflicts with it.
    let back = cm_apply("cm", json!({}), json!({ "a": "1" }));
    let conflict = status(
        api.patch("cm", &PatchParams::apply("hubwright"), &Patch::Apply(&back))
            .await,
    );
    assert_eq!(conflict.code, 409);
    assert!(
        conflict
            .message
            .contains("conflict with \"editor\" using v1"),
        "{}",
        conflict.message
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn apply_without_a_field_manager_is_rejected() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let req = axum::http::Request::patch(format!("/api/v1/namespaces/{ns}/configmaps/cm"))
        .header("content-type", "application/apply-patch+yaml")
        .body(serde_json::to_vec(&cm_apply("cm", json!({}), json!({}))).unwrap())
        .unwrap();
    let e = status(client.request::<Value>(req).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn json_patches_add_replace_remove_and_test() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &config_map("cm", json!({ "a": "1", "b": "2" })),
    )
    .await
    .unwrap();
    let ops = json!([
        { "op": "test", "path": "/data/a", "value": "1" },
        { "op": "replace", "path": "/data/a", "value": "10" },
        { "op": "remove", "path": "/data/b" },
        { "op": "add", "path": "/data/c", "value": "3" }
    ]);
    let path = format!("/api/v1/namespaces/{ns}/configmaps/cm");
    json_patch(&client, &path, &ops).await.unwrap();
    let data = api.get("cm").await.unwrap().data.unwrap();
    assert_eq!(
        data,
        [
            ("a".to_owned(), "10".to_owned()),
            ("c".to_owned(), "3".to_owned())
        ]
        .into()
    );
    let failing = json!([{ "op": "test", "path": "/data/a", "value": "1" }]);
    let e = status(json_patch(&client, &path, &failing).await);
    assert_eq!(e.code, 422);
    let strategic = json!({ "data": { "d": "4" } });
    let merged = api
        .patch("cm", &PatchParams::default(), &Patch::Strategic(&strategic))
        .await
        .unwrap();
    assert_eq!(merged.data.unwrap().len(), 3);
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for (name, labels) in [
        ("web", json!({ "app": "hub", "tier": "web" })),
        ("db", json!({ "app": "hub", "tier": "db" })),
        ("other", json!({ "app": "proxy" })),
    ] {
        let cm: ConfigMap =
            serde_json::from_value(json!({ "metadata": { "name": name, "labels": labels } }))
                .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let names = |sel: &'static str| {
        let api = api.clone();
        async move {
            let mut n: Vec<String> = api
                .list(&ListParams::default().labels(sel))
                .await
                .unwrap()
                .iter()
                .map(|c| c.name_any())
                .collect();
            n.sort();
            n
        }
    };
    assert_eq!(names("app=hub").await, ["db", "web"]);
    assert_eq!(names("app==hub,tier!=db").await, ["web"]);
    assert_eq!(names("tier in (db,cache)").await, ["db"]);
    assert_eq!(names("tier notin (db)").await, ["other", "web"]);
    assert_eq!(names("tier").await, ["db", "web"]);
    assert_eq!(names("!tier").await, ["other"]);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=db"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let by_ns = all
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns}")))
        .await
        .unwrap();
    assert_eq!(by_ns.items.len(), 3);
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_watch_sends_changes_in_order_after_its_resource_version() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &config_map("before", json!({})))
        .await
        .unwrap();
    let start = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = WatchParams::default().labels("watched=yes").timeout(10);
    let mut stream = Box::pin(api.watch(&wp, &start).await.unwrap());

    let labelled: ConfigMap = serde_json::from_value(
        json!({ "metadata": { "name": "w", "labels": { "watched": "yes" } } }),
    )
    .unwrap();
    api.create(&PostParams::default(), &labelled).await.unwrap();
    api.create(&PostParams::default(), &config_map("unlabelled", json!({})))
        .await
        .unwrap();
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "k": "v" } })),
    )
    .await
    .unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    let mut last_rv = 0u64;
    while seen.len() < 3 {
        let event = tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let (kind, obj) = match event {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("{e:?}"),
        };
        let event_rv: u64 = rv(&obj).parse().unwrap();
        assert!(event_rv > last_rv);
        last_rv = event_rv;
        seen.push((kind, obj.name_any()));
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "w".to_owned()),
            ("MODIFIED", "w".to_owned()),
            ("DELETED", "w".to_owned())
        ]
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_watch_without_a_resource_version_starts_with_what_exists_and_ends_at_its_timeout() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &config_map("there", json!({})))
        .await
        .unwrap();
    let mut stream = Box::pin(
        api.watch(&WatchParams::default().timeout(1), "0")
            .await
            .unwrap(),
    );
    match tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "there"),
        other => panic!("{other:?}"),
    }
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while stream.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the watch ends after timeoutSeconds");
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_gets_410_expired() {
    let (cluster, client) = cluster().await;
    let Some(server) = cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's history compaction");
    };
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let old = api
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    server.compact();
    let mut stream = Box::pin(api.watch(&WatchParams::default(), &rv(&old)).await.unwrap());
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn a_watch_with_bookmarks_gets_them() {
    let (cluster, client) = cluster().await;
    if skip(
        &cluster,
        "the real server sends bookmarks about once a minute",
    ) {
        return;
    }
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let start = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = Box::pin(api.watch(&WatchParams::default(), &start).await.unwrap());
    match tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Bookmark(b) => assert!(!b.metadata.resource_version.is_empty()),
        other => panic!("{other:?}"),
    }
}

/// A client without kube's default retry of 429/503/504, to see those answers.
async fn client_without_retry(cluster: &TestCluster) -> Client {
    let mut config = cluster.config().await.unwrap();
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn an_injected_503_fails_once_then_the_request_succeeds() {
    let (cluster, client) = cluster().await;
    let Some(server) = cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
    };
    let ns = namespace(&cluster, &client).await;
    server.inject(
        Fault::status(503)
            .on_verb(Verb::Get)
            .on_resource("namespaces")
            .on_name(&ns)
            .times(1),
    );
    let namespaces: Api<Namespace> = Api::all(client_without_retry(&cluster).await);
    let e = status(namespaces.get(&ns).await);
    assert_eq!((e.code, e.reason.as_str()), (503, "ServiceUnavailable"));
    assert_eq!(
        e.message,
        "the server is currently unable to handle the request"
    );
    assert!(namespaces.get(&ns).await.is_ok());
}

#[tokio::test]
async fn kube_retries_a_503_by_itself() {
    let (cluster, client) = cluster().await;
    let Some(server) = cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
    };
    let ns = namespace(&cluster, &client).await;
    server.inject(Fault::status(503).on_verb(Verb::Get).on_name(&ns).times(2));
    Api::<Namespace>::all(client.clone())
        .get(&ns)
        .await
        .unwrap();
    let gets = server
        .requests()
        .iter()
        .filter(|r| r.verb == Some(Verb::Get) && r.name.as_deref() == Some(&ns))
        .count();
    assert_eq!(gets, 3);
}

#[tokio::test]
async fn injected_errors_carry_realistic_bodies() {
    let (cluster, client) = cluster().await;
    let Some(server) = cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
    };
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    server.inject(
        Fault::forbidden("system:serviceaccount:hubwright:worker")
            .on_verb(Verb::List)
            .times(1),
    );
    let e = status(api.list(&ListParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        format!(
            "configmaps is forbidden: User \"system:serviceaccount:hubwright:worker\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"{ns}\""
        )
    );
    let no_retry: Api<ConfigMap> = Api::namespaced(client_without_retry(&cluster).await, &ns);
    server.inject(Fault::too_many_requests(3).on_verb(Verb::Create).times(1));
    let e = status(
        no_retry
            .create(&PostParams::default(), &config_map("x", json!({})))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(e.details.unwrap().retry_after_seconds, 3);
    // kube's own retry honours Retry-After.
    server.inject(Fault::too_many_requests(1).on_verb(Verb::Create).times(1));
    let started = Instant::now();
    api.create(&PostParams::default(), &config_map("x", json!({})))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    server.inject(Fault::status(500).on_resource("configmaps").times(1));
    let e = status(api.get("x").await);
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
}

#[tokio::test]
async fn a_dropped_connection_is_an_error_and_latency_delays() {
    let (cluster, client) = cluster().await;
    let Some(server) = cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
    };
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    server.inject(Fault::drop_connection().on_verb(Verb::Create).times(1));
    let e = api
        .create(&PostParams::default(), &config_map("x", json!({})))
        .await
        .unwrap_err();
    assert!(
        !matches!(e, kube::Error::Api(_)),
        "not an API status: {e:?}"
    );
    assert!(
        api.get_opt("x").await.unwrap().is_none(),
        "nothing was created"
    );

    server.inject(
        Fault::latency(Duration::from_millis(300))
            .on_verb(Verb::Create)
            .times(1),
    );
    let started = Instant::now();
    api.create(&PostParams::default(), &config_map("x", json!({})))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_request_log_shows_each_create_once() {
    let (cluster, client) = cluster().await;
    let Some(server) = cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's request log");
    };
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams {
        field_manager: Some("hubwright".to_owned()),
        ..Default::default()
    };
    api.create(&pp, &config_map("once", json!({})))
        .await
        .unwrap();
    let creates: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.verb == Some(Verb::Create) && r.resource.as_deref() == Some("configmaps"))
        .collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].namespace.as_deref(), Some(ns.as_str()));
    assert_eq!(creates[0].field_manager.as_deref(), Some("hubwright"));
}

#[tokio::test]
async fn unique_names_are_dns_labels_and_differ() {
    let cluster = TestCluster::from_env().await.unwrap();
    let a = cluster.unique_name("hw");
    let b = cluster.unique_name("hw");
    assert_ne!(a, b);
    assert!(
        a.len() <= 63
            && a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
    if let Some(server) = cluster.standin() {
        assert!(cluster.kubeconfig().exists());
        assert_eq!(cluster.context(), Some(server.context()));
    }
}

#[tokio::test]
async fn secret_string_data_is_stored_base64_encoded_in_data() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let secret = serde_json::from_value(json!({
        "metadata": { "name": "oauth" },
        "stringData": { "OAUTH_CLIENT_SECRET": "s3cret!", "empty": "" }
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &secret).await.unwrap();
    assert!(created.string_data.is_none());
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    let data = created.data.unwrap();
    assert_eq!(data["OAUTH_CLIENT_SECRET"].0, b"s3cret!");
    assert_eq!(data["empty"].0, b"");
    cleanup(&client, &ns).await;
}

async fn get_json(client: &Client, path: &str) -> Value {
    let req = axum::http::Request::get(path).body(Vec::new()).unwrap();
    client.request::<Value>(req).await.unwrap()
}

#[tokio::test]
async fn openapi_v3_documents_offer_field_validation_on_each_kinds_patch() {
    let (_cluster, client) = cluster().await;
    let index = get_json(&client, "/openapi/v3").await;
    for gv in ["api/v1", "apis/apps/v1"] {
        let url = index["paths"][gv]["serverRelativeURL"].as_str().unwrap();
        assert!(url.starts_with(&format!("/openapi/v3/{gv}?hash=")), "{url}");
    }
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let doc = get_json(&client, url).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({ "group": "apps", "version": "v1", "kind": "Deployment" })
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
        "{patch}"
    );
    let schema = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        schema["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
}

/// Protobuf field helpers: a length-delimited field and a map entry.
fn pb_bytes(field: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2, u8::try_from(value.len()).unwrap()];
    out.extend_from_slice(value);
    out
}

fn pb_entry(field: u8, key: &str, value: &[u8]) -> Vec<u8> {
    pb_bytes(
        field,
        &[pb_bytes(1, key.as_bytes()), pb_bytes(2, value)].concat(),
    )
}

#[tokio::test]
async fn a_protobuf_secret_is_stored_as_the_json_it_encodes() {
    let (cluster, client) = cluster().await;
    let Some(server) = cluster.standin() else {
        return eprintln!("skipped on a real cluster: sends a raw request to the stand-in's URL");
    };
    let ns = namespace(&cluster, &client).await;
    let meta = [
        pb_bytes(1, b"pb"),
        pb_bytes(4, b""),
        pb_entry(11, "owner", b"helm"),
    ]
    .concat();
    let secret = [
        pb_bytes(1, &meta),
        pb_entry(2, "release", b"\x00\xffbytes"),
        pb_bytes(3, b"helm.sh/release.v1"),
    ]
    .concat();
    let type_meta = [pb_bytes(1, b"v1"), pb_bytes(2, b"Secret")].concat();
    let body = [
        b"k8s\0".to_vec(),
        pb_bytes(1, &type_meta),
        pb_bytes(2, &secret),
    ]
    .concat();
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/namespaces/{ns}/secrets", server.url()))
        .bearer_auth(server.token())
        .header("Content-Type", "application/vnd.kubernetes.protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let stored = api.get("pb").await.unwrap();
    assert_eq!(stored.labels()["owner"], "helm");
    assert_eq!(stored.type_.as_deref(), Some("helm.sh/release.v1"));
    assert_eq!(stored.data.unwrap()["release"].0, b"\x00\xffbytes");
    cleanup(&client, &ns).await;
}
