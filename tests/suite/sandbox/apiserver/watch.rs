//! The stand-in: selectors and watches.

use super::*;

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
