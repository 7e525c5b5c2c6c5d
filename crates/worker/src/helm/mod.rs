//! `helm-release`, `helm-uninstall` and `health-check`: the hub itself.
//!
//! `helm-release` renders the values template, recovers a release an
//! interrupted attempt left pending, and runs `helm upgrade --install` without
//! `--wait`; `health-check` is the durable wait for the hub's Deployments and
//! `/hub/health`; `helm-uninstall` removes the release (not found is done).

pub mod cli;
mod health;
pub mod values;

pub use health::{HealthCheckParams, HealthCheckStep, OnDeadline};

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::workflow::Dur;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::kubernetes::{ClusterClients, namespace_of};
use crate::registry::Registry;
use crate::step::{Outcome, Step, StepContext, StepError};
use crate::values::{environment_values, fill};
use cli::{ChartRef, Helm};

/// What the three kinds share.
#[derive(Debug)]
pub struct HelmShared {
    pub(crate) clusters: Arc<ClusterClients>,
    /// Relative chart paths and values templates are found here.
    workflows: PathBuf,
    bin: PathBuf,
    pub(crate) http: reqwest::Client,
}

/// Registers `helm-release`, `helm-uninstall` and `health-check`. `workflows`
/// is the directory the workflow files came from; `helm` is `$HELM_BIN` or
/// the `helm` on `PATH`.
pub fn register(registry: &mut Registry, clusters: &Arc<ClusterClients>, workflows: &Path) {
    register_with_bin(registry, clusters, workflows, helm_bin());
}

/// The `helm` the steps run: `$HELM_BIN` (unless empty), else `helm` from
/// `PATH`.
pub fn helm_bin() -> PathBuf {
    std::env::var_os("HELM_BIN")
        .filter(|bin| !bin.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("helm"))
}

/// The executable `bin` names: itself when it is a path, else the first
/// `bin` on `PATH`. None when there is none, so a step (or `serve` at
/// start-up) can say so before anything runs.
pub fn locate(bin: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        std::fs::metadata(path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if bin.components().count() > 1 {
        return executable(bin).then(|| bin.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(bin))
        .find(|path| executable(path))
}

/// [`register`] with the `helm` binary given, for a process that cannot set
/// `HELM_BIN` in its own environment (the sandbox demo's in-process worker).
pub fn register_with_bin(
    registry: &mut Registry,
    clusters: &Arc<ClusterClients>,
    workflows: &Path,
    bin: PathBuf,
) {
    let http = hubwright_http::client_builder()
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

pub(super) fn default_release() -> String {
    "{env.namespace}".to_owned()
}

pub(super) fn default_timeout() -> Dur {
    Dur::from_secs(300)
}

/// `helm-release`: installs or upgrades the hub's release.
#[derive(Debug, Clone)]
pub struct HelmReleaseStep(Arc<HelmShared>);

impl Step for HelmReleaseStep {
    const KIND: &'static str = "helm-release";
    type Params = HelmReleaseParams;

    async fn run(
        &self,
        ctx: &StepContext,
        params: HelmReleaseParams,
    ) -> Result<Outcome, StepError> {
        let target = self.0.target(ctx, &params.release).await?;
        let timeout = params.timeout.0;
        let rendered = values::render(&self.0.path(&params.values), &target.context)?;
        if locate(&self.0.bin).is_none() {
            return Err(StepError::permanent(format!(
                "cannot find helm ({}): install helm 3 or 4 on PATH or set HELM_BIN",
                self.0.bin.display()
            )));
        }
        ctx.calling_out(
            Self::KIND,
            &format!(
                "Helm release `{}` in namespace `{}` on cluster `{}`",
                target.helm.release, target.helm.namespace, target.cluster
            ),
        )
        .await?;

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

/// The release of an environment, resolved, with the values template's context.
struct Target {
    helm: Helm,
    cluster: String,
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
            "cluster": {
                "name": env.cluster,
                "base_domain": cluster.base_domain,
                "tls_issuer": cluster.tls_issuer,
                "ingress_class": cluster.ingress_class,
            },
            "release": release,
            "steps": ctx.outputs().await?,
        });
        Ok(Target {
            helm: Helm::new(self.bin.clone(), cluster, &namespace, &release),
            cluster: env.cluster.clone(),
            context,
        })
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.workflows.join(relative)
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

/// `helm-uninstall`: removes the release; not found is done, and so is a
/// release the `helm-release` step never called out to install.
#[derive(Debug, Clone)]
pub struct HelmUninstallStep(Arc<HelmShared>);

impl Step for HelmUninstallStep {
    const KIND: &'static str = "helm-uninstall";
    type Params = HelmUninstallParams;

    async fn run(
        &self,
        ctx: &StepContext,
        params: HelmUninstallParams,
    ) -> Result<Outcome, StepError> {
        // Never installed: no helm, cluster or values needed to say so.
        if !ctx.ever_called_out(HelmReleaseStep::KIND).await? {
            return Ok(Outcome::never_created());
        }
        let target = self.0.target(ctx, &params.release).await?;
        let removed = target.helm.uninstall(params.timeout.0).await?;
        Ok(Outcome::Done(
            json!({ "release": target.helm.release, "uninstalled": removed }),
        ))
    }
}
