//! The stand-in: names, Secrets, OpenAPI documents and protobuf bodies.

use super::*;

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
    let resp = hubwright_http::client()
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
