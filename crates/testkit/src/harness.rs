//! Starting runs and in-process workers the way tests want them: fast leases,
//! fast polls, every testkit step kind registered.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::clusters::Clusters;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::workflow::Catalog;
use hubwright_state::{Clock, Store, SystemClock};
use hubwright_worker::kubernetes::ClusterClients;
use hubwright_worker::{Registry, Worker, WorkerConfig, WorkerHandle};
use serde_json::json;
use uuid::Uuid;

/// The built-in kinds plus the testkit's.
pub fn registry() -> Registry {
    let mut registry = Registry::with_builtins();
    crate::steps::register(&mut registry);
    registry
}

/// The built-in kinds, the Kubernetes and identity-provider kinds over
/// `clusters` (sealing with [`crate::TEST_SECRET_KEY`]), the Helm kinds over
/// `workflows`, and the testkit's:
/// what `hubwright serve` registers.
pub fn registry_with_clusters(clusters: &Clusters, workflows: &Path) -> Registry {
    let mut registry = registry();
    let clients = ClusterClients::new(clusters.clone());
    hubwright_worker::helm::register(&mut registry, &clients, workflows);
    hubwright_worker::kubernetes::register(&mut registry, &clients);
    hubwright_worker::hub::register(&mut registry, Some(Arc::new(crate::test_secret_keys())));
    hubwright_worker::idp::register(
        &mut registry,
        &clients,
        Some(Arc::new(crate::test_secret_keys())),
    );
    registry
}

/// A configuration that makes lease loss and rescue happen within seconds.
pub fn fast_config(id: &str) -> WorkerConfig {
    WorkerConfig {
        id: id.to_owned(),
        concurrency: 8,
        lease: Duration::from_secs(2),
        poll_interval: Duration::from_millis(100),
        rescue_interval: Duration::from_millis(200),
        claim_batch: 32,
        shutdown_grace: Duration::from_secs(5),
    }
}

/// Starts an in-process worker.
pub fn spawn_worker(store: &Store, config: WorkerConfig) -> WorkerHandle {
    spawn_worker_with(store, registry(), config)
}

/// Starts an in-process worker with the kinds of `registry`.
pub fn spawn_worker_with(store: &Store, registry: Registry, config: WorkerConfig) -> WorkerHandle {
    Worker::new(store.clone(), registry, config, Arc::new(SystemClock))
        .expect("valid worker config")
        .spawn()
}

/// Loads and registers the workflows in `dir`.
pub async fn catalog(store: &Store, dir: &Path) -> Catalog {
    let mut catalog = registry().load_catalog(dir).expect("valid workflows");
    catalog.register(store).await.expect("register definitions");
    catalog
}

/// Enqueues `template`/`workflow` with no parameters; returns the run id.
pub async fn start(store: &Store, catalog: &Catalog, template: &str, workflow: &str) -> Uuid {
    let (snapshot, definition_id) = catalog
        .definition(template, workflow)
        .expect("workflow exists");
    let now = SystemClock.now();
    store
        .enqueue(
            &NewRun::new(definition_id, snapshot, json!({}), "test", now),
            now,
        )
        .await
        .expect("enqueue")
}

/// Enqueues `count` runs in batches; returns their ids.
pub async fn start_many(
    store: &Store,
    catalog: &Catalog,
    template: &str,
    workflow: &str,
    count: usize,
) -> Vec<Uuid> {
    let (snapshot, definition_id) = catalog
        .definition(template, workflow)
        .expect("workflow exists");
    let now = SystemClock.now();
    let runs: Vec<NewRun<'_>> = (0..count)
        .map(|_| NewRun::new(definition_id, snapshot, json!({}), "test", now))
        .collect();
    for chunk in runs.chunks(500) {
        store.enqueue_many(chunk, now).await.expect("enqueue batch");
    }
    runs.iter().map(|r| r.id).collect()
}

/// The effect log written by `test-record`: (run, step, attempt, worker) per line.
pub fn effects(path: &Path) -> Vec<(Uuid, i32, i32, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            (
                parts[0].parse().expect("run id"),
                parts[1].parse().expect("step"),
                parts[2].parse().expect("attempt"),
                parts[3].to_owned(),
            )
        })
        .collect()
}
