//! hubwright-api: the HTTP surface. For now the probes a process manager needs;
//! the `/v1` REST API joins them here.

use std::future::Future;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hubwright_state::Store;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The application's routes over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(store)
}

/// Serves the API on `listener` until `shutdown` resolves. The caller binds the
/// socket, so tests can listen on port 0.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "api listening");
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The process is up.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers and every migration this binary knows is applied.
async fn readyz(State(store): State<Store>) -> (StatusCode, Json<Value>) {
    match store.migrations_current().await {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "not ready", "reason": "migrations pending: run `hubwright migrate`" }),
            ),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "reason": "database unreachable" })),
            )
        }
    }
}
