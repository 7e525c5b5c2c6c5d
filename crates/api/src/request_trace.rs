//! Every request in a span of its own, and every answer with its request id.
//!
//! - `X-Request-Id`: a caller's own id is kept when it is 1 to 128
//!   characters of letters, digits and `-_.:`; anything else is replaced
//!   by a fresh UUIDv7 (a value that could forge log lines or fill them is
//!   not repeated). The answer carries the id either way, so a caller can
//!   quote it and an operator find every line the request logged.
//! - The span (`request`: `request_id`, `method`, `route`, `status`,
//!   `trace_id`) holds the handler, so each line logged meanwhile carries
//!   them. The route is the template (`/v1/environments/{id}`), not the
//!   path, named by [`name_route`] once a router has matched.
//! - A caller's W3C `traceparent` makes the span its child; with traces
//!   exported (`serve --otel-endpoint`) the span starts a trace otherwise.
//!   A run the request creates stores the span's context, and its steps
//!   continue the trace.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use hubwright_telemetry::TraceParent;
use hubwright_telemetry::context::{extract, set_parent};
use tracing::Instrument;
use tracing::field::Empty;

/// The header that carries the id, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest request id kept from a caller.
const MAX_ID: usize = 128;

/// Wraps the request in its span and puts its id on the answer.
pub async fn trace(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_acceptable(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        request_id = %id,
        method = %method,
        route = %route,
        status = Empty,
        trace_id = Empty,
    );
    let parent = extract(request.headers());
    if let Some(parent) = &parent {
        set_parent(&span, parent);
    }
    // Without the exporter's layer the span has no context of its own; the
    // caller's trace id still joins the log lines to the caller's trace.
    if let Some(context) = TraceParent::of_span(&span).or(parent) {
        span.record("trace_id", context.trace_id_hex());
    }
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("status", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    span.in_scope(|| tracing::debug!(status = status.as_u16(), "request answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Names the request's span after the route that matched. Routing happens
/// inside: the web console hands what is not a page to the API's router,
/// so [`trace`], outside both, cannot see the route; this runs as a layer of
/// each router, once it has matched.
pub async fn name_route(request: Request, next: Next) -> Response {
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        let span = tracing::Span::current();
        span.record("route", route.as_str());
        hubwright_telemetry::context::rename(
            &span,
            format!("{} {}", request.method(), route.as_str()),
        );
    }
    next.run(request).await
}

/// Whether a caller's request id is kept (see the module's docs).
fn is_acceptable(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::is_acceptable;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(is_acceptable("0190b3c4-7d2e-7cc3-a1f2-5e4d3c2b1a00"));
        assert!(is_acceptable("lb:frontend.42_a"));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable(&"a".repeat(129)));
        assert!(!is_acceptable("two words"));
        assert!(!is_acceptable("line\nbreak"));
        assert!(!is_acceptable("{\"forged\":1}"));
    }
}
