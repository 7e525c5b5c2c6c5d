//! [`Lab`]: what a test of the environment steps needs — a database, a
//! Kubernetes API (the stand-in, or a real cluster with `KUBECONFIG`), one
//! template, a clusters file pointing at the cluster, workers in-process or as
//! real processes, and environments requested straight through the store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hubwright_state::clusters::Clusters;
use hubwright_state::model::RunState;
use hubwright_state::store::enqueue::{NewRun, new_id};
use hubwright_state::store::environments::NewEnvironment;
use hubwright_state::workflow::Catalog;
use hubwright_state::{Clock, Store, SystemClock};
use hubwright_worker::WorkerHandle;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::harness::{fast_config, registry_with_clusters, spawn_worker_with};
use crate::process::Process;
use crate::{TestDatabase, scratch_dir, wait, write_workflow};
use hubwright_sandbox::apiserver::TestCluster;

/// Long enough for a real cluster to finish deleting a namespace.
pub const WITHIN: Duration = Duration::from_secs(90);

/// An environment as requested: its id, namespace and provisioning run.
#[derive(Debug, Clone)]
pub struct Requested {
    /// The environment.
    pub id: Uuid,
    /// Its namespace.
    pub namespace: String,
    /// Its provisioning run.
    pub run_id: Uuid,
}

/// A database, a cluster and the template `hub`.
#[derive(Debug)]
pub struct Lab {
    /// The test database.
    pub db: TestDatabase,
    /// The Kubernetes API.
    pub cluster: TestCluster,
    /// The registered template.
    pub catalog: Catalog,
    /// `clusters.yaml` with one cluster, `default`, pointing at [`Lab::cluster`].
    pub clusters_file: PathBuf,
    /// The workflows directory.
    pub workflows: PathBuf,
    dir: PathBuf,
}

impl Lab {
    /// Starts everything around `template` (a workflow file whose `name` is `hub`).
    pub async fn new(template: &str) -> Self {
        let db = TestDatabase::create().await;
        // The tests wait for namespaces to go, and a real cluster's pace
        // (seconds) would only slow them down.
        let cluster = TestCluster::from_env_terminating_quickly()
            .await
            .expect("start a Kubernetes API");
        let dir = scratch_dir("lab");
        let workflows = write_workflow(&dir.join("workflows"), "hub", template);
        let clusters_file = dir.join("clusters.yaml");
        let mut default = json!({ "kubeconfig": cluster.kubeconfig() });
        if let Some(context) = cluster.context() {
            default["context"] = json!(context);
        }
        let yaml = serde_yaml_ng::to_string(&json!({ "clusters": { "default": default } }))
            .expect("clusters file as YAML");
        std::fs::write(&clusters_file, yaml).expect("write the clusters file");
        let clusters = Clusters::load(&clusters_file).expect("a valid clusters file");
        let mut catalog = registry_with_clusters(&clusters, &workflows)
            .load_catalog(&workflows)
            .expect("a valid template");
        catalog
            .register(&db.store)
            .await
            .expect("register the template");
        Self {
            db,
            cluster,
            catalog,
            clusters_file,
            workflows,
            dir,
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.db.store
    }

    /// A worker in this process, with every kind `hubwright serve` has.
    pub fn worker(&self, id: &str) -> WorkerHandle {
        let clusters = Clusters::load(&self.clusters_file).expect("a valid clusters file");
        spawn_worker_with(
            self.store(),
            registry_with_clusters(&clusters, &self.workflows),
            fast_config(id),
        )
    }

    /// A `hubwright serve --worker` process (`bin`: `env!("CARGO_BIN_EXE_hubwright")`)
    /// with fast leases, its log in this lab's directory as `<name>.log`.
    pub fn worker_process(&self, bin: &str, name: &str, env: &[(&str, &str)]) -> Process {
        let clusters = self.clusters_file.display().to_string();
        let workflows = self.workflows.display().to_string();
        let args = [
            "serve",
            "--worker",
            "--workflows",
            &workflows,
            "--clusters",
            &clusters,
            "--lease",
            "2s",
            "--rescue-interval",
            "300ms",
            "--poll-interval",
            "100ms",
        ];
        Process::start_with_env(
            Path::new(bin),
            &self.db.url,
            &args,
            env,
            &self.dir.join(format!("{name}.log")),
        )
    }

    /// A client for the cluster.
    pub async fn client(&self) -> kube::Client {
        self.cluster.client().await.expect("a Kubernetes client")
    }

    /// Requests an environment with `parameters`, straight through the store.
    pub async fn request(&self, parameters: Value) -> Requested {
        let name = self.cluster.unique_name("lab");
        let loaded = self.catalog.template("hub").expect("template hub");
        let id = new_id();
        let namespace = loaded.template.namespace_for(&name, id);
        // Deleted when the lab goes, whatever the test's outcome.
        self.cluster.delete_on_drop(&namespace);
        let given: Map<String, Value> = parameters.as_object().cloned().unwrap_or_default();
        let parameters = loaded
            .template
            .resolve_parameters(&given)
            .expect("valid parameters");
        let now = SystemClock.now();
        let accepted = self
            .store()
            .request_environment(
                &NewEnvironment {
                    id,
                    name: &name,
                    owner: "alice@example.com",
                    template: "hub",
                    cluster: "default",
                    namespace: &namespace,
                    parameters: Value::Object(parameters),
                    expires_at: now + chrono::Duration::hours(1),
                    traceparent: None,
                },
                self.catalog
                    .definition("hub", "provision")
                    .expect("provision"),
                None,
                now,
            )
            .await
            .expect("request an environment");
        Requested {
            id,
            namespace,
            run_id: accepted.run_id,
        }
    }

    /// Requests the teardown of `env`; returns its run once it has started.
    pub async fn teardown(&self, env: Uuid) -> Uuid {
        let (_, definition_id) = self
            .catalog
            .definition("hub", "teardown")
            .expect("teardown");
        self.store()
            .request_teardown(
                env,
                definition_id,
                "alice@example.com",
                SystemClock.now(),
                None,
            )
            .await
            .expect("request teardown");
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let Some(run_id) = self.store().latest_run_id(env).await.expect("read runs")
                && self.store().run(run_id).await.expect("read run").workflow == "teardown"
            {
                return run_id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no teardown run started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `workflow` of `env` again, as a new run.
    pub async fn run_again(&self, env: Uuid, workflow: &str) -> Uuid {
        let (snapshot, definition_id) = self.catalog.definition("hub", workflow).expect("workflow");
        let input = self
            .store()
            .environment(env)
            .await
            .expect("environment")
            .parameters;
        let now = SystemClock.now();
        let mut run = NewRun::new(definition_id, snapshot, input, "ops", now);
        run.environment_id = Some(env);
        self.store().enqueue(&run, now).await.expect("enqueue")
    }

    /// An operator's retry of `run_id` from its first step.
    pub async fn retry(&self, run_id: Uuid) {
        self.store()
            .retry_run(run_id, Some(0), "ops", SystemClock.now())
            .await
            .expect("retry");
    }

    /// Until the run is waiting with an event that contains `needle`.
    pub async fn waiting_for(&self, run_id: Uuid, needle: &str) {
        wait::run_state(self.store(), run_id, RunState::Waiting, WITHIN).await;
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let events = self.store().events(run_id, 0, 1000).await.expect("events");
            if events.iter().any(|event| event.message.contains(needle)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no event mentions `{needle}`: {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
