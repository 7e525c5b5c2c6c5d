//! The stand-in: discovery, auth, CRUD, conflicts, names and kinds.

use super::*;

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
    let resp = hubwright_http::client()
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
    let resp = hubwright_http::client().get(&url).send().await.unwrap();
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
    assert_eq!(names(&list.items), ["a", ROOT_CA]);
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
    // A valid subdomain that is no label fails on its dots alone.
    assert_eq!(
        bad.message,
        "Namespace \"has.dots\" is invalid: metadata.name: Invalid value: \"has.dots\": must not contain dots"
    );
    let ns_bad: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": "Has_Caps" } })).unwrap();
    let bad = status(
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns_bad)
            .await,
    );
    assert!(
        bad.message
            .contains("a lowercase RFC 1123 label must consist of"),
        "{}",
        bad.message
    );

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
async fn a_body_of_another_kind_or_version_is_400_in_the_decoders_words() {
    let (cluster, client) = cluster().await;
    let ns = namespace(&cluster, &client).await;
    let cm = ApiResource::erase::<ConfigMap>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &cm);
    let secret_ar = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    let wrong_kind = DynamicObject::new("x", &secret_ar);
    let bad = status(api.create(&PostParams::default(), &wrong_kind).await);
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    assert!(
        bad.message
            .starts_with("Secret in version \"v1\" cannot be handled as a ConfigMap: "),
        "{}",
        bad.message
    );

    // A ConfigMap of apps/v1 does not exist; the scheme's name differs
    // between distributions (kubeadm's legacyscheme, k3s's runtime).
    let deploy_ar = ApiResource::erase::<Deployment>(&());
    let mut wrong_version = DynamicObject::new("x", &cm);
    wrong_version.types.as_mut().unwrap().api_version = deploy_ar.api_version.clone();
    let bad = status(api.create(&PostParams::default(), &wrong_version).await);
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    assert!(
        bad.message.starts_with(
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: no kind \"ConfigMap\" is registered for version \"apps/v1\" in scheme "
        ),
        "{}",
        bad.message
    );
    assert!(api.get_opt("x").await.unwrap().is_none());
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
