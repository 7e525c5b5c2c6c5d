//! A stand-in for a hub's `/hub/health`, for health-check tests: answers
//! `status N` with the status the test sets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::http::StatusCode;

/// Serves `/hub/health` on `127.0.0.1:0`, answering `status` at first: the
/// base URL (`http://127.0.0.1:PORT`) and the handle that sets the answer.
pub async fn endpoint(status: u16) -> (String, Arc<AtomicU16>) {
    let answer = Arc::new(AtomicU16::new(status));
    let shared = Arc::clone(&answer);
    let app = axum::Router::new().route(
        "/hub/health",
        axum::routing::get(move || {
            let status = shared.load(Ordering::SeqCst);
            async move {
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    format!("status {status}"),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("the bound address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, answer)
}
