//! `serve --metrics-listen`: `/metrics` (Prometheus text, or OpenMetrics
//! with exemplars for a scraper that asks; no token),
//! `/healthz` and `/readyz` on a port of their own, whichever roles the
//! process runs, so a worker-only pod can be scraped and probed. It answers
//! from before the database is reached (`/readyz` then says what it waits
//! for) until the process ends. The API's own `/metrics` stays, behind an
//! operator token (docs/decisions/0022-metrics-from-every-role.md).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hubwright_api::metrics::Format;
use hubwright_state::{Clock, Store};
use hubwright_worker::Pulse;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Where metrics and probes are served.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Serve `/metrics` (Prometheus text, or OpenMetrics with exemplars
    /// when the scraper asks for it; without a token: bind it where
    /// only the scraper reaches), `/healthz` and `/readyz` here, e.g.
    /// `0.0.0.0:9090`. Unset: not served (the API's `/metrics` still
    /// answers operators).
    #[arg(long, env = "HUBWRIGHT_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

/// Installs the process's recorder, gives every metric its `# HELP` and
/// sets `hubwright_build_info`. Idempotent.
pub fn install() {
    hubwright_api::metrics::install();
    hubwright_worker::metrics::describe();
    hubwright_api::metrics::build_info(env!("CARGO_PKG_VERSION"), env!("HUBWRIGHT_COMMIT"));
}

/// What `/readyz` and `/metrics` know, updated as `serve` starts.
#[derive(Clone)]
struct Readiness {
    /// What `/readyz` says until the database answers.
    waiting: Arc<str>,
    store: Option<Store>,
    /// Whether this process writes the database gauges (it runs the API).
    database_gauges: bool,
    /// The loops that must go round for the process to be ready.
    pulses: Vec<Pulse>,
}

#[derive(Clone)]
struct Endpoint {
    readiness: watch::Receiver<Readiness>,
    clock: Arc<dyn Clock>,
}

/// The endpoint, when there is one: tell it when the database answers and
/// which loops to watch; stop it last. Without `--metrics-listen` every call
/// does nothing.
pub(super) struct MetricsEndpoint {
    running: Option<Running>,
}

struct Running {
    readiness: watch::Sender<Readiness>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MetricsEndpoint {
    /// Binds `--metrics-listen` (or takes `injected`) and answers there;
    /// without either, nothing. `/readyz` says `waiting` until
    /// [`MetricsEndpoint::database_ready`].
    pub(super) async fn start(
        args: &MetricsArgs,
        injected: Option<TcpListener>,
        waiting: &str,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let listener = match (injected, args.metrics_listen) {
            (Some(listener), _) => listener,
            (None, Some(address)) => TcpListener::bind(address)
                .await
                .with_context(|| format!("--metrics-listen: cannot bind {address}"))?,
            (None, None) => return Ok(Self { running: None }),
        };
        let (readiness, watching) = watch::channel(Readiness {
            waiting: Arc::from(waiting),
            store: None,
            database_gauges: false,
            pulses: Vec::new(),
        });
        let router = Router::new()
            .route("/metrics", get(scrape))
            .route(
                "/healthz",
                get(|| async { axum::Json(json!({ "status": "ok" })) }),
            )
            .route("/readyz", get(readyz))
            .with_state(Endpoint {
                readiness: watching,
                clock,
            });
        tracing::info!(address = %listener.local_addr()?, "metrics listening");
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Self {
            running: Some(Running {
                readiness,
                stop,
                task,
            }),
        })
    }

    /// The database answers: `/readyz` checks it from now on, and with
    /// `database_gauges` `/metrics` reads its gauges.
    pub(super) fn database_ready(&self, store: &Store, database_gauges: bool) {
        if let Some(running) = &self.running {
            running.readiness.send_modify(|readiness| {
                readiness.store = Some(store.clone());
                readiness.database_gauges = database_gauges;
            });
        }
    }

    /// `/readyz` also needs `pulse`'s loop to go round.
    pub(super) fn watch(&self, pulse: Pulse) {
        if let Some(running) = &self.running {
            running
                .readiness
                .send_modify(|readiness| readiness.pulses.push(pulse));
        }
    }

    /// Stops answering once the connections in flight are answered.
    pub(super) async fn stop(self) {
        let Some(running) = self.running else {
            return;
        };
        let _ = running.stop.send(true);
        match running.task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "metrics endpoint failed"),
            Err(err) => tracing::warn!(error = %err, "metrics endpoint panicked"),
        }
    }
}

/// Everything this process recorded, and the database gauges where it runs
/// the API, in Prometheus text or, when `Accept` prefers it, OpenMetrics
/// with exemplars. Without the database it still answers what it recorded.
async fn scrape(State(endpoint): State<Endpoint>, headers: HeaderMap) -> Response {
    let readiness = endpoint.readiness.borrow().clone();
    let store = readiness.store.filter(|_| readiness.database_gauges);
    let now = endpoint.clock.now();
    let format = Format::negotiate(&headers);
    let out = match hubwright_api::metrics::render(store.as_ref(), now, format).await {
        Ok(out) => out,
        Err(err) => {
            tracing::warn!(error = %err, "database gauges unavailable for this scrape");
            hubwright_api::metrics::render(None, now, format)
                .await
                .unwrap_or_default()
        }
    };
    ([(header::CONTENT_TYPE, format.content_type())], out).into_response()
}

/// Ready: the database answers with every migration applied, and every
/// watched loop goes round. The body says what is missing.
async fn readyz(State(endpoint): State<Endpoint>) -> Response {
    let readiness = endpoint.readiness.borrow().clone();
    let not_ready = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "not ready", "reason": reason })),
        )
            .into_response()
    };
    let Some(store) = readiness.store else {
        return not_ready(&readiness.waiting);
    };
    match store.migrations_current().await {
        Ok(true) => {}
        Ok(false) => return not_ready("migrations pending: run `hubwright admin migrate`"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            return not_ready("database unreachable");
        }
    }
    if let Some(stalled) = readiness
        .pulses
        .iter()
        .find_map(|pulse| pulse.check().err())
    {
        return not_ready(&stalled);
    }
    axum::Json(json!({ "status": "ready" })).into_response()
}
