//! `hubwright serve`: the API, the worker and the TTL scheduler in one process,
//! or any combination of them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hubwright_api::ratelimit::{Budget, RateLimitConfig, RateLimits};
use hubwright_state::secrets::SecretKeys;
use hubwright_state::secrets::SecretString;
use hubwright_state::workflow::{CatalogHolder, TemplateCheck};
use hubwright_worker::kubernetes::{ClusterClients, ExpiryLabels};
use hubwright_worker::{Notifier, Scheduler, SchedulerConfig, WebhookConfig, Worker, WorkerConfig};
use tokio::sync::watch;

use crate::Extensions;

mod args;
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

pub use args::{Args, parse_args};
pub use injected::Injected;
use metrics::MetricsEndpoint;
pub use telemetry::TelemetryArgs;

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
    // Loaded here and on every reload with the same check of step kinds.
    let check: Arc<TemplateCheck> = {
        let registry = registry.clone();
        Arc::new(move |loaded| registry.validate(loaded))
    };
    let (digest, mut catalog) = CatalogHolder::load(&args.workflows, check.as_ref())?;

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
