//! The stand-in: namespaces and finalizers.

use super::*;

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

#[tokio::test]
async fn every_namespace_gets_the_root_ca_and_a_default_service_account() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let ca = cms.get(ROOT_CA).await.unwrap();
    let pem = &ca.data.as_ref().unwrap()["ca.crt"];
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(
        ca.annotations()["kubernetes.io/description"]
            .starts_with("Contains a CA bundle that can be used to verify the kube-apiserver"),
        "{:?}",
        ca.annotations()
    );
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), &ns);
    wait::until("the default ServiceAccount", WAIT, || async {
        accounts.get_opt("default").await.unwrap().is_some()
    })
    .await;

    // The publisher puts it back.
    cms.delete(ROOT_CA, &DeleteParams::default()).await.unwrap();
    wait::until("kube-root-ca.crt back", WAIT, || async {
        cms.get_opt(ROOT_CA)
            .await
            .unwrap()
            .and_then(|cm| cm.data)
            .is_some_and(|data| data.get("ca.crt") == Some(pem))
    })
    .await;
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_deleted_namespace_stays_terminating_until_the_controller_is_done() {
    // A stand-in that takes a second, as a real cluster takes seconds.
    let delay = Duration::from_secs(1);
    let cluster = TestCluster::from_env_with(Options::default().with_termination_delay(delay))
        .await
        .unwrap();
    let client = cluster.client().await.unwrap();
    let ns = namespace(&cluster, &client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    cms.create(&PostParams::default(), &config_map("content", json!({})))
        .await
        .unwrap();

    let started = Instant::now();
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get(&ns).await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    wait::until("the namespace to go", WAIT, || async {
        namespaces.get_opt(&ns).await.unwrap().is_none()
    })
    .await;
    if cluster.standin().is_some() {
        assert!(
            started.elapsed() >= delay,
            "gone after {:?}, before the {delay:?} delay",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn what_a_test_created_is_deleted_though_finalizers_hold_it() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let hold = json!({ "metadata": { "finalizers": ["hubwright.test/hold"] } });
    namespaces
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let mut held = config_map("held", json!({}));
    held.metadata.finalizers = Some(vec!["hubwright.test/hold".to_owned()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let secret = serde_json::from_value(json!({
        "metadata": { "name": "hubwright-oauth", "finalizers": ["hubwright.test/hold"] },
        "stringData": { "OAUTH_CLIENT_SECRET": "s3cret" }
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // What a failed test's drop does on a real cluster.
    cluster.delete_created().await.unwrap();
    wait::until("the namespace to go", WAIT, || async {
        namespaces.get_opt(&ns).await.unwrap().is_none()
    })
    .await;
}
