//! The console's style sheet and script, compiled into the binary and
//! served under `/assets/`. Pages name them with `?v=` and a digest of their
//! content, so they can be cached for a long time and still change with a
//! new build.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::Console;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// The `/assets/{name}` route.
pub fn routes() -> Router<Console> {
    Router::new().route("/assets/{name}", get(asset))
}

/// A digest of every asset, for the pages' `?v=`.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let digest = Sha256::new()
            .chain_update(CSS.as_bytes())
            .chain_update(JS.as_bytes())
            .finalize();
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    })
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}
