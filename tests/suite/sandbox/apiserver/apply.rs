//! The stand-in: generation, the status subresource, server-side apply and JSON patches.

use super::*;

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

/// A ConfigMap to apply; `labels: {}` is left out, as an applied empty map
/// is a field its manager owns (see `ownership`).
fn cm_apply(name: &str, labels: Value, data: Value) -> Value {
    let mut cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": data });
    if labels != json!({}) {
        cm["metadata"]["labels"] = labels;
    }
    cm
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
    // `other` applied `data: {}` and so owns `.data`, which the server did
    // not store (it is `omitempty`): giving it entries adds it back.
    assert_eq!(
        conflict.message,
        "Apply failed with 2 conflicts: conflicts with \"other\":\n- .data\n- .metadata.labels.x"
    );
    let causes = conflict.details.unwrap().causes;
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, [".data", ".metadata.labels.x"]);
    assert_eq!(causes[1].reason, "FieldManagerConflict");
    assert_eq!(causes[1].message, "conflict with \"other\"");
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
