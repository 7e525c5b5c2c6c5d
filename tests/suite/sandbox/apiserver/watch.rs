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
    // kube-root-ca.crt has no labels at all.
    assert_eq!(names("tier notin (db)").await, [ROOT_CA, "other", "web"]);
    assert_eq!(names("tier").await, ["db", "web"]);
    assert_eq!(names("!tier").await, [ROOT_CA, "other"]);
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
    assert_eq!(super::names(&by_ns.items), ["db", ROOT_CA, "other", "web"]);
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
    let mut added = Vec::new();
    while added.len() < 2 {
        match tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(o) => added.push(o),
            WatchEvent::Bookmark(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(names(&added), [ROOT_CA, "there"]);
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

/// The events of a watch up to and including its first BOOKMARK; None when
/// the server cannot serve it (a 500 from kube-apiserver 1.32 on etcd older
/// than 3.5.13, which lacks the progress requests a consistent watch list
/// needs, or the WatchList feature gate turned off), which it prints.
async fn initial_events(
    api: &Api<ConfigMap>,
    params: &WatchParams,
) -> Option<(Vec<ConfigMap>, kube::core::watch::Bookmark)> {
    let no_etcd_progress = |code: u16| {
        if code == 500 {
            eprintln!(
                "skipped: the server answers 500 to a watch list (kube-apiserver on etcd older than 3.5.13)"
            );
        }
        code == 500
    };
    let stream = match api.watch(params, "").await {
        Err(kube::Error::Api(s)) if no_etcd_progress(s.code) => return None,
        Err(kube::Error::Api(s))
            if s.code == 422 && s.message.contains("WatchList feature gate") =>
        {
            eprintln!(
                "skipped: the server's WatchList feature gate is off: {}",
                s.message
            );
            return None;
        }
        other => other.unwrap(),
    };
    let mut stream = Box::pin(stream);
    let mut added = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("the initial events within the wait")
            .expect("a bookmark before the watch ends")
        {
            Err(kube::Error::Api(s)) if no_etcd_progress(s.code) => return None,
            Ok(WatchEvent::Error(e)) if no_etcd_progress(e.code) => return None,
            Ok(WatchEvent::Added(o)) => added.push(o),
            Ok(WatchEvent::Bookmark(b)) => return Some((added, b)),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_watch_with_initial_events_ends_them_with_an_annotated_bookmark() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &config_map("there", json!({})))
        .await
        .unwrap();
    // As helm 4 and client-go's watch list ask: sendInitialEvents=true,
    // resourceVersionMatch=NotOlderThan, bookmarks, no resourceVersion.
    let Some((added, bookmark)) = initial_events(&api, &WatchParams::streaming_lists()).await
    else {
        return;
    };
    assert_eq!(names(&added), [ROOT_CA, "there"]);
    assert_eq!(
        bookmark
            .metadata
            .annotations
            .get("k8s.io/initial-events-end"),
        Some(&"true".to_owned()),
        "{:?}",
        bookmark.metadata.annotations
    );
    let at: u64 = bookmark.metadata.resource_version.parse().unwrap();
    assert!(added.iter().all(|o| rv(o).parse::<u64>().unwrap() <= at));
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn initial_events_need_a_not_older_than_match_and_a_watch() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let get = |query: &str| {
        axum::http::Request::get(format!("/api/v1/namespaces/{ns}/configmaps?{query}"))
            .body(Vec::new())
            .unwrap()
    };
    let e = status(
        client
            .request::<Value>(get(
                "watch=true&sendInitialEvents=true&allowWatchBookmarks=true",
            ))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message.starts_with("ListOptions.meta.k8s.io \"\" is invalid: ")
            && e.message.contains(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            ),
        "{}",
        e.message
    );
    let e = status(
        client
            .request::<Value>(get(
                "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0",
            ))
            .await,
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"),
        "{}",
        e.message
    );
    cleanup(&client, &ns).await;
}
