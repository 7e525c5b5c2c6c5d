//! `helm-release`, `helm-uninstall` and `health-check`: the hub itself.
//!
//! `helm-release` renders the values template, recovers a release an
//! interrupted attempt left pending, and runs `helm upgrade --install` without
//! `--wait`; `health-check` is the durable wait for the hub's Deployments and
//! `/hub/health`; `helm-uninstall` removes the release (not found is done).

pub mod cli;
pub mod values;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::workflow::Dur;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::kubernetes::errors::Call;
use crate::kubernetes::{ClusterClients, namespace_of};
use crate::registry::Registry;
use crate::step::{Outcome, Step, StepContext, StepError};
use crate::values::{environment_values, fill};
use cli::{ChartRef, Helm};

/// What the three kinds share.
#[derive(Debug)]
pub struct HelmShared {
    clusters: Arc<ClusterClients>,
    /// Relative chart paths and values templates are found here.
    workflows: PathBuf,
    bin: PathBuf,
    http: reqwest::Client,
}

/// Registers `helm-release`, `helm-uninstall` and `health-check`. `workflows`
/// is the directory the workflow files came from; `helm` is `$HELM_BIN` or
/// the `helm` on `PATH`.
pub fn register(registry: &mut Registry, clusters: &Arc<ClusterClients>, workflows: &Path) {
    let bin = std::env::var_os("HELM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("helm"));
    register_with_bin(registry, clusters, workflows, bin);
}

/// [`register`] with the `helm` binary given, for a process that cannot set
/// `HELM_BIN` in its own environment (the sandbox demo's in-process worker).
pub fn register_with_bin(
    registry: &mut Registry,
    clusters: &Arc<ClusterClients>,
    workflows: &Path,
    bin: PathBuf,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let shared = Arc::new(HelmShared {
        clusters: Arc::clone(clusters),
        workflows: workflows.to_owned(),
        bin,
        http,
    });
    registry
        .register(HelmReleaseStep(Arc::clone(&shared)))
        .register(HelmUninstallStep(Arc::clone(&shared)))
        .register(HealthCheckStep(shared));
}

/// Parameters of `helm-release`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmReleaseParams {
    /// The chart's name in `repository`, or a chart directory or `.tgz`
    /// (relative to the workflows directory) for air-gapped clusters.
    pub chart: String,
    /// The chart repository's URL.
    #[serde(default)]
    pub repository: Option<String>,
    /// The pinned chart version.
    #[serde(default)]
    pub version: Option<String>,
    /// The minijinja values template, relative to the workflows directory.
    pub values: String,
    /// The release name; unique per cluster (the JupyterHub chart names
    /// cluster-wide objects after it). Default: the namespace, which is.
    #[serde(default = "default_release")]
    pub release: String,
    /// Helm's `--timeout` for applying the objects (not for readiness).
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_release() -> String {
    "{env.namespace}".to_owned()
}

fn default_timeout() -> Dur {
    Dur::from_secs(300)
}

/// `helm-release`: installs or upgrades the hub's release.
#[derive(Debug, Clone)]
pub struct HelmReleaseStep(Arc<HelmShared>);

impl Step for HelmReleaseStep {
    const KIND: &'static str = "helm-release";
    type Params = HelmReleaseParams;

    async fn run(&self, ctx: &StepContext, params: HelmReleaseParams) -> Outcome {
        match self.execute(ctx, &params).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::from_error(error),
        }
    }
}

/// The release of an environment, resolved, with the values template's context.
struct Target {
    helm: Helm,
    context: Value,
}

impl HelmShared {
    async fn target(&self, ctx: &StepContext, release: &str) -> Result<Target, StepError> {
        let env = ctx.environment().await?;
        let cluster = self.clusters.config(&env.cluster)?;
        let values = environment_values(&ctx.input, &env, Some(cluster));
        let release = fill(release, &values, "release")?;
        let namespace = namespace_of(&env)?.to_owned();
        // The values template sees the request, the environment, the cluster
        // and earlier steps' outputs (which never hold secrets).
        let context = json!({
            "params": ctx.input.as_ref(),
            "env": { "id": env.id, "name": env.name, "owner": env.owner, "namespace": namespace, "template": env.template },
            "cluster": { "name": env.cluster, "base_domain": cluster.base_domain, "tls_issuer": cluster.tls_issuer },
            "release": release,
            "steps": ctx.outputs().await?,
        });
        Ok(Target {
            helm: Helm::new(self.bin.clone(), cluster, &namespace, &release),
            context,
        })
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.workflows.join(relative)
    }
}

impl HelmReleaseStep {
    async fn execute(
        &self,
        ctx: &StepContext,
        params: &HelmReleaseParams,
    ) -> Result<Outcome, StepError> {
        let target = self.0.target(ctx, &params.release).await?;
        let timeout = params.timeout.0;
        let rendered = values::render(&self.0.path(&params.values), &target.context)?;

        if let Some(release) = target.helm.status().await?
            && let Some(outcome) = recover(ctx, &target.helm, &release, timeout).await?
        {
            return Ok(outcome);
        }
        let chart = ChartRef {
            chart: match &params.repository {
                Some(_) => params.chart.clone(),
                None => self.0.path(&params.chart).display().to_string(),
            },
            version: params.version.clone(),
            repository: params.repository.clone(),
        };
        let file = ValuesFile::write(&rendered)?;
        let release = target
            .helm
            .upgrade_install(&chart, file.path(), timeout)
            .await?;
        drop(file);
        let chart = release.chart.map(|chart| chart.metadata);
        Ok(Outcome::Done(json!({
            "release": target.helm.release,
            "namespace": target.helm.namespace,
            "chart": chart.as_ref().map(|c| c.name.clone()),
            "chart_version": chart.map(|c| c.version),
            "revision": release.version,
            "status": release.info.status,
        })))
    }
}

/// A release an interrupted attempt left `pending-*` blocks every Helm call
/// ("another operation is in progress"). Recent: that helm may still be
/// running (a worker's orphaned child), so wait. Older than the timeout:
/// nobody is finishing it; uninstall a pending install, roll back the rest.
async fn recover(
    ctx: &StepContext,
    helm: &Helm,
    release: &cli::Release,
    timeout: Duration,
) -> Result<Option<Outcome>, StepError> {
    let status = release.info.status.as_str();
    if !status.starts_with("pending-") {
        return Ok(None);
    }
    let started = release
        .info
        .last_deployed
        .as_deref()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|at| at.with_timezone(&chrono::Utc));
    let grace = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    if let Some(started) = started
        && ctx.now() - started < grace
    {
        return Ok(Some(Outcome::wait(
            ctx,
            Duration::from_secs(5),
            format!(
                "release {} is {status} since {started}; an earlier helm may still be running",
                helm.release
            ),
        )));
    }
    tracing::warn!(release = %helm.release, %status, "recovering a release an interrupted attempt left pending");
    if status == "pending-install" {
        helm.uninstall(timeout).await?;
    } else {
        helm.rollback(timeout).await?;
    }
    Ok(None)
}

/// The rendered values on disk for one helm call: readable by this user
/// only, and removed when dropped.
struct ValuesFile(PathBuf);

impl ValuesFile {
    fn write(text: &str) -> Result<Self, StepError> {
        let path = std::env::temp_dir().join(format!(
            "hubwright-values-{}.yaml",
            uuid::Uuid::now_v7().simple()
        ));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|err| StepError::retryable(format!("writing the values file: {err}")))?;
        let guard = Self(path);
        file.write_all(text.as_bytes())
            .map_err(|err| StepError::retryable(format!("writing the values file: {err}")))?;
        Ok(guard)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ValuesFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Parameters of `helm-uninstall`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmUninstallParams {
    /// The release name (as `helm-release` had it).
    #[serde(default = "default_release")]
    pub release: String,
    /// Helm's `--timeout`.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

/// `helm-uninstall`: removes the release; not found is done.
#[derive(Debug, Clone)]
pub struct HelmUninstallStep(Arc<HelmShared>);

impl Step for HelmUninstallStep {
    const KIND: &'static str = "helm-uninstall";
    type Params = HelmUninstallParams;

    async fn run(&self, ctx: &StepContext, params: HelmUninstallParams) -> Outcome {
        let result = async {
            let target = self.0.target(ctx, &params.release).await?;
            let removed = target.helm.uninstall(params.timeout.0).await?;
            Ok(json!({ "release": target.helm.release, "uninstalled": removed }))
        }
        .await;
        result.into()
    }
}

/// Parameters of `health-check`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckParams {
    /// Deployments in the namespace that must be available first.
    #[serde(default = "default_deployments")]
    pub deployments: Vec<String>,
    /// The hub's URL (placeholders allowed), e.g.
    /// `https://{env.name}.{cluster.base_domain}`. Left out: the address the
    /// `proxy-public` Service's load balancer got.
    #[serde(default)]
    pub url: Option<String>,
    /// The health endpoint under the URL.
    #[serde(default = "default_health_path")]
    pub path: String,
    /// How long from the step's first start before it fails.
    #[serde(default = "default_deadline")]
    pub deadline: Dur,
    /// How often to look again.
    #[serde(default = "default_interval")]
    pub interval: Dur,
}

fn default_deployments() -> Vec<String> {
    vec!["hub".to_owned(), "proxy".to_owned()]
}

fn default_health_path() -> String {
    "/hub/health".to_owned()
}

fn default_deadline() -> Dur {
    Dur::from_secs(600)
}

fn default_interval() -> Dur {
    Dur::from_secs(5)
}

/// `health-check`: waits, durably, for the hub to be up; reports its `url`.
#[derive(Debug, Clone)]
pub struct HealthCheckStep(Arc<HelmShared>);

impl Step for HealthCheckStep {
    const KIND: &'static str = "health-check";
    type Params = HealthCheckParams;

    async fn run(&self, ctx: &StepContext, params: HealthCheckParams) -> Outcome {
        match self.execute(ctx, &params).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::from_error(error),
        }
    }
}

impl HealthCheckStep {
    async fn execute(
        &self,
        ctx: &StepContext,
        params: &HealthCheckParams,
    ) -> Result<Outcome, StepError> {
        let env = ctx.environment().await?;
        let namespace = namespace_of(&env)?.to_owned();
        let client = self.0.clusters.client(&env.cluster).await?;
        let past_deadline = ctx.now() - ctx.first_started_at > params.deadline.to_chrono();
        let not_yet = |seen: String| -> Result<Outcome, StepError> {
            if past_deadline {
                Err(StepError::permanent(format!(
                    "the hub was not healthy within {}: {seen}",
                    params.deadline
                )))
            } else {
                Ok(Outcome::wait(
                    ctx,
                    params.interval.0,
                    format!("waiting for the hub: {seen}"),
                ))
            }
        };

        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        for name in &params.deployments {
            let call = Call {
                cluster: &env.cluster,
                verb: "get",
                resource: "deployments",
                name,
            };
            let deployment = deployments
                .get_opt(name)
                .await
                .map_err(|err| call.error(&err))?;
            if let Some(unavailable) = unavailable(name, deployment.as_ref()) {
                return not_yet(unavailable);
            }
        }

        let url = match &params.url {
            Some(url) => {
                let values =
                    environment_values(&ctx.input, &env, self.0.clusters.config(&env.cluster).ok());
                let values = crate::values::with_outputs(values, &ctx.outputs().await?);
                fill(url, &values, "url")?
            }
            None => match load_balancer_url(&client, &env.cluster, &namespace).await? {
                Some(url) => url,
                None => {
                    return not_yet(
                        "service proxy-public has no load balancer address yet".to_owned(),
                    );
                }
            },
        };
        let url = url.trim_end_matches('/').to_owned();
        let health = format!("{url}{}", params.path);
        match self.0.http.get(&health).send().await {
            Ok(response) if response.status().is_success() => Ok(Outcome::Done(
                json!({ "url": url, "health": response.status().as_u16() }),
            )),
            Ok(response) => {
                let status = response.status().as_u16();
                let body: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                not_yet(format!("GET {health} answered {status}: {body}"))
            }
            Err(err) => not_yet(format!("GET {health} failed: {err}")),
        }
    }
}

/// Why `deployment` is not available yet, if it is not.
fn unavailable(name: &str, deployment: Option<&Deployment>) -> Option<String> {
    let Some(deployment) = deployment else {
        return Some(format!("deployment {name} does not exist"));
    };
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let status = deployment.status.as_ref();
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    let condition = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Available"));
    if available >= wanted && condition.is_none_or(|c| c.status == "True") {
        return None;
    }
    let why = condition
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "no Available condition yet".to_owned());
    Some(format!(
        "deployment {name} has {available}/{wanted} available ({why})"
    ))
}

/// `http://<address>` of the `proxy-public` load balancer, once it has one.
async fn load_balancer_url(
    client: &kube::Client,
    cluster: &str,
    namespace: &str,
) -> Result<Option<String>, StepError> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let call = Call {
        cluster,
        verb: "get",
        resource: "services",
        name: "proxy-public",
    };
    let service = services
        .get_opt("proxy-public")
        .await
        .map_err(|err| call.error(&err))?;
    Ok(service
        .and_then(|service| service.status)
        .and_then(|status| status.load_balancer)
        .and_then(|lb| lb.ingress)
        .and_then(|ingress| ingress.into_iter().next())
        .and_then(|ingress| ingress.hostname.or(ingress.ip))
        .map(|address| format!("http://{address}")))
}
