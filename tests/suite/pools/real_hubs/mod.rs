//! Warm pools of real JupyterHubs: `workflows/jupyterhub.yaml` itself (its
//! pool, its `assign` workflow), provisioned by the real steps into the
//! Kubernetes stand-in with the real `helm` and the real oidc-provider, each
//! release's hub started by the sandbox's [`HubFarm`]; requests through the
//! API, logins through the provider's pages into the hub.
//!
//! The scheduler's passes are the test's to make (a pool refills when the
//! test says), on a clock the test can move ahead (idle members), which the
//! worker shares so that what the scheduler starts is due for it.

mod hand_over;
mod recycle;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubwright_sandbox::helm::{HelmVersion, chart_dir, helm_binary};
use hubwright_sandbox::hub_farm::HubFarm;
use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::Clock;
use hubwright_state::clusters::Clusters;
use hubwright_state::model::Role;
use hubwright_state::workflow::{Catalog, CatalogHolder};
use hubwright_testkit::console::no_redirects;
use hubwright_testkit::cookies::Jar;
use hubwright_testkit::harness::{fast_config, registry_with_clusters};
use hubwright_testkit::lab::Lab;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::wait;
use hubwright_worker::kubernetes::ClusterClients;
use hubwright_worker::{Scheduler, SchedulerConfig, WorkerHandle};
use reqwest::Url;
use serde_json::{Value, json};

/// Long enough for a hub to be provisioned on a loaded two-core machine.
const WITHIN: Duration = Duration::from_secs(120);

/// Who may log in to every member: the platform's admin.
const PLATFORM_ADMIN: &str = "platform-admin";

/// The wall clock moved ahead by what the test says.
#[derive(Debug, Clone, Default)]
pub struct Shifted(Arc<AtomicI64>);

impl Shifted {
    /// Moves the clock ahead by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        self.0.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for Shifted {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.0.load(Ordering::SeqCst))
    }
}

/// `workflows/jupyterhub.yaml` as the template `hub`, pointed at this
/// machine: the provider, the hub-shaped chart, a quick health check that
/// finds the hub behind its load balancer, `platform-admin` as the pool's
/// admin, and each `(from, to)` of `changes`.
fn template(issuer: &str, changes: &[(&str, &str)]) -> String {
    let real = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub.yaml"),
    )
    .unwrap();
    let chart = format!("          chart: {}\n", chart_dir().display());
    let admins = format!("  max_idle: 12h\n  parameters: {{ admin_users: [{PLATFORM_ADMIN}] }}\n");
    let replacements = [
        ("name: jupyterhub\n", "name: hub\n"),
        ("https://sso.example.org/realms/hubs", issuer),
        (
            "          initial_access_token_env: HUBWRIGHT_IDP_INITIAL_ACCESS_TOKEN\n",
            "",
        ),
        (
            "          chart: jupyterhub\n          repository: https://hub.jupyter.org/helm-chart/\n          version: 4.2.0\n",
            &chart,
        ),
        (
            "        with:\n          deadline: 15m\n",
            "        with:\n          deadline: 2m\n          interval: 200ms\n",
        ),
        ("  max_idle: 12h\n", &admins),
        // The sandbox's provider sends the groups claim for this scope.
        (
            "    default: [openid, profile, email]\n",
            "    default: [openid, profile, email, groups]\n",
        ),
    ];
    let mut text = real;
    for (from, to) in replacements.iter().chain(changes) {
        assert!(
            text.contains(from),
            "workflows/jupyterhub.yaml no longer has {from:?}"
        );
        text = text.replace(from, to);
    }
    text
}

/// Everything around a pool of real hubs.
pub struct HubPool {
    pub provider: OidcProvider,
    pub lab: Lab,
    pub farm: HubFarm,
    pub api: ApiServer,
    pub clock: Shifted,
    pub ops: String,
    scheduler: Scheduler,
    _worker: WorkerHandle,
}

impl HubPool {
    /// The pool with `changes` to the template; `None` (printed) on a real
    /// cluster, whose pods would need the real chart and reachable hubs.
    pub async fn start(changes: &[(&str, &str)]) -> Option<Self> {
        let groups = [("dana", "physics"), ("frank", "chemistry")]
            .into_iter()
            .map(|(user, group)| (user.to_owned(), vec![group.to_owned()]))
            .collect();
        let provider = OidcProvider::start(Options {
            groups,
            ..Options::default()
        })
        .await
        .unwrap();
        let lab = Lab::new(&template(provider.issuer(), changes)).await;
        if lab.cluster.is_real() {
            eprintln!("skipped on a real cluster: the hub farm plays the stand-in's pods");
            return None;
        }
        std::fs::create_dir_all(lab.workflows.join("jupyterhub")).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub/values.yaml.j2"),
            lab.workflows.join("jupyterhub/values.yaml.j2"),
        )
        .unwrap();
        let helm = helm_binary(HelmVersion::V3).await.unwrap();
        let farm = HubFarm::start(&lab.cluster, Default::default())
            .await
            .unwrap();
        let clock = Shifted::default();
        let clusters = Clusters::load(&lab.clusters_file).unwrap();
        let mut registry = registry_with_clusters(&clusters, &lab.workflows);
        hubwright_worker::helm::register_with_bin(
            &mut registry,
            &ClusterClients::new(clusters),
            &lab.workflows,
            helm,
        );
        let worker = hubwright_worker::Worker::new(
            lab.store().clone(),
            registry,
            fast_config("pool-worker"),
            Arc::new(clock.clone()),
        )
        .unwrap()
        .spawn();
        let scheduler = scheduler(&lab, &lab.catalog, &clock);
        let clusters_file = lab.clusters_file.display().to_string();
        let api = ApiServer::start(&lab.db, &lab.workflows, &["--clusters", &clusters_file]).await;
        let ops = token(lab.store(), "ops", Role::Operator).await;
        Some(Self {
            provider,
            lab,
            farm,
            api,
            clock,
            ops,
            scheduler,
            _worker: worker,
        })
    }

    /// One scheduler pass: expiries, then every pool topped up.
    pub async fn pass(&self) -> usize {
        self.scheduler.pass(true).await.unwrap()
    }

    /// From now on the scheduler keeps the pools of `catalog`, and the API
    /// serves it (restarted, as a rollout of a changed template restarts
    /// every process).
    pub async fn use_catalog(&mut self, catalog: &Catalog) {
        self.scheduler = scheduler(&self.lab, catalog, &self.clock);
        let clusters_file = self.lab.clusters_file.display().to_string();
        self.api = ApiServer::start(
            &self.lab.db,
            &self.lab.workflows,
            &["--clusters", &clusters_file],
        )
        .await;
    }

    /// The pool's figures from `GET /v1/pools`.
    pub async fn figures(&self) -> Value {
        let reply = self.api.get("/v1/pools").token(&self.ops).send().await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        reply.body["items"][0].clone()
    }

    /// Waits until the pool has `count` ready members.
    pub async fn until_ready_members(&self, count: i64) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let figures = self.figures().await;
            assert!(
                self.farm.failures().is_empty(),
                "hubs failed to start: {:?}",
                self.farm.failures()
            );
            if figures["ready"] == count {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{count} ready pool members not within {WITHIN:?}: {figures:#}\n{}",
                    self.situation().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every environment's phase, last error and current step, and the
    /// farm's hubs: what a timed-out wait prints.
    pub async fn situation(&self) -> String {
        let reply = self
            .api
            .get("/v1/environments")
            .token(&self.ops)
            .send()
            .await;
        let mut lines = Vec::new();
        for env in reply.body["items"].as_array().into_iter().flatten() {
            let id = env["id"].as_str().unwrap_or_default();
            let shown = self.environment(id).await;
            let steps: Vec<String> = shown["current_run"]["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| format!("{}={} {}", s["name"], s["state"], s["last_error"]))
                .collect();
            lines.push(format!(
                "{} {} {} {} url={} error={} steps={steps:?}",
                id, env["owner"], env["namespace"], env["phase"], env["url"], env["last_error"]
            ));
        }
        let digests: Vec<(String, Option<String>, Option<chrono::DateTime<Utc>>)> = sqlx::query_as(
            "SELECT id::text, pool_digest, claimed_at FROM environments ORDER BY id",
        )
        .fetch_all(self.lab.store().pool())
        .await
        .unwrap();
        lines.push(format!("digests: {digests:?}"));
        lines.push(format!("farm running: {:?}", self.farm.running()));
        lines.push(format!("farm failures: {:?}", self.farm.failures()));
        lines.join("\n")
    }

    /// The pool's unclaimed ready members, oldest first, as the API shows
    /// them to operators.
    pub async fn members(&self) -> Vec<Value> {
        let reply = self
            .api
            .get("/v1/environments")
            .token(&self.ops)
            .send()
            .await;
        let mut members: Vec<Value> = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["owner"] == "pool:hub" && e["phase"] == "ready")
            .cloned()
            .collect();
        members.sort_by_key(|e| {
            (
                e["created_at"].as_str().map(str::to_owned),
                e["id"].as_str().map(str::to_owned),
            )
        });
        members
    }

    /// `who` (a developer) asks for an environment `name` of the template.
    pub async fn request(&self, who: &str, name: &str, parameters: Value) -> Reply {
        let token = token(self.lab.store(), who, Role::Developer).await;
        let reply = self
            .api
            .post("/v1/environments")
            .token(&token)
            .json(&json!({ "name": name, "template": "hub", "parameters": parameters }))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
        reply
    }

    /// The environment `id` as operators see it.
    pub async fn environment(&self, id: &str) -> Value {
        self.api
            .get(&format!("/v1/environments/{id}"))
            .token(&self.ops)
            .send()
            .await
            .body
    }

    /// Waits until environment `id` is in `phase`; panics on another final one.
    pub async fn until_phase(&self, id: &str, phase: &str) -> Value {
        wait::until_some(&format!("environment {id} {phase}"), WITHIN, || async {
            let shown = self.environment(id).await;
            for end in ["ready", "failed", "deleted"] {
                assert!(
                    shown["phase"] != end || end == phase,
                    "environment {id} is {end}, not {phase}: {shown:#}"
                );
            }
            (shown["phase"] == phase).then_some(shown)
        })
        .await
    }

    /// Kinds of the environment's events, oldest first.
    pub async fn event_kinds(&self, id: &str) -> Vec<String> {
        sqlx::query_scalar::<_, String>(
            "SELECT kind FROM events WHERE environment_id = $1::uuid ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.lab.store().pool())
        .await
        .unwrap()
    }
}

fn scheduler(lab: &Lab, catalog: &Catalog, clock: &Shifted) -> Scheduler {
    let config = SchedulerConfig {
        sweep_interval: Duration::from_secs(3600),
        warnings: vec![],
    };
    Scheduler::new(
        lab.store().clone(),
        Arc::new(CatalogHolder::fixed(catalog.clone())),
        config,
        Arc::new(clock.clone()),
    )
    .unwrap()
}

/// `username` logs in to the hub at `hub` through the provider's pages:
/// the hub's answer to the callback (302 in, 403 refused) and, when let in,
/// the user as the hub's own API shows them to themselves.
pub async fn log_in(hub: &str, provider: &OidcProvider, username: &str) -> (StatusCode, Value) {
    let http = no_redirects();
    let mut jar = Jar::default();
    let login = http
        .get(format!("{hub}/hub/oauth_login"))
        .send()
        .await
        .unwrap();
    jar.take(&login);
    assert_eq!(login.status(), StatusCode::FOUND, "{hub}/hub/oauth_login");
    let authorization =
        Url::parse(login.headers()[reqwest::header::LOCATION].to_str().unwrap()).unwrap();
    let callback = provider.log_in_at(authorization, username).await.unwrap();
    assert!(
        callback
            .as_str()
            .starts_with(&format!("{hub}/hub/oauth_callback")),
        "the provider sent {username} to {callback}, not back to {hub}"
    );
    let answer = http
        .get(callback)
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    jar.take(&answer);
    let status = answer.status();
    if status != StatusCode::FOUND {
        return (status, Value::Null);
    }
    let me = http
        .get(format!("{hub}/hub/api/user"))
        .header("cookie", jar.header())
        .header("X-XSRFToken", jar.get("_xsrf").unwrap_or_default())
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "{username} at {hub}/hub/api/user"
    );
    (status, me.json().await.unwrap())
}
