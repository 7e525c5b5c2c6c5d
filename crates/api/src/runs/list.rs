//! `GET /v1/runs`: a page of runs, newest first, with filters.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use hubwright_state::model::{Run, RunState};
use hubwright_state::store::run_list::RunFilter;
use serde::de::IntoDeserializer;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::ApiQuery;

/// `?state=&environment=&template=&kind=&owner=&since=&cursor=&limit=`.
///
/// Read as text and parsed one by one, so a bad value is a problem that
/// names its parameter; the documented types are what each must parse as.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Only runs in this state.
    #[param(value_type = Option<RunState>)]
    state: Option<String>,
    /// Only runs of this environment (its id).
    #[param(value_type = Option<Uuid>)]
    environment: Option<String>,
    /// Only runs of this template.
    template: Option<String>,
    /// Only runs of this workflow (the run's `workflow`): `provision`,
    /// `teardown`, or another the template defines.
    #[param(example = "provision")]
    kind: Option<String>,
    /// Only runs this subject owns: of environments they own, or started by
    /// them when the run works on no environment. Developers see only their
    /// own, so another owner gives them an empty page.
    owner: Option<String>,
    /// Only runs created at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>, example = "2026-12-06T09:00:00Z")]
    since: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<Uuid>)]
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunPage {
    items: Vec<Run>,
    /// Pass as `cursor` for the next (older) page; null on the last one.
    next_cursor: Option<Uuid>,
}

fn uuid(field: &str, text: &str) -> ApiResult<Uuid> {
    text.parse()
        .map_err(|_| Problem::invalid(field, &format!("must be a UUID (got `{text}`)")))
}

fn parse_state(text: &str) -> ApiResult<RunState> {
    RunState::deserialize(text.into_deserializer()).map_err(|_: serde::de::value::Error| {
        Problem::invalid(
            "state",
            &format!(
                "must be one of pending, running, waiting, succeeded, failed, cancelled (got `{text}`)"
            ),
        )
    })
}

fn parse_since(text: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Problem::invalid(
                "since",
                &format!("must be an RFC 3339 timestamp, e.g. 2026-12-06T09:00:00Z (got `{text}`)"),
            )
        })
}

fn parse_limit(text: Option<&str>) -> ApiResult<i64> {
    let Some(text) = text else {
        return Ok(50);
    };
    text.parse()
        .ok()
        .filter(|n| (1..=200).contains(n))
        .ok_or_else(|| Problem::invalid("limit", "must be a whole number from 1 to 200"))
}

/// List runs, newest first: a developer's own (of their environments, or
/// started by them), everyone's for operators.
#[utoipa::path(get, path = "/v1/runs", operation_id = "list_runs", tag = "runs", params(RunListQuery),
    responses((status = 200, body = RunPage), (status = 422, body = ProblemDocument,
        description = "A filter's value does not parse; `detail` names the parameter and the rule")),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RunListQuery>,
) -> ApiResult<Json<RunPage>> {
    let limit = parse_limit(query.limit.as_deref())?;
    let filter = RunFilter {
        state: query.state.as_deref().map(parse_state).transpose()?,
        environment_id: query
            .environment
            .as_deref()
            .map(|text| uuid("environment", text))
            .transpose()?,
        template: query.template,
        workflow: query.kind,
        owner: match query.owner {
            Some(owner) if caller.is_operator() => Some(owner),
            // Developers list only their own: another owner finds nothing.
            Some(owner) if owner != caller.subject() => {
                return Ok(Json(RunPage {
                    items: Vec::new(),
                    next_cursor: None,
                }));
            }
            _ if caller.is_operator() => None,
            _ => Some(caller.subject().to_owned()),
        },
        since: query.since.as_deref().map(parse_since).transpose()?,
    };
    let cursor = query
        .cursor
        .as_deref()
        .map(|text| uuid("cursor", text))
        .transpose()?;
    // One extra row tells whether another page follows.
    let mut items = state.store.list_runs(&filter, cursor, limit + 1).await?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > page;
    items.truncate(page);
    let next_cursor = if more {
        items.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(RunPage { items, next_cursor }))
}
