//! The stand-in: DaemonSets and PriorityClasses (the zero-to-jupyterhub
//! chart's image puller and user scheduling use them), the built-in
//! PriorityClasses, and no resource for a kind nobody serves.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::scheduling::v1::PriorityClass;

use super::*;

#[tokio::test]
async fn daemonsets_and_priority_classes_are_discovered_and_written() {
    let (cluster, client) = cluster().await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for (group, kind) in [
        ("apps", "DaemonSet"),
        ("scheduling.k8s.io", "PriorityClass"),
    ] {
        let (ar, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk(group, "v1", kind))
            .unwrap_or_else(|| panic!("{kind} is discoverable"));
        assert!(caps.supports_operation(verbs::PATCH), "{}", ar.plural);
    }

    let ns = namespace(&cluster, &client).await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
    let puller: DaemonSet = serde_json::from_value(json!({
        "metadata": { "name": "hook-image-puller" },
        "spec": {
            "selector": { "matchLabels": { "component": "hook-image-puller" } },
            "template": {
                "metadata": { "labels": { "component": "hook-image-puller" } },
                "spec": { "containers": [{ "name": "pause", "image": "registry.k8s.io/pause:3.10" }] }
            }
        }
    }))
    .unwrap();
    let created = daemonsets
        .create(&PostParams::default(), &puller)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let classes: Api<PriorityClass> = Api::all(client.clone());
    let name = cluster.unique_name("hw-priority");
    cluster.delete_cluster_scoped_on_drop(ApiResource::erase::<PriorityClass>(&()), &name);
    let class: PriorityClass = serde_json::from_value(json!({
        "metadata": { "name": name },
        "value": 0,
        "globalDefault": false,
        "description": "user pods"
    }))
    .unwrap();
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    let listed = classes.list(&ListParams::default()).await.unwrap();
    let listed = names(&listed.items);
    for builtin in ["system-cluster-critical", "system-node-critical", &name] {
        assert!(listed.iter().any(|n| n == builtin), "{builtin}: {listed:?}");
    }
    let critical = classes.get("system-node-critical").await.unwrap();
    assert_eq!(critical.value, 2_000_001_000);
    classes
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    assert!(classes.get_opt(&name).await.unwrap().is_none());
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_kind_nobody_serves_has_no_resource_in_discovery() {
    let (_cluster, client) = cluster().await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(
        discovery
            .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
            .is_none()
    );
    let req = axum::http::Request::get("/apis/example.com/v1")
        .body(Vec::new())
        .unwrap();
    let e = status(client.request::<Value>(req).await);
    assert_eq!(e.code, 404);
}
