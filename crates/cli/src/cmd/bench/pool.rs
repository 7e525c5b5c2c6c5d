//! `hubwright bench pool`: how long a developer waits for a JupyterHub, from
//! `POST /v1/environments` until the API says `ready`, when a warm pool
//! serves the request and when it is provisioned cold.
//!
//! The sandbox of `hubwright demo --sandbox`, with the pool the shipped
//! template declares (two members): the Kubernetes API stand-in, the real
//! oidc-provider and helm, and a real JupyterHub for every release
//! ([`HubFarm`], in this process). `workflows/jupyterhub.yaml` is pointed at
//! them as the demo points it (provider, chart, a 200 ms health interval).
//! One `hubwright serve` child runs the API, the worker and the scheduler
//! (sweeping every 200 ms).
//!
//! Each timed request finds a full pool and no other work in flight: the
//! previous environment is deleted and gone, and for a pool hit the pool has
//! refilled. A hit asks with the pool's parameters (an allowed user, which a
//! claim may choose); a cold request asks for another `profile`, which the
//! pool cannot serve. The time is from sending the POST until a
//! `GET /v1/environments/{id}` (every 20 ms) answers `ready`, so it includes
//! up to 20 ms of polling.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hubwright_sandbox::apiserver::TestCluster;
use hubwright_sandbox::helm::{HelmVersion, helm_binary};
use hubwright_sandbox::hub_farm::HubFarm;
use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::model::Role;
use hubwright_state::{Clock, SystemClock};
use serde_json::{Value, json};

use super::process::Child;
use super::workloads::{percentile, round};
use crate::cmd::demo_hub::{TEMPLATE, write_template};

/// The first run installs JupyterHub and helm: minutes.
const SET_UP: Duration = Duration::from_secs(900);
/// One environment, ready or deleted.
const EACH: Duration = Duration::from_secs(300);

/// Runs the workload: `requests` pool hits, then `requests` cold ones.
pub(super) async fn pool(url: &str, workflows: &Path, requests: usize) -> anyhow::Result<Value> {
    if requests == 0 {
        bail!("--requests: must be at least 1");
    }
    let store = crate::cmd::connect(url, 4).await?;
    store.migrate().await?;
    if !store.count_runs_by_state().await?.is_empty() {
        bail!("DATABASE_URL must point at a fresh database");
    }
    let helm = helm_binary(HelmVersion::V3).await.context("getting helm")?;
    let cluster = TestCluster::standin_only()
        .await
        .context("starting the Kubernetes API stand-in")?;
    let provider = OidcProvider::start(Options::default())
        .await
        .context("starting oidc-provider")?;
    let dir = hubwright_sandbox::scratch_dir("bench-pool")?;
    let local = write_template(
        &dir,
        workflows,
        &[
            crate::cmd::demo_sandbox::sandbox_edits(provider.issuer()),
            vec![(
                "        with:\n          deadline: 15m\n",
                "        with:\n          deadline: 5m\n          interval: 200ms\n".to_owned(),
            )],
        ]
        .concat(),
    )?;
    let clusters = dir.join("clusters.yaml");
    std::fs::write(
        &clusters,
        serde_yaml_ng::to_string(&json!({ "clusters": { "default": {
            "kubeconfig": cluster.kubeconfig(),
            "context": cluster.context(),
        }}}))?,
    )?;
    let farm = HubFarm::start(&cluster, Default::default()).await?;
    let clusters_arg = clusters.display().to_string();
    let serve = Child::serve_with(
        url,
        &[
            "--api",
            "--worker",
            "--scheduler",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
            "--expiry-sweep-interval",
            "200ms",
            "--clusters",
            &clusters_arg,
        ],
        "api listening",
        &local,
        &[("HELM_BIN", helm.as_os_str())],
    )
    .await?;
    let now = SystemClock.now();
    let developer = store
        .create_token("bench-dev", Role::Developer, now)
        .await?
        .secret;
    let operator = store
        .create_token("bench-ops", Role::Operator, now)
        .await?
        .secret;
    let api = Api {
        http: hubwright_http::client(),
        base: serve.api_url()?,
        developer,
        operator,
    };
    let size = api.pool_size().await?;
    api.until_full(size, SET_UP, &farm).await?;

    let mut hits = Vec::with_capacity(requests);
    let mut cold = Vec::with_capacity(requests);
    for i in 0..requests {
        api.until_full(size, EACH, &farm).await?;
        let (seconds, namespace) = api
            .time_to_ready(
                &format!("hit-{i}"),
                json!({ "allowed_users": ["carol"] }),
                &farm,
            )
            .await?;
        if !namespace.starts_with("jh-pool-") {
            bail!("request hit-{i} was not served by the pool (namespace {namespace})");
        }
        hits.push(seconds);
    }
    for i in 0..requests {
        api.until_full(size, EACH, &farm).await?;
        let (seconds, namespace) = api
            .time_to_ready(
                &format!("cold-{i}"),
                json!({ "profile": "datascience" }),
                &farm,
            )
            .await?;
        if namespace.starts_with("jh-pool-") {
            bail!("request cold-{i} was served by the pool");
        }
        cold.push(seconds);
    }
    let figures = api.pool_figures().await?;
    serve.stop().await?;
    drop(farm);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "workload": "pool",
        "template": TEMPLATE,
        "pool_size": size,
        "hit_seconds": summary(hits),
        "cold_seconds": summary(cold),
        "claims": figures["claims"],
        "misses": figures["misses"],
        "ok": true,
    }))
}

fn summary(mut seconds: Vec<f64>) -> Value {
    seconds.sort_by(f64::total_cmp);
    let hundredths = |x: f64| (x * 100.0).round() / 100.0;
    json!({
        "requests": seconds.len(),
        "p50": hundredths(percentile(&seconds, 0.50)),
        "p95": hundredths(percentile(&seconds, 0.95)),
        "max": hundredths(percentile(&seconds, 1.0)),
        "mean": round(seconds.iter().sum::<f64>() / seconds.len().max(1) as f64),
    })
}

struct Api {
    http: reqwest::Client,
    base: String,
    developer: String,
    operator: String,
}

impl Api {
    async fn get(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }

    async fn pool_figures(&self) -> anyhow::Result<Value> {
        let pools = self.get("/v1/pools", &self.operator).await?;
        pools["items"]
            .as_array()
            .and_then(|items| items.iter().find(|p| p["template"] == TEMPLATE))
            .cloned()
            .with_context(|| format!("no pool of {TEMPLATE} in {pools}"))
    }

    async fn pool_size(&self) -> anyhow::Result<i64> {
        self.pool_figures().await?["size"]
            .as_i64()
            .filter(|size| *size > 0)
            .context("the template's pool has no size")
    }

    /// Waits until the pool has `size` ready members and nothing else is
    /// provisioning or being torn down.
    async fn until_full(&self, size: i64, within: Duration, farm: &HubFarm) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let pool = self.pool_figures().await?;
            let environments = self.get("/v1/environments", &self.operator).await?;
            let busy = environments["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| !matches!(e["phase"].as_str(), Some("ready" | "deleted")));
            if pool["ready"] == size && !busy {
                return Ok(());
            }
            if let Some(failure) = farm.failures().first() {
                bail!("a hub did not start: {failure}");
            }
            if Instant::now() > deadline {
                bail!("the pool did not fill within {within:?}: {pool}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Requests environment `name` with `parameters` and times it to
    /// `ready`; then deletes it and waits until it is gone. The seconds and
    /// the environment's namespace.
    async fn time_to_ready(
        &self,
        name: &str,
        parameters: Value,
        farm: &HubFarm,
    ) -> anyhow::Result<(f64, String)> {
        let asked = Instant::now();
        let response = self
            .http
            .post(format!("{}/v1/environments", self.base))
            .bearer_auth(&self.developer)
            .json(&json!({ "name": name, "template": TEMPLATE, "parameters": parameters }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if status.as_u16() != 202 {
            bail!("POST /v1/environments answered {status}: {body}");
        }
        let id = body["environment"]["id"]
            .as_str()
            .context("no environment id")?
            .to_owned();
        let namespace = body["environment"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let path = format!("/v1/environments/{id}");
        let deadline = asked + EACH;
        let seconds = loop {
            let shown = self.get(&path, &self.developer).await?;
            match shown["phase"].as_str() {
                Some("ready") => break asked.elapsed().as_secs_f64(),
                Some("failed" | "cancelled" | "deleted") => {
                    bail!("{name} ended {}: {}", shown["phase"], shown["last_error"])
                }
                _ if Instant::now() > deadline => bail!(
                    "{name} not ready within {EACH:?}; hubs running: {:?}, failed: {:?}",
                    farm.running(),
                    farm.failures()
                ),
                _ => {
                    if let Some(failure) = farm.failures().first() {
                        bail!("{name}: a hub did not start: {failure}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let deleted = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(&self.developer)
            .send()
            .await?;
        if !deleted.status().is_success() {
            bail!("DELETE {path} answered {}", deleted.status());
        }
        let deadline = Instant::now() + EACH;
        while self.get(&path, &self.operator).await?["phase"] != "deleted" {
            if Instant::now() > deadline {
                bail!("{name} not deleted within {EACH:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((seconds, namespace))
    }
}
