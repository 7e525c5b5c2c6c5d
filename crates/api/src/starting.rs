//! What the API's port answers before the API can: while `serve` waits for
//! the database at start-up, `/healthz` says the process is alive (so a
//! liveness probe does not restart a pod that is only waiting), `/readyz`
//! says what it is waiting for, and everything else is `503`.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;

use crate::error::Problem;

/// Answers on `listener` until `work` is done, and returns what it returned;
/// the listener is then free for the API. `reason` is what `/readyz` says
/// (`waiting for the database at db:5432`); it must hold nothing secret.
pub async fn answer_while<T>(
    listener: &TcpListener,
    reason: &str,
    work: impl Future<Output = T>,
) -> T {
    let answer = reason.to_owned();
    let router = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .route(
            "/readyz",
            get(move || async move {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({ "status": "not ready", "reason": answer })),
                )
            }),
        )
        .fallback(|| async { Problem::unavailable().into_response() })
        .layer(axum::middleware::from_fn(crate::request_trace::name_route))
        .layer(axum::middleware::from_fn(crate::request_trace::trace));
    let mut builder = http1::Builder::new();
    // One answer per connection: a kept-alive connection would go on being
    // answered from here after the API took the port over.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(false);
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, %reason, "api answering probes until it starts");
    }
    tokio::pin!(work);
    loop {
        let socket = tokio::select! {
            done = &mut work => return done,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(err) => {
                    crate::transport::accept_failed(err).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(socket), service);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended");
            }
        });
    }
}
