//! `serve`'s flags for traces and logs (README: Tracing and logs;
//! docs/decisions/0023-tracing.md): where spans are exported, off unless
//! `--otel-endpoint` is set, and the file whose log filter replaces
//! `RUST_LOG`'s while the process runs.

use std::future::Future;
use std::path::PathBuf;

use hubwright_state::workflow::Dur;
use hubwright_telemetry::logging::{Otlp, filter};

/// Where traces go and which log filter is in force.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Export traces over OTLP/HTTP (protobuf) to this collector, e.g.
    /// `http://otel-collector:4318` (`/v1/traces` is added). Every API
    /// request, run, step and call to Kubernetes, the identity provider,
    /// helm and webhooks is a span; one environment request is one trace.
    /// Unset: nothing is exported. Batching follows the `OTEL_BSP_*`
    /// variables, sampling `OTEL_TRACES_SAMPLER`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otel_endpoint: Option<String>,
    /// The `service.name` of this process's spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "hubwright")]
    otel_service_name: String,
    /// A file of log filter directives (`RUST_LOG` syntax, one or more per
    /// line, `#` comments) that replaces `RUST_LOG`'s filter at start-up,
    /// and again on SIGHUP and whenever it changes, without a restart. An
    /// empty file puts `RUST_LOG`'s filter back; one that does not parse
    /// keeps the filter in force and logs why.
    #[arg(long, env = "HUBWRIGHT_LOG_FILTER_FILE")]
    log_filter_file: Option<PathBuf>,
    /// How often to look for a changed log filter file (0s: on SIGHUP only).
    #[arg(long, env = "HUBWRIGHT_LOG_FILTER_POLL_INTERVAL", default_value = "5s")]
    log_filter_poll_interval: Dur,
}

impl TelemetryArgs {
    /// Where spans go, if anywhere: what the process's logging is set up
    /// with before `serve` starts.
    pub fn otlp(&self) -> Option<Otlp> {
        self.otel_endpoint
            .as_deref()
            .filter(|endpoint| !endpoint.trim().is_empty())
            .map(|endpoint| Otlp {
                endpoint: endpoint.trim().to_owned(),
                service_name: self.otel_service_name.clone(),
            })
    }

    /// Applies `--log-filter-file` now (an error names the flag and says
    /// what is wrong) and returns the task that follows its changes until
    /// `shutdown` resolves; `None` without the flag.
    pub fn follow_log_filter(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Option<impl Future<Output = anyhow::Result<()>> + Send + 'static>> {
        let Some(path) = self.log_filter_file.clone() else {
            return Ok(None);
        };
        if !filter::is_reloadable() {
            // `serve` started in-process by a caller that set up logging itself.
            tracing::warn!(
                "--log-filter-file: this process's logging was not set up by hubwright; the file is not followed"
            );
            return Ok(None);
        }
        let (applied, in_force) =
            filter::apply_file(&path).map_err(|why| anyhow::anyhow!("--log-filter-file: {why}"))?;
        tracing::info!(path = %path.display(), filter = %in_force, "log filter from file");
        let poll =
            (!self.log_filter_poll_interval.is_zero()).then_some(self.log_filter_poll_interval.0);
        Ok(Some(async move {
            filter::watch_file(path, applied, poll, shutdown).await;
            Ok(())
        }))
    }
}
