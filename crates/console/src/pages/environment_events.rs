//! `/environments/{id}/events`: the API's event stream of the environment's
//! latest run, for the environment page's script, through the session.
//!
//! [`crate::live::events`] re-frames it for the page's script.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::Console;
use crate::api::{Api, segment};
use crate::pages::PageError;
use crate::session::Viewer;

/// The live stream of the environment's latest run; `204 No Content` (which
/// tells a browser not to reconnect) when it has none.
pub(crate) async fn events(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let environment: Value = api
        .get(&format!("/v1/environments/{}", segment(&id)))
        .await?;
    let Some(run) = environment["current_run"]["id"].as_str() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    // A browser that reconnects says where it got to; the API resumes there.
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let path = match after {
        Some(after) => format!("/v1/runs/{}/events?after={after}", segment(run)),
        None => format!("/v1/runs/{}/events", segment(run)),
    };
    Ok(crate::live::events(&api, &path).await)
}
