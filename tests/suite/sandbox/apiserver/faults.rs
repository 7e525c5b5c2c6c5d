//! The stand-in: injected faults and the request log.

use super::*;

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
