//! Running the `helm` binary and reading what it says.
//!
//! Helm's stderr is classified here: an unreachable or slow API server is
//! transient; a chart or values Helm refuses is permanent, with Helm's own
//! message kept. Helm is never asked to `--wait`: a worker must not sit for
//! minutes in a child process it cannot checkpoint or cancel.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hubwright_state::clusters::ClusterConfig;
use serde::Deserialize;
use serde_json::json;
use tokio::process::Command;
use tracing::Instrument;

use crate::cause::Cause;
use crate::step::StepError;

/// How one release is reached: the binary, the cluster, the namespace.
#[derive(Debug, Clone)]
pub struct Helm {
    /// The `helm` binary.
    pub bin: PathBuf,
    /// `--kubeconfig`, when the cluster names one.
    pub kubeconfig: Option<PathBuf>,
    /// `--kube-context`, when the cluster names one.
    pub context: Option<String>,
    /// The release's namespace.
    pub namespace: String,
    /// The release's name.
    pub release: String,
}

/// What `helm status -o json` and `helm upgrade -o json` say of a release.
#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    /// The revision.
    pub version: i64,
    /// Status and timestamps.
    pub info: ReleaseInfo,
    /// The chart it was made from.
    #[serde(default)]
    pub chart: Option<ChartInfo>,
}

/// `info` of a release.
#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseInfo {
    /// `deployed`, `failed`, `pending-install`, `pending-upgrade`, ...
    pub status: String,
    /// When the last operation on it started (RFC 3339).
    #[serde(default)]
    pub last_deployed: Option<String>,
}

/// `chart` of a release.
#[derive(Debug, Clone, Deserialize)]
pub struct ChartInfo {
    /// Chart metadata.
    pub metadata: ChartMetadata,
}

/// The chart's name and version.
#[derive(Debug, Clone, Deserialize)]
pub struct ChartMetadata {
    /// Chart name.
    pub name: String,
    /// Chart version.
    pub version: String,
}

/// What Helm printed when it failed, and whether trying again could help.
fn classify(what: &str, stderr: &str) -> StepError {
    // Before the lines are joined: a manifest Helm quotes is YAML, and its
    // Secret data is found by its indentation.
    let stderr = crate::error_text::sanitize(stderr);
    let said = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("WARNING"))
        .collect::<Vec<_>>()
        .join("; ");
    let lower = said.to_lowercase();
    const TRANSIENT: &[&str] = &[
        "kubernetes cluster unreachable",
        "connection refused",
        "connection reset",
        "i/o timeout",
        "tls handshake timeout",
        "context deadline exceeded",
        "timed out waiting",
        "the server is currently unable",
        "too many requests",
        "etcdserver",
        "another operation (install/upgrade/rollback) is in progress",
        "dial tcp",
        "internal error occurred",
        "service unavailable",
    ];
    let message = format!("helm {what} failed: {said}");
    if TRANSIENT.iter().any(|needle| lower.contains(needle)) {
        StepError::retryable(message)
    } else {
        StepError::permanent(message)
    }
    .with_detail(json!({ "helm": what }))
    .with_cause(cause(&lower))
}

/// Why Helm failed, from the same words that chose the class, for the
/// `reason` label: Helm reports no status code.
fn cause(lower: &str) -> Cause {
    let any = |needles: &[&str]| needles.iter().any(|needle| lower.contains(needle));
    if any(&["timeout", "deadline exceeded", "timed out"]) {
        Cause::Timeout
    } else if any(&["too many requests"]) {
        Cause::RateLimited
    } else if any(&["forbidden", "unauthorized"]) {
        Cause::Forbidden
    } else if any(&["another operation (install/upgrade/rollback) is in progress"]) {
        Cause::Conflict
    } else if any(&[
        "the server is currently unable",
        "etcdserver",
        "internal error occurred",
        "service unavailable",
    ]) {
        Cause::Http5xx
    } else if any(&[
        "kubernetes cluster unreachable",
        "connection refused",
        "connection reset",
        "dial tcp",
    ]) {
        Cause::Unreachable
    } else {
        Cause::Other
    }
}

impl Helm {
    /// Where `cluster` is, for Helm.
    pub fn new(bin: PathBuf, cluster: &ClusterConfig, namespace: &str, release: &str) -> Self {
        Self {
            bin,
            kubeconfig: cluster.kubeconfig.clone(),
            context: cluster.context.clone(),
            namespace: namespace.to_owned(),
            release: release.to_owned(),
        }
    }

    /// Runs `helm <args>` with the cluster flags; stdout on success.
    async fn run(
        &self,
        what: &str,
        args: &[&str],
        deadline: Duration,
    ) -> Result<String, StepError> {
        // Helm sends no trace context itself; `TRACEPARENT` hands the step's
        // to whatever wraps or plugs into it (the convention of otel-cli and
        // other command-line tools).
        let span = tracing::info_span!(
            "helm",
            otel.name = %format!("helm {what}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            peer.service = "helm",
        );
        let mut command = Command::new(&self.bin);
        if let Some(context) = hubwright_telemetry::TraceParent::of_span(&span) {
            command.env(
                hubwright_telemetry::context::HEADER.to_uppercase(),
                context.to_string(),
            );
        }
        command
            .args(args)
            .args(["--namespace", &self.namespace])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = &self.kubeconfig {
            command.arg("--kubeconfig").arg(path);
        }
        if let Some(context) = &self.context {
            command.args(["--kube-context", context]);
        }
        let child = command.spawn().map_err(|err| {
            StepError::permanent(format!(
                "cannot run helm ({}): {err}; install it or set HELM_BIN",
                self.bin.display()
            ))
        })?;
        // Helm has its own --timeout; this bound catches a helm that hangs anyway.
        let output =
            tokio::time::timeout(deadline + Duration::from_secs(30), child.wait_with_output())
                .instrument(span.clone())
                .await
                .map_err(|_| {
                    StepError::retryable(format!("helm {what} did not finish within {deadline:?}"))
                })?
                .map_err(|err| StepError::retryable(format!("helm {what}: {err}")))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else if let Some(signal) = output.status.signal() {
            // Killed (the OOM killer, a node drain, an operator): what it
            // printed is not the cause, and a release it was writing is left
            // pending, which the next attempt recovers.
            Err(
                StepError::retryable(format!("helm {what} was killed by signal {signal}"))
                    .with_detail(json!({ "helm": what, "signal": signal })),
            )
        } else {
            span.record("otel.status_code", "ERROR");
            Err(classify(what, &String::from_utf8_lossy(&output.stderr)))
        }
    }

    /// The release, or None when there is none.
    pub async fn status(&self) -> Result<Option<Release>, StepError> {
        match self
            .run(
                "status",
                &["status", &self.release, "-o", "json"],
                Duration::from_secs(60),
            )
            .await
        {
            Ok(out) => parse_release("status", &out).map(Some),
            Err(err) if err.message.contains("release: not found") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `helm upgrade --install` from `chart` with the values in `values`.
    pub async fn upgrade_install(
        &self,
        chart: &ChartRef,
        values: &Path,
        timeout: Duration,
    ) -> Result<Release, StepError> {
        let timeout_arg = format!("{}s", timeout.as_secs().max(1));
        let values = values.display().to_string();
        let mut args = vec![
            "upgrade",
            "--install",
            &self.release,
            &chart.chart,
            "--values",
            &values,
            "--timeout",
            &timeout_arg,
            "-o",
            "json",
        ];
        if let Some(version) = &chart.version {
            args.extend(["--version", version]);
        }
        if let Some(repository) = &chart.repository {
            args.extend(["--repo", repository]);
        }
        let out = self.run("upgrade --install", &args, timeout).await?;
        parse_release("upgrade --install", &out)
    }

    /// Uninstalls a release an interrupted install left pending.
    pub async fn uninstall(&self, timeout: Duration) -> Result<bool, StepError> {
        let timeout_arg = format!("{}s", timeout.as_secs().max(1));
        match self
            .run(
                "uninstall",
                &["uninstall", &self.release, "--timeout", &timeout_arg],
                timeout,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.message.contains("not found") => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Rolls back to the previous revision (an interrupted upgrade).
    pub async fn rollback(&self, timeout: Duration) -> Result<(), StepError> {
        let timeout_arg = format!("{}s", timeout.as_secs().max(1));
        self.run(
            "rollback",
            &["rollback", &self.release, "--timeout", &timeout_arg],
            timeout,
        )
        .await
        .map(drop)
    }
}

fn parse_release(what: &str, out: &str) -> Result<Release, StepError> {
    serde_json::from_str(out).map_err(|err| {
        StepError::retryable(format!(
            "helm {what} printed something that is not a release: {err}"
        ))
    })
}

/// Where a chart comes from: a repository and a pinned version, or a local
/// directory or `.tgz` (air-gapped clusters).
#[derive(Debug, Clone)]
pub struct ChartRef {
    /// Chart name (with `repository`) or path.
    pub chart: String,
    /// Pinned version.
    pub version: Option<String>,
    /// Repository URL.
    pub repository: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubwright_state::model::ErrorClass;

    #[test]
    fn unreachable_clusters_are_transient_and_chart_errors_permanent_and_verbatim() {
        let down = classify(
            "upgrade --install",
            "Error: Kubernetes cluster unreachable: Get \"https://10.0.0.1/version\": dial tcp 10.0.0.1:443: connect: connection refused\n",
        );
        assert_eq!(down.class, ErrorClass::Retryable);
        assert_eq!(down.cause(), Cause::Unreachable);
        let busy = classify(
            "upgrade --install",
            "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n",
        );
        assert_eq!(busy.class, ErrorClass::Retryable);
        assert_eq!(busy.cause(), Cause::Conflict);
        let values = classify(
            "upgrade --install",
            "WARNING: something\nError: values don't meet the specifications of the schema(s) in the following chart(s):\nhub-shaped:\n- hub.image: Invalid type. Expected: string, given: integer\n",
        );
        assert_eq!(values.class, ErrorClass::Permanent);
        assert_eq!(values.cause(), Cause::Other);
        assert_eq!(
            values.message,
            "helm upgrade --install failed: Error: values don't meet the specifications of the schema(s) in the following chart(s):; hub-shaped:; - hub.image: Invalid type. Expected: string, given: integer"
        );
    }

    #[tokio::test]
    async fn a_helm_killed_by_a_signal_is_retryable_and_says_so() {
        let dir = std::env::temp_dir().join(format!("hubwright-helm-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("helm");
        std::fs::write(&bin, "#!/bin/sh\necho 'partial output' >&2\nkill -9 $$\n").unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let helm = Helm {
            bin,
            kubeconfig: None,
            context: None,
            namespace: "hub".to_owned(),
            release: "hub".to_owned(),
        };
        let error = helm.status().await.unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(error.class, ErrorClass::Retryable);
        assert_eq!(error.message, "helm status was killed by signal 9");
    }

    #[test]
    fn a_secret_helm_quotes_loses_its_data_and_a_long_error_is_bounded() {
        let quoted = classify(
            "upgrade --install",
            "Error: UPGRADE FAILED: failed to create resource: Secret in version \"v1\" cannot be handled as a Secret:\napiVersion: v1\nkind: Secret\nmetadata:\n  name: hub-oauth\ndata:\n  client_secret: aHVudGVyMg==\nstringData:\n  password: hunter2\n",
        );
        assert!(
            !quoted.message.contains("aHVudGVyMg") && !quoted.message.contains("hunter2"),
            "{}",
            quoted.message
        );
        assert!(
            quoted.message.contains("name: hub-oauth"),
            "{}",
            quoted.message
        );
        let long = classify("upgrade --install", &"Error: x ".repeat(2000));
        assert!(long.message.len() <= crate::error_text::MAX_BYTES);
        assert!(long.message.ends_with('…'), "{}", long.message);
    }
}
