//! Security headers on every answer. Browsers reach the API too (the
//! reference page at `/docs`, the problem pages, a portal's scripts), so:
//!
//! - every answer says `X-Content-Type-Options: nosniff`, so JSON or text is
//!   never run as a script or rendered as a page;
//! - an HTML answer carries a Content-Security-Policy that allows only the
//!   API's own script, style and requests (no inline script: the reference
//!   page's script is `/docs/app.js`), may not be framed
//!   (`frame-ancestors 'none'`, and `X-Frame-Options` for older browsers) and
//!   sends no `Referer` when a reader follows a link from it;
//! - a `/v1` answer that says nothing about caching is `no-store`: answers are
//!   per caller and change, and the token creation answer carries a secret.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of every HTML answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Adds the headers above to the answer to `request`.
pub async fn secure(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/v1/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A page that brings its own policy (the web console's) keeps it.
    if is_html(headers) && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    if is_html(headers) {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    if is_api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/html"))
}
