//! `hubwright serve`: the API, the worker and the TTL scheduler in one process,
//! or any combination of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hubwright_api::ratelimit::{Budget, RateLimitConfig, RateLimits};
use hubwright_state::secrets::SecretKeys;
use hubwright_state::secrets::SecretString;
use hubwright_state::workflow::{CatalogHolder, Dur, TemplateCheck};
use hubwright_worker::kubernetes::{ClusterClients, ExpiryLabels};
use hubwright_worker::{Notifier, Scheduler, SchedulerConfig, WebhookConfig, Worker, WorkerConfig};
use tokio::sync::watch;

use crate::Extensions;

mod audit;
mod console;
mod database_wait;
mod injected;
mod limits;
mod metrics;
mod oidc;
mod parse;
mod policy;
mod run_retention;
mod telemetry;
use database_wait::{DatabaseWait, parse_database_wait};
pub use injected::Injected;
use limits::Limits;
use metrics::{MetricsArgs, MetricsEndpoint};
use parse::{Leads, parse_leads, parse_rate};
use policy::PolicyArgs;
pub use telemetry::TelemetryArgs;

#[derive(Debug, clap::Args)]
#[command(after_help = SECRET_KEY_HELP)]
pub struct Args {
    /// Run the worker (claims and executes runs).
    #[arg(long)]
    worker: bool,
    /// Serve the HTTP API.
    #[arg(long)]
    api: bool,
    /// Run the TTL scheduler (tears expired environments down, warns before
    /// expiry, deletes audit entries and finished runs past their retention).
    /// Any number of replicas may run. None of the three flags: all three.
    #[arg(long)]
    scheduler: bool,
    /// The scheduler's sweep for expiries its timer missed runs at least this often.
    #[arg(long, env = "HUBWRIGHT_EXPIRY_SWEEP_INTERVAL", default_value = "1m")]
    expiry_sweep_interval: Dur,
    /// Record an `expiry_warning` event this long before each expiry
    /// (comma-separated; empty for none).
    #[arg(long, env = "HUBWRIGHT_EXPIRY_WARNINGS", default_value = "1h,10m", value_parser = parse_leads)]
    expiry_warnings: Leads,
    /// Address the API listens on.
    #[arg(long, env = "HUBWRIGHT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The API's limits on connections, requests and event streams.
    #[command(flatten)]
    limits: Limits,
    /// Metrics and probes on a port of their own.
    #[command(flatten)]
    metrics: MetricsArgs,
    /// The audit trail's retention.
    #[command(flatten)]
    audit: audit::AuditArgs,
    /// How long finished runs are kept.
    #[command(flatten)]
    runs: run_retention::RunRetentionArgs,
    /// Directory of workflow files (templates): checked at start-up, and
    /// reloaded on SIGHUP and when they change. A change that does not load
    /// leaves the templates in force.
    #[arg(long, env = "HUBWRIGHT_WORKFLOWS", default_value = "workflows")]
    workflows: PathBuf,
    /// How often the API and the scheduler look for changed workflow files
    /// (0s: on SIGHUP only).
    #[arg(long, env = "HUBWRIGHT_TEMPLATES_POLL_INTERVAL", default_value = "5s")]
    templates_poll_interval: Dur,
    /// The clusters environments may be placed on (YAML: `clusters: {name:
    /// {kubeconfig, context, in_cluster, base_domain, tls_issuer, ingress_class}}`). Without
    /// it, one cluster `default`, reached like kubectl would.
    #[arg(long, env = "HUBWRIGHT_CLUSTERS")]
    clusters: Option<PathBuf>,
    /// The policy file (limits, groups, template access).
    #[command(flatten)]
    policy: PolicyArgs,
    /// Runs executed at once by this process.
    #[arg(long, env = "HUBWRIGHT_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// Lease on a claimed run; a worker silent for longer loses it.
    #[arg(long, env = "HUBWRIGHT_LEASE", default_value = "30s")]
    lease: Dur,
    /// Fallback poll interval (wake-ups arrive by LISTEN/NOTIFY).
    #[arg(long, default_value = "1s")]
    poll_interval: Dur,
    /// How often to look for runs of dead workers.
    #[arg(long, default_value = "10s")]
    rescue_interval: Dur,
    /// How often a worker looks for extended environments whose namespace
    /// still carries the old `hubwright.io/expires-at` label.
    #[arg(long, env = "HUBWRIGHT_EXPIRY_LABEL_INTERVAL", default_value = "30s")]
    expiry_label_interval: Dur,
    /// On SIGTERM, how long in-flight steps may take before their runs are released.
    #[arg(long, env = "HUBWRIGHT_SHUTDOWN_GRACE", default_value = "30s")]
    shutdown_grace: Dur,
    /// Most runs claimed by one statement.
    #[arg(long, default_value_t = 32)]
    claim_batch: usize,
    /// This worker's id in leases and events (default: host-pid-random).
    #[arg(long, env = "HUBWRIGHT_WORKER_ID")]
    worker_id: Option<String>,
    /// Database connections of this process (default: from concurrency).
    #[arg(long)]
    db_connections: Option<u32>,
    /// At start-up, how long to wait for the database to answer before
    /// giving up with exit status 1: `forever`, or a duration such as `10m`.
    /// Each attempt is logged with its cause; meanwhile the API's `/healthz`
    /// answers 200 and `/readyz` 503 naming the database. A wrong password, a
    /// missing database or a schema behind the binary stop it at once.
    #[arg(long, env = "HUBWRIGHT_DATABASE_WAIT", default_value = "forever", value_parser = parse_database_wait)]
    database_wait: DatabaseWait,
    /// The OpenID provider whose JWTs the API accepts.
    #[command(flatten)]
    oidc: oidc::OidcArgs,
    /// The web console.
    #[command(flatten)]
    console: console::ConsoleArgs,
    /// Traces and the log filter.
    #[command(flatten)]
    telemetry: TelemetryArgs,
    /// The scheduler POSTs each expiry warning and expiry here as JSON, in
    /// order, at least once (README: Time-to-live).
    #[arg(long, env = "HUBWRIGHT_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Signs webhook deliveries the Standard Webhooks way: `whsec_` and the
    /// base64 of 24 to 64 random bytes (`echo whsec_$(openssl rand -base64
    /// 32)`). Prefer the variable: a flag shows in `ps`.
    #[arg(
        long,
        env = "HUBWRIGHT_WEBHOOK_SECRET",
        hide_env_values = true,
        requires = "webhook_url"
    )]
    webhook_secret: Option<String>,
    /// Requests a second each token (or OpenID user) may make on average; past
    /// its burst a caller gets 429 with Retry-After. 0 turns the limit off.
    #[arg(long, env = "HUBWRIGHT_RATE_LIMIT", default_value_t = 20.0, value_parser = parse_rate)]
    rate_limit: f64,
    /// Requests a caller may make at once after a quiet spell.
    #[arg(long, env = "HUBWRIGHT_RATE_LIMIT_BURST", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_burst: u32,
    /// Failed sign-ins (401) a second one client address may make on
    /// average before it gets 429 instead. 0 turns the limit off.
    #[arg(long, env = "HUBWRIGHT_AUTH_FAILURE_RATE_LIMIT", default_value_t = 1.0, value_parser = parse_rate)]
    auth_failure_rate_limit: f64,
    /// Failed sign-ins one client address may make at once.
    #[arg(long, env = "HUBWRIGHT_AUTH_FAILURE_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    auth_failure_burst: u32,
}

/// What `serve -h` says about the one setting that is never a flag (a key
/// on a command line would show in `ps`).
const SECRET_KEY_HELP: &str = "\
Environment:
  HUBWRIGHT_SECRET_KEY  Required to run the worker (the default): without it
                        `serve` does not start. 64 hex digits, e.g. from
                        `openssl rand -hex 32`; `id:hex,id:hex` to rotate (the
                        first seals, all open). It seals the hubs' credentials
                        in Postgres; keep it as you keep the database's backups.
                        `serve --api` alone does not need it.";

impl Args {
    /// The flags for traces and logs, which the process's logging is set up
    /// with before `serve` runs.
    pub fn telemetry(&self) -> &TelemetryArgs {
        &self.telemetry
    }
}

/// `hubwright serve ARGS…` parsed as the command line would, for callers
/// that start the server in-process (the tests): the error says which flag
/// broke which rule.
pub fn parse_args<'a>(argv: impl IntoIterator<Item = &'a str>) -> Result<Args, clap::Error> {
    #[derive(Debug, clap::Parser)]
    #[command(name = "serve")]
    struct Serve {
        #[command(flatten)]
        args: Args,
    }
    use clap::Parser;
    Serve::try_parse_from(std::iter::once("serve").chain(argv)).map(|serve| serve.args)
}

/// `hubwright serve`: runs until SIGTERM or Ctrl-C.
pub async fn run(url: &str, args: Args, ext: Extensions) -> anyhow::Result<ExitCode> {
    run_until(
        url,
        args,
        ext,
        Injected::default(),
        super::shutdown_signal(),
    )
    .await
}

/// `hubwright serve` with what `injected` holds, until `shutdown` resolves
/// or a component stops on its own. Waits for the database first (see
/// `--database-wait`); `shutdown` ends the wait too.
pub async fn run_until(
    url: &str,
    args: Args,
    ext: Extensions,
    injected: Injected,
    shutdown_signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    tokio::pin!(shutdown_signal);
    let Injected {
        listener,
        metrics_listener,
        clock,
        keys,
    } = injected;
    metrics::install();
    // None chosen means all three.
    let (run_worker, run_api, run_scheduler) = match (args.worker, args.api, args.scheduler) {
        (false, false, false) => (true, true, true),
        chosen => chosen,
    };
    let scheduler_config = SchedulerConfig {
        sweep_interval: args.expiry_sweep_interval.0,
        warnings: args.expiry_warnings.0.clone(),
    };
    scheduler_config.validate()?;
    args.audit.validate()?;
    args.runs.validate()?;
    if args.expiry_label_interval.0 < Duration::from_millis(100) {
        anyhow::bail!(
            "--expiry-label-interval: must be at least 100ms (got {})",
            args.expiry_label_interval
        );
    }
    let webhooks = args
        .webhook_url
        .as_deref()
        .map(|url| WebhookConfig::new(url, args.webhook_secret.map(SecretString::new)))
        .transpose()?;
    let mut config = WorkerConfig {
        concurrency: args.concurrency,
        lease: args.lease.0,
        poll_interval: args.poll_interval.0,
        rescue_interval: args.rescue_interval.0,
        shutdown_grace: args.shutdown_grace.0,
        claim_batch: args.claim_batch,
        ..WorkerConfig::default()
    };
    if let Some(id) = args.worker_id {
        config.id = id;
    }
    config.validate()?;
    let (server_limits, stream_limits) = args.limits.split();
    server_limits.validate().map_err(anyhow::Error::msg)?;
    let clusters = Arc::new(super::clusters(args.clusters.as_deref())?);
    // Workers seal and open the hubs' credentials; without a key they must not start.
    let keys = match keys {
        Some(keys) => Some(keys),
        None if run_worker => Some(Arc::new(SecretKeys::from_env()?)),
        None => None,
    };
    let registry = super::registry(ext, &clusters, keys, &args.workflows);
    let digest = CatalogHolder::digest_of(&args.workflows);
    let mut catalog = registry.load_catalog(&args.workflows)?;
    // Reloads check each template against the same step kinds.
    let check: Arc<TemplateCheck> = {
        let registry = registry.clone();
        Arc::new(move |loaded| registry.validate(loaded))
    };

    // Run tasks share the committer; a few more serve claims, heartbeats and
    // the rescuer. LISTEN holds a connection of its own.
    let connections = args.db_connections.unwrap_or_else(|| {
        u32::try_from(args.concurrency / 2)
            .unwrap_or(16)
            .clamp(2, 16)
            + 4
    });
    // The API's port is taken before the wait, so probes learn what it waits for.
    let listener = match (run_api, listener) {
        (false, _) => None,
        (true, Some(listener)) => Some(listener),
        (true, None) => Some(
            tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("--listen: cannot bind {}", args.listen))?,
        ),
    };
    let reason = database_wait::waiting_reason(url);
    let endpoint =
        MetricsEndpoint::start(&args.metrics, metrics_listener, &reason, Arc::clone(&clock))
            .await?;
    let (stop, stopped) = watch::channel(false);
    let shutdown = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let log_filter = args
        .telemetry
        .follow_log_filter(shutdown(stopped.clone()))?;
    let waiting = database_wait::connect(url, connections, args.database_wait, &mut catalog);
    let waited = async {
        match &listener {
            Some(listener) => {
                hubwright_api::starting::answer_while(listener, &reason, waiting).await
            }
            None => waiting.await,
        }
    };
    let store = tokio::select! {
        store = waited => store?,
        () = &mut shutdown_signal => {
            tracing::info!("stopped while waiting for the database");
            endpoint.stop().await;
            return Ok(ExitCode::SUCCESS);
        }
    };
    endpoint.database_ready(&store, run_api);
    tracing::info!(templates = ?catalog.names(), "workflows loaded");
    // Set exactly when this process is a worker: its preflight and its
    // expiry labels share one set of cluster clients.
    let clients = run_worker.then(|| ClusterClients::new((*clusters).clone()));
    if let Some(clients) = &clients {
        // Said now, naming the template, rather than by a failed step later.
        let helm = hubwright_worker::helm::helm_bin();
        for missing in hubwright_worker::preflight::check(&catalog, clients, &helm).await {
            tracing::warn!(template = %missing.template, "{}", missing.message);
        }
    }

    let policy = match &listener {
        Some(_) => Some(args.policy.load(&catalog, clock.as_ref())?),
        None => None,
    };
    let catalog = Arc::new(CatalogHolder::watching(
        &args.workflows,
        digest,
        catalog,
        check,
        clock.now(),
    ));
    let oidc = args.oidc.verifier();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(follow) = log_filter {
        tasks.spawn(follow);
    }
    if run_api || run_scheduler {
        let reloader = hubwright_api::reload::Reloader {
            store: store.clone(),
            clock: Arc::clone(&clock),
            templates: Arc::clone(&catalog),
            policy: policy.clone(),
            templates_poll: args.templates_poll_interval.nonzero(),
            policy_poll: args.policy.poll_interval(),
        };
        let watching = shutdown(stopped.clone());
        tasks.spawn(async move {
            reloader.watch(watching).await;
            Ok(())
        });
    }
    if let (Some(listener), Some(policy)) = (listener, policy) {
        let state = hubwright_api::AppState {
            policy,
            streams: hubwright_api::Streams::new(store.clone(), oidc.clone(), stream_limits),
            store: store.clone(),
            clock: Arc::clone(&clock),
            catalog: Arc::clone(&catalog),
            clusters: Arc::clone(&clusters),
            oidc: oidc.clone(),
            limits: Arc::new(RateLimits::new(RateLimitConfig {
                per_caller: Budget {
                    rate: args.rate_limit,
                    burst: args.rate_limit_burst,
                },
                auth_failures: Budget {
                    rate: args.auth_failure_rate_limit,
                    burst: args.auth_failure_burst,
                },
            })),
        };
        let streams = state.streams.clone();
        let app = args.console.app(state);
        let shutdown = shutdown(stopped.clone());
        tasks.spawn(async move {
            hubwright_api::serve_app(listener, app, streams, server_limits, shutdown)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    if run_scheduler {
        let scheduler = Scheduler::new(
            store.clone(),
            Arc::clone(&catalog),
            scheduler_config,
            Arc::clone(&clock),
        )?;
        endpoint.watch(scheduler.pulse());
        let stopping = shutdown(stopped.clone());
        tasks.spawn(async move { scheduler.run(stopping).await.map_err(anyhow::Error::from) });
        let retention = args.audit.retention(store.clone(), Arc::clone(&clock))?;
        let stopping = shutdown(stopped.clone());
        tasks.spawn(async move { retention.run(stopping).await.map_err(anyhow::Error::from) });
        if let Some(retention) = args.runs.retention(store.clone(), Arc::clone(&clock))? {
            let stopping = shutdown(stopped.clone());
            tasks.spawn(async move { retention.run(stopping).await.map_err(anyhow::Error::from) });
        }
        if let Some(config) = webhooks {
            let notifier = Notifier::new(store.clone(), config, Arc::clone(&clock));
            let shutdown = shutdown(stopped.clone());
            tasks.spawn(async move {
                notifier.run(shutdown).await;
                Ok(())
            });
        }
    }
    if let Some(clients) = clients {
        let labels = ExpiryLabels::new(store.clone(), clients, args.expiry_label_interval.0);
        let stopping = shutdown(stopped.clone());
        tasks.spawn(async move { labels.run(stopping).await.map_err(anyhow::Error::from) });
        let worker = Worker::new(store.clone(), registry, config, Arc::clone(&clock))?;
        endpoint.watch(worker.pulse());
        let shutdown = shutdown(stopped.clone());
        tasks.spawn(async move { worker.run(shutdown).await.map_err(anyhow::Error::from) });
    }

    tokio::select! {
        () = shutdown_signal => {}
        Some(ended) = tasks.join_next() => {
            // A component stopped on its own: stop the rest too.
            ended.context("component panicked")??;
        }
    }
    let _ = stop.send(true);
    while let Some(ended) = tasks.join_next().await {
        ended.context("component panicked")??;
    }
    endpoint.stop().await;
    // Let the pool say goodbye to Postgres instead of dropping sockets.
    tokio::time::timeout(Duration::from_secs(5), store.pool().close())
        .await
        .ok();
    Ok(ExitCode::SUCCESS)
}
