//! `GET /v1/environments/{id-or-name}`: an environment with its current run.

use axum::Json;
use axum::extract::State;
use hubwright_state::model::{Environment, Run, Step};
use serde::Serialize;

use super::lookup::{AddressQuery, resolve};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, ProblemDocument};
use crate::json::{ApiPath, ApiQuery};

/// An environment with its current run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvironmentView {
    #[serde(flatten)]
    environment: Environment,
    current_run: Option<RunWithSteps>,
}

/// A run with its steps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunWithSteps {
    #[serde(flatten)]
    run: Run,
    steps: Vec<Step>,
}

/// An environment, by id or by name, with its current run and steps.
#[utoipa::path(get, path = "/v1/environments/{id}", operation_id = "get_environment", tag = "environments",
    params(("id" = String, Path, description = "The environment's id, or its name among the live environments of the caller (or of `owner`)"), AddressQuery),
    responses((status = 200, body = EnvironmentView), (status = 404, body = ProblemDocument)),
    security(("bearer" = [])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(segment): ApiPath<String>,
    ApiQuery(query): ApiQuery<AddressQuery>,
) -> ApiResult<Json<EnvironmentView>> {
    let environment = resolve(&state, &caller, &segment, &query).await?;
    let current_run = match state.store.latest_run_id(environment.id).await? {
        Some(run_id) => Some(RunWithSteps {
            run: state.store.run(run_id).await?,
            steps: state.store.steps(run_id).await?,
        }),
        None => None,
    };
    Ok(Json(EnvironmentView {
        environment,
        current_run,
    }))
}
