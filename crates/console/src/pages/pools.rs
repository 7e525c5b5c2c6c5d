//! Warm pools for operators: for each template that keeps ready hubs, how
//! many it keeps, how many are ready or on their way, and how often a
//! request found one (`GET /v1/pools`).

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

/// The pools route.
pub fn routes() -> Router<Console> {
    Router::new().route("/pools", get(show))
}

async fn show(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let pools: JsonValue = api.get("/v1/pools").await?;
    let items = pools["items"].as_array().cloned().unwrap_or_default();
    // The share of servable requests a member answered, which is what a
    // pool's size is tuned by; none before the first request.
    let hit_rates: Vec<Option<i64>> = items
        .iter()
        .map(|pool| {
            let claims = pool["claims"].as_i64().unwrap_or_default();
            let misses = pool["misses"].as_i64().unwrap_or_default();
            let served = claims + misses;
            (served > 0).then(|| (claims * 100 + served / 2) / served)
        })
        .collect();
    let short: usize = items
        .iter()
        .filter(|pool| pool["ready"].as_i64().unwrap_or_default() == 0)
        .count();
    Ok(console
        .views()
        .render(
            "pools.html",
            Some(&viewer),
            context! {
                title => "Pools",
                nav => "pools",
                pools => data(&JsonValue::Array(items)),
                hit_rates,
                short,
            },
        )
        .into_response())
}
