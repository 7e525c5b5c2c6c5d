//! Deleting what a test made on a real cluster, even when the test fails:
//! [`super::TestCluster::delete_on_drop`] records namespaces (and
//! `delete_cluster_scoped_on_drop` other objects), and dropping the cluster
//! (also while a failed assertion unwinds) deletes them.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;

/// What a test asked to have deleted.
#[derive(Debug, Default)]
pub(super) struct Created {
    /// Namespaces, with everything in them.
    pub namespaces: Vec<String>,
    /// Cluster-scoped objects.
    pub cluster_scoped: Vec<(ApiResource, String)>,
}

impl Created {
    pub(super) fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.cluster_scoped.is_empty()
    }
}

/// How long the cleanup may take before the test goes on without it.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Deletes what was `created` on the real cluster in `KUBECONFIG` (`context`,
/// or its current one), on a thread
/// of its own: a drop may run inside the test's runtime, which cannot be
/// blocked on. Failures are printed, never raised (the test has its own
/// verdict).
pub(super) fn delete(context: Option<String>, created: Created) {
    let work = std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => return eprintln!("cleanup: no runtime to delete {created:?}: {err}"),
        };
        runtime.block_on(async {
            let done = tokio::time::timeout(
                CLEANUP_TIMEOUT,
                delete_all(context.as_deref(), &created),
            )
            .await;
            if done.is_err() {
                eprintln!(
                    "cleanup: deleting {created:?} took over {CLEANUP_TIMEOUT:?}; left to finish on the cluster"
                );
            }
        });
    });
    if work.join().is_err() {
        eprintln!("cleanup: the thread deleting test namespaces panicked");
    }
}

/// A client for the real cluster in `KUBECONFIG`, as [`super::TestCluster`] builds it.
async fn client(context: Option<&str>) -> Result<kube::Client, super::ClientError> {
    let kubeconfig = kube::config::Kubeconfig::from_env()?.ok_or("KUBECONFIG is set but empty")?;
    let config = super::server::config_from_kubeconfig(kubeconfig, context).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn delete_all(context: Option<&str>, created: &Created) {
    match client(context).await {
        Ok(client) => delete_with(&client, created).await,
        Err(err) => eprintln!("cleanup: no client to delete {created:?}: {err}"),
    }
}

/// Deletes what was `created` through `client`, best effort.
pub(super) async fn delete_with(client: &kube::Client, created: &Created) {
    for ns in &created.namespaces {
        delete_one(client, ns).await;
    }
    for (resource, name) in &created.cluster_scoped {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => eprintln!("cleanup: {} {name}: {err}", resource.plural),
        }
    }
}

/// Drops the finalizers tests put on the namespace and on its ConfigMaps and
/// Secrets (which would hold it in `Terminating` for ever), then deletes it.
/// Each step is tried whatever the one before did; what failed is printed.
async fn delete_one(client: &kube::Client, ns: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Ok(None) = namespaces.get_opt(ns).await {
        return;
    }
    if let Err(err) = release_all(&Api::<ConfigMap>::namespaced(client.clone(), ns)).await {
        eprintln!("cleanup: namespace {ns}: releasing ConfigMaps: {err}");
    }
    if let Err(err) = release_all(&Api::<Secret>::namespaced(client.clone(), ns)).await {
        eprintln!("cleanup: namespace {ns}: releasing Secrets: {err}");
    }
    if let Err(err) = namespaces
        .patch(ns, &PatchParams::default(), &release())
        .await
    {
        eprintln!("cleanup: namespace {ns}: releasing it: {err}");
    }
    match namespaces.delete(ns, &DeleteParams::background()).await {
        Ok(_) => {}
        // Gone, or already terminating.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(err) => eprintln!("cleanup: namespace {ns}: deleting it: {err}"),
    }
}

fn release() -> Patch<serde_json::Value> {
    Patch::Merge(json!({ "metadata": { "finalizers": null } }))
}

/// Removes the finalizers of every object `api` lists that has some.
async fn release_all<K>(api: &Api<K>) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for object in api.list(&ListParams::default()).await?.items {
        let meta = object.meta();
        if meta.finalizers.as_ref().is_some_and(|f| !f.is_empty()) {
            let name = meta.name.clone().unwrap_or_default();
            api.patch(&name, &PatchParams::default(), &release())
                .await?;
        }
    }
    Ok(())
}
