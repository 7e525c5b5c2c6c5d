//! Body and handler timeouts. The body is read here, within the body read
//! timeout, before any handler runs: a client that announces a body and sends
//! less gets a 408 problem (its request head was complete, so it can be
//! answered) and its connection is closed. The handler then has the request
//! timeout to produce its answer's head; an event stream's body is not
//! counted, so streams are not cut.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::MAX_BODY_BYTES;
use crate::error::Problem;
use crate::transport::ServerLimits;

/// Reads the body within `limits.body_read_timeout`, then runs the handler
/// within `limits.request_timeout`.
pub async fn enforce(State(limits): State<ServerLimits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let read = http_body_util::Limited::new(body, MAX_BODY_BYTES).collect();
    let bytes = match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => {
            return Problem::too_large(format!("the body may be at most {MAX_BODY_BYTES} bytes"))
                .into_response();
        }
        Ok(Err(err)) => {
            // The client went away or sent a malformed body; nobody reads an answer.
            return Problem::bad_request(format!("the body could not be read: {err}"))
                .into_response();
        }
        Err(_) => {
            return Problem::request_timeout(format!(
                "the request body did not arrive within {:?}",
                limits.body_read_timeout
            ))
            .into_response();
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let route = format!("{} {}", request.method(), request.uri().path());
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%route, timeout = ?limits.request_timeout, "request timed out");
            Problem::unavailable().into_response()
        }
    }
}
