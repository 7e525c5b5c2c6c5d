//! `GET /v1/queue`: the queue's health for operators: runs per state, the
//! queue's depth and its longest-waiting due run, the workers holding
//! leases, and the runs rescued after a worker's lease ran out.

use axum::Json;
use axum::extract::State;
use chrono::Duration;
use hubwright_state::model::Role;
use hubwright_state::store::queue_health::QueueHealth;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, ProblemDocument};

/// `rescued` counts the rescues of this last stretch of time.
const RESCUE_WINDOW: Duration = Duration::hours(1);

/// The `/v1/queue` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// The queue's health (operators): runs per state, due runs and the oldest,
/// workers and their leases, runs rescued in the last hour.
#[utoipa::path(get, path = "/v1/queue", operation_id = "get_queue_health", tag = "queue",
    responses((status = 200, body = QueueHealth),
        (status = 403, body = ProblemDocument, description = "The caller is not an operator")),
    security(("bearer" = [])))]
async fn health(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<QueueHealth>> {
    caller.require(Role::Operator)?;
    let now = state.clock.now();
    let health = state.store.queue_health(now, now - RESCUE_WINDOW).await?;
    Ok(Json(health))
}
