//! The API's side of metrics: every request counted and timed, and the
//! operator-only `GET /metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Format, HTTP_REQUEST_DURATION, HTTP_REQUESTS, render};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use hubwright_state::model::Role;

/// The content type of Prometheus' text format, the default answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Counts and times every request by route template (not raw path, so ids do
/// not explode the label set).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The scrape through the API's own port. Needs an operator token, like
/// everything there but the probes; `serve --metrics-listen` answers the
/// same without one, on a port of its own. Prometheus text, or OpenMetrics
/// when `Accept` prefers it.
pub async fn scrape(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require(Role::Operator)?;
    let format = Format::negotiate(&headers);
    let out = render(Some(&state.store), state.clock.now(), format).await?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], out).into_response())
}
