//! `/v1/runs`: list runs, read one and its timeline; operators retry and cancel.
//!
//! A developer sees the runs they own: those of their environments (whoever
//! started them: the TTL scheduler's teardown of their environment too) and
//! those they started that work on no environment. Operators see all. The
//! list and the single-run routes apply the same rule ([`Run::owner`]).

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hubwright_state::model::{Event, Role, Run, Step};
use hubwright_state::store::operator::{Cancellation, StepRef};
use hubwright_telemetry::TraceParent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, ConsoleUser};
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::{ApiPath, ApiQuery, OptionalJson};
use crate::stream;

pub mod list;

/// The `/v1/runs` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list::list))
        .routes(routes!(show))
        .routes(routes!(events))
        .routes(routes!(retry))
        .routes(routes!(cancel))
}

/// A run with its steps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunView {
    #[serde(flatten)]
    run: Run,
    steps: Vec<Step>,
}

/// Loads a run the caller may see (one they own); others' runs are 404, not
/// 403, so their existence does not leak.
async fn visible_run(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<Run> {
    let run = state.store.run(id).await?;
    if caller.may_see(&run.owner) {
        Ok(run)
    } else {
        Err(Problem::not_found(format!("no run {id}")))
    }
}

/// A run with its steps (state, attempts, last error, output).
#[utoipa::path(get, path = "/v1/runs/{id}", operation_id = "get_run", tag = "runs", params(("id" = Uuid, Path)),
    responses((status = 200, body = RunView), (status = 404, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunView>> {
    let run = visible_run(&state, &caller, id).await?;
    let steps = state.store.steps(id).await?;
    Ok(Json(RunView { run, steps }))
}

/// `?after=<event id>&limit=<n>`: a page of the timeline, oldest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events after this event id (0: from the start).
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// Page size.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000)]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// A page of a run's timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsPage {
    events: Vec<Event>,
    /// Pass as `after` for the next page.
    next_after: i64,
}

/// A run's timeline: a page of JSON, or with `Accept: text/event-stream` the live stream
#[utoipa::path(get, path = "/v1/runs/{id}/events", operation_id = "list_run_events", tag = "runs", params(("id" = Uuid, Path), EventsQuery),
    responses((status = 200, body = EventsPage, description = "or text/event-stream"), (status = 404, body = ProblemDocument),
        (status = 429, body = ProblemDocument, description = "too many open event streams (with `Retry-After`)")),
    security(("bearer" = [])))]
/// A page of JSON, or with `Accept: text/event-stream` the live stream
/// (resuming after `Last-Event-ID` when the client sends one).
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    console: Option<Extension<ConsoleUser>>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Response> {
    if !(1..=1000).contains(&query.limit) {
        return Err(Problem::invalid_parameter(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    visible_run(&state, &caller, id).await?;
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_stream {
        let resume = match headers.get("last-event-id") {
            None => query.after,
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    Problem::invalid_header("Last-Event-ID", "must be an event id (a whole number)")
                })?,
        };
        let console = console.as_ref().map(|Extension(user)| user);
        return Ok(stream::open(&state, &headers, console, id, resume));
    }
    let events = state.store.events(id, query.after, query.limit).await?;
    let next_after = events.last().map_or(query.after, |e| e.id);
    Ok(Json(EventsPage { events, next_after }).into_response())
}

/// Body of a retry: where to resume; the failed step when absent.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// The step to resume at, by name (`"helm"`) or by number from 1 (`3`), as
    /// `GET /v1/runs/{id}` lists them; at most the failed step.
    #[serde(default)]
    #[schema(value_type = Option<StepRef>, example = "helm")]
    from_step: Option<StepRef>,
}

/// Where a retried run resumes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetryAccepted {
    run_id: Uuid,
    /// The step's number, from 1.
    resumes_at_step: i32,
    /// The step's name.
    resumes_at_step_name: String,
}

/// Retry a failed run from its failed step or `from_step` (operators).
#[utoipa::path(post, path = "/v1/runs/{id}/retry", operation_id = "retry_run", tag = "runs", params(("id" = Uuid, Path)),
    request_body(content = Option<RetryRequest>),
    responses((status = 202, body = RetryAccepted), (status = 403, body = ProblemDocument),
        (status = 409, body = ProblemDocument, description = "The run is not failed"),
        (status = 422, body = ProblemDocument, description = "`from_step` names no step, or one after the failed step")),
    security(("bearer" = [])))]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(request): OptionalJson<RetryRequest>,
) -> ApiResult<(StatusCode, Json<RetryAccepted>)> {
    caller.require(Role::Operator)?;
    // The run's new attempts are in this request's trace; the request's
    // span links to the trace its earlier attempts are in.
    let traceparent = TraceParent::current();
    let resumed = state
        .store
        .retry_run_from(
            id,
            request.from_step.as_ref(),
            caller.subject(),
            state.clock.now(),
            traceparent.map(|tp| tp.to_string()).as_deref(),
        )
        .await?;
    if let Some(previous) = resumed
        .previous_traceparent
        .as_deref()
        .and_then(TraceParent::parse)
    {
        hubwright_telemetry::context::link(&tracing::Span::current(), &previous);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(RetryAccepted {
            run_id: id,
            resumes_at_step: resumed.number,
            resumes_at_step_name: resumed.name,
        }),
    ))
}

/// What a cancel did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelAccepted {
    run_id: Uuid,
    /// `cancelled`, or `cancel_requested` while a step is in flight.
    status: &'static str,
}

/// Cancel a run; a step in flight is stopped (operators).
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", operation_id = "cancel_run", tag = "runs", params(("id" = Uuid, Path)),
    responses((status = 202, body = CancelAccepted), (status = 403, body = ProblemDocument),
        (status = 409, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<CancelAccepted>)> {
    caller.require(Role::Operator)?;
    let status = match state
        .store
        .cancel_run(id, caller.subject(), state.clock.now())
        .await?
    {
        Cancellation::Cancelled => "cancelled",
        Cancellation::Requested => "cancel_requested",
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelAccepted { run_id: id, status }),
    ))
}
