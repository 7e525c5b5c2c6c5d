//! The stand-in: server-side apply owns an applied empty map, as
//! structured-merge-diff's `toFieldSet` does, though the server does not
//! store it (`omitempty`).

use super::*;

fn applied(labels: Option<Value>, data: Option<Value>) -> Value {
    let mut cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "cm" } });
    if let Some(labels) = labels {
        cm["metadata"]["labels"] = labels;
    }
    if let Some(data) = data {
        cm["data"] = data;
    }
    cm
}

fn fields_of(cm: &ConfigMap, manager: &str) -> Value {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|m| m.manager.as_deref() == Some(manager))
        .and_then(|m| m.fields_v1.as_ref())
        .map(|f| f.0.clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_applied_empty_map_is_owned_though_the_server_does_not_keep_it() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let body = applied(Some(json!({})), Some(json!({})));
    let cm = api
        .patch("cm", &PatchParams::apply("a"), &Patch::Apply(&body))
        .await
        .unwrap();
    assert_eq!(
        fields_of(&cm, "a"),
        json!({ "f:data": {}, "f:metadata": { "f:labels": {} } })
    );
    assert!(cm.data.is_none(), "{:?}", cm.data);
    assert!(cm.metadata.labels.is_none(), "{:?}", cm.metadata.labels);

    // Applying it again changes nothing.
    let again = api
        .patch("cm", &PatchParams::apply("a"), &Patch::Apply(&body))
        .await
        .unwrap();
    assert_eq!(rv(&again), rv(&cm));
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_second_managers_empty_map_conflicts_with_the_first() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let empty_labels = applied(Some(json!({})), None);
    api.patch("cm", &PatchParams::apply("a"), &Patch::Apply(&empty_labels))
        .await
        .unwrap();
    // The map is not stored, so b's apply adds it: a field a owns.
    let conflict = status(
        api.patch("cm", &PatchParams::apply("b"), &Patch::Apply(&empty_labels))
            .await,
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        conflict.message,
        "Apply failed with 1 conflict: conflict with \"a\": .metadata.labels"
    );
    let forced = api
        .patch(
            "cm",
            &PatchParams::apply("b").force(),
            &Patch::Apply(&empty_labels),
        )
        .await
        .unwrap();
    assert_eq!(
        fields_of(&forced, "b"),
        json!({ "f:metadata": { "f:labels": {} } })
    );
    assert_eq!(
        fields_of(&forced, "a"),
        Value::Null,
        "a lost its only field"
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn an_empty_map_applied_over_anothers_entries_keeps_them_without_conflict() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.patch(
        "cm",
        &PatchParams::apply("a"),
        &Patch::Apply(applied(Some(json!({ "x": "1" })), None)),
    )
    .await
    .unwrap();
    let cm = api
        .patch(
            "cm",
            &PatchParams::apply("b"),
            &Patch::Apply(applied(Some(json!({})), None)),
        )
        .await
        .unwrap();
    assert_eq!(cm.labels()["x"], "1");
    assert_eq!(
        fields_of(&cm, "b"),
        json!({ "f:metadata": { "f:labels": {} } })
    );
    cleanup(&client, &ns).await;
}
