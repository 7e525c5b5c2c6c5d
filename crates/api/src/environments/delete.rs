//! `DELETE /v1/environments/{id-or-name}`: tear it down (cancelling
//! provisioning first).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::AppendHeaders;
use serde::Serialize;
use uuid::Uuid;

use super::Links;
use super::lookup::{AddressQuery, resolve};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::{ApiPath, ApiQuery};
use hubwright_state::store::environments::TeardownRequest;

/// What a delete did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeardownAccepted {
    environment_id: Uuid,
    /// `started`, `waiting` (for the active run to stop) or `already_requested`.
    teardown: &'static str,
    /// The teardown run, when it started now.
    run_id: Option<Uuid>,
    links: Links,
}

/// Tear an environment down, by id or by name (cancels provisioning first). Repeating it is harmless.
#[utoipa::path(delete, path = "/v1/environments/{id}", operation_id = "delete_environment", tag = "environments",
    params(("id" = String, Path, description = "The environment's id, or its name among the live environments of the caller (or of `owner`)"), AddressQuery),
    responses((status = 202, body = TeardownAccepted,
            headers(("Location" = String, description = "The teardown run, `/v1/runs/{run_id}`, when one started now"))),
        (status = 404, body = ProblemDocument)),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(segment): ApiPath<String>,
    ApiQuery(query): ApiQuery<AddressQuery>,
) -> ApiResult<(
    StatusCode,
    AppendHeaders<Option<(header::HeaderName, String)>>,
    Json<TeardownAccepted>,
)> {
    let environment = resolve(&state, &caller, &segment, &query).await?;
    let id = environment.id;
    let (_, teardown_id) = state
        .catalog
        .current()
        .definition(&environment.template, "teardown")
        .ok_or_else(|| {
            Problem::conflict(format!(
                "template `{}` has no `teardown` workflow",
                environment.template
            ))
        })?;
    // The teardown run joins this request's trace, whenever it starts.
    let traceparent = hubwright_telemetry::TraceParent::current().map(|tp| tp.to_string());
    let outcome = state
        .store
        .request_teardown(
            id,
            teardown_id,
            caller.subject(),
            state.clock.now(),
            traceparent.as_deref(),
        )
        .await?;
    let (teardown, run_id) = match outcome {
        TeardownRequest::Started(run_id) => ("started", Some(run_id)),
        TeardownRequest::Waiting => ("waiting", None),
        TeardownRequest::AlreadyRequested => ("already_requested", None),
    };
    let links = Links::new(id, run_id);
    Ok((
        StatusCode::ACCEPTED,
        AppendHeaders(links.run.clone().map(|run| (header::LOCATION, run))),
        Json(TeardownAccepted {
            environment_id: id,
            teardown,
            run_id,
            links,
        }),
    ))
}
