//! `GET /v1/pools`: the warm pools for operators: per template and cluster,
//! the size kept, members ready and on their way, claims, misses and the
//! ready members' average age.

use axum::Json;
use axum::extract::State;
use hubwright_state::model::Role;
use hubwright_state::pools::PoolPlan;
use hubwright_state::store::pool_fill::PoolStats;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, ProblemDocument};

/// The `/v1/pools` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Every warm pool the templates declare.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolList {
    /// One entry per template and cluster, in that order.
    pub items: Vec<PoolStats>,
}

/// The warm pools (operators): size, ready, provisioning, failed, tearing
/// down, claims, misses and average age of the ready members.
#[utoipa::path(get, path = "/v1/pools", operation_id = "list_pools", tag = "pools",
    responses((status = 200, body = PoolList),
        (status = 403, body = ProblemDocument, description = "The caller is not an operator")),
    security(("bearer" = [])))]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<PoolList>> {
    caller.require(Role::Operator)?;
    let now = state.clock.now();
    let mut items = Vec::new();
    for plan in PoolPlan::all(&state.catalog.current()) {
        items.push(plan.stats(&state.store, now).await?);
    }
    Ok(Json(PoolList { items }))
}
