//! hubwright-api: the HTTP surface.
//!
//! - `/healthz`, `/readyz`: probes for process managers; before the database
//!   answers at start-up, [`starting::answer_while`] serves them.
//! - `/v1/templates/...`: the templates, their parameters as JSON Schema, TTL
//!   policy and clusters.
//! - `/v1/environments/...`: request, list, show, extend and delete
//!   environments, by id or by name.
//! - `/v1/runs/...`: a run, its steps and timeline (JSON or Server-Sent Events);
//!   operator retry and cancel.
//!
//! - `/v1/tokens/...`: admins create, list and revoke API tokens.
//! - `/v1/audit`: the audit trail (admins): every state-changing call,
//!   recorded by the [`audit::record`] middleware; a JSON-lines export.
//! - `/v1/pools`: the warm pools (operators): size, ready, claims, misses.
//! - `/v1/queue`: the queue's health (operators): depth, the oldest due run,
//!   workers and their leases, rescued runs.
//! - `/v1/policy`, `/v1/policy/me`: the policy file in force (operators), and
//!   the caller's own limits and current use.
//! - `/metrics`: Prometheus text (operator token).
//! - `/v1/openapi.json`: the OpenAPI 3.1 document (open); `/docs`: an
//!   interactive page over it (open; calls need a token).
//!
//! Every `/v1` call needs a bearer token: one of hubwright's own
//! (`hubwright token create`), or, when configured, a JWT from the
//! organisation's OpenID provider ([`oidc`]). Every error is
//! `application/problem+json` ([`error::Problem`]).

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod environments;
pub mod error;
pub mod headers;
mod idempotency;
mod input;
mod json;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod policy;
pub mod pools;
mod probes;
pub mod problems;
pub mod queue;
pub mod ratelimit;
pub mod reload;
pub mod request_trace;
pub mod runs;
pub mod starting;
pub mod stream;
pub mod templates;
mod timeouts;
pub mod tokens;
pub mod transport;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use hubwright_state::clusters::Clusters;
use hubwright_state::policy::PolicyHolder;
use hubwright_state::workflow::{Catalog, CatalogHolder};
use hubwright_state::{Clock, Store, SystemClock};
use tokio::net::TcpListener;

pub use error::Problem;
pub use stream::hub::{StreamLimits, Streams};
pub use transport::{ServerLimits, serve_app, serve_with_limits};

/// Largest request body accepted; requests are small JSON documents.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The injected clock.
    pub clock: Arc<dyn Clock>,
    /// The templates requests are validated against, with registered
    /// definitions; reloaded without a restart. A request reads
    /// [`CatalogHolder::current`] once and keeps that set to its end.
    pub catalog: Arc<CatalogHolder>,
    /// The clusters a request may name.
    pub clusters: Arc<Clusters>,
    /// Accepts the OpenID provider's JWTs as bearer tokens, when configured.
    pub oidc: Option<Arc<oidc::OidcVerifier>>,
    /// Request budgets per caller and per address ([`ratelimit`]).
    pub limits: Arc<ratelimit::RateLimits>,
    /// The live event streams: one listener feeds them all; caps and re-checks.
    pub streams: Streams,
    /// The policy file in force: limits, group membership, template access
    /// ([`policy`]); reloaded without a restart.
    pub policy: Arc<PolicyHolder>,
}

/// The application's routes over `store` and `catalog`, on the wall clock,
/// with the one `default` cluster.
pub fn router(store: Store, catalog: Catalog) -> Router {
    router_with(AppState {
        streams: Streams::new(store.clone(), None, StreamLimits::default()),
        store,
        clock: Arc::new(SystemClock),
        catalog: Arc::new(CatalogHolder::fixed(catalog)),
        clusters: Arc::new(Clusters::default()),
        oidc: None,
        limits: Arc::default(),
        policy: Arc::new(PolicyHolder::empty()),
    })
}

/// The application's routes over `state`.
pub fn router_with(state: AppState) -> Router {
    metrics::install();
    Router::new()
        .route("/metrics", axum::routing::get(metrics::scrape))
        .route("/v1/openapi.json", axum::routing::get(openapi::serve))
        .merge(openapi::docs_routes())
        .merge(probes::routes())
        .merge(problems::routes())
        .merge(
            documented_routes()
                .0
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    audit::record::record,
                )),
        )
        .fallback(|| async { Problem::not_found("no such path") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(axum::middleware::from_fn(headers::secure))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn(request_trace::name_route))
        .layer(axum::middleware::from_fn(contain_panics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The `/v1` routes, each declared once with `utoipa_axum::routes!`, and the
/// OpenAPI document's paths made from the same declarations.
pub fn documented_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(templates::routes())
        .merge(environments::routes())
        .merge(runs::routes())
        .merge(tokens::routes())
        .merge(audit::routes())
        .merge(approvals::routes())
        .merge(policy::routes())
        .merge(pools::routes())
        .merge(queue::routes())
        .split_for_parts()
}

/// A panicking handler answers a 500 problem instead of dropping the
/// connection; the panic is logged with the route.
async fn contain_panics(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures_util::FutureExt;
    let route = format!("{} {}", request.method(), request.uri().path());
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(%route, "handler panicked");
            Problem::internal().into_response()
        }
    }
}

/// Serves the API on `listener` with the default [`ServerLimits`] until
/// `shutdown` resolves. The caller binds the socket, so tests can listen on
/// port 0.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, state, ServerLimits::default(), shutdown).await
}
