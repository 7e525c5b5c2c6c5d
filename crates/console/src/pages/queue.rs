//! Queue health for operators: how many runs wait and how long the oldest
//! has waited, the worker processes (idle ones too) and the leases they
//! hold, and the runs rescued after a worker's lease ran out
//! (`GET /v1/queue`).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use serde_json::Value as JsonValue;

use crate::Console;
use crate::api::Api;
use crate::pages::PageError;
use crate::render::data;
use crate::session::Viewer;

/// The queue route.
pub fn routes() -> Router<Console> {
    Router::new().route("/queue", get(show))
}

async fn show(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let health: JsonValue = api.get("/v1/queue").await?;
    // In the order a run moves through them.
    let states: Vec<(&str, i64)> = ["pending", "waiting", "running", "failed", "cancelled"]
        .into_iter()
        .map(|state| (state, health["runs"][state].as_i64().unwrap_or_default()))
        .collect();
    let expired: i64 = health["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["expired"].as_i64())
        .sum();
    let silent = health["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["liveness"] == "silent")
        .count();
    Ok(console
        .views()
        .render(
            "queue.html",
            Some(&viewer),
            context! {
                title => "Queue",
                nav => "queue",
                health => data(&health),
                states => states,
                expired,
                silent,
            },
        )
        .into_response())
}
