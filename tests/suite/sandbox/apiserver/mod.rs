//! The Kubernetes API stand-in, driven only through the real `kube` client.
//!
//! Every test runs against [`TestCluster::from_env`]: the stand-in, or a real
//! cluster when `KUBECONFIG` is set, and asserts what a real kube-apiserver
//! answers. Tests that need the stand-in's hooks (faults, request log,
//! history compaction, fast bookmarks) say why they skip. Namespaces are
//! deleted when the test ends, whatever its outcome.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hubwright_sandbox::apiserver::{Fault, Options, TestCluster, Verb};
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

/// The cluster (a stand-in's namespaces terminate quickly) and a client.
async fn cluster() -> (TestCluster, Client) {
    let cluster = TestCluster::from_env_terminating_quickly().await.unwrap();
    let client = cluster.client().await.unwrap();
    (cluster, client)
}

/// What a cluster's controllers put in every namespace.
const ROOT_CA: &str = "kube-root-ca.crt";

/// Creates a fresh namespace, deleted when `cluster` drops, and returns its
/// name once the root CA publisher has put `kube-root-ca.crt` in it (as
/// on a real cluster, moments after the namespace).
async fn namespace(cluster: &TestCluster, client: &Client) -> String {
    let name = cluster.unique_name("hw-test");
    cluster.delete_on_drop(&name);
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    wait::until("kube-root-ca.crt in the new namespace", WAIT, || async {
        cms.get_opt(ROOT_CA).await.unwrap().is_some()
    })
    .await;
    name
}

/// The sorted names of `list`.
fn names<K: kube::Resource>(list: &[K]) -> Vec<String> {
    let mut names: Vec<String> = list
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect();
    names.sort();
    names
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

mod apply;
mod crud;
mod encoding;
mod faults;
mod kinds;
mod namespaces;
mod ownership;
mod watch;
