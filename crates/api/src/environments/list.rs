//! `GET /v1/environments`: a developer's own, everyone's for operators, in
//! pages.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use hubwright_state::model::{Environment, EnvironmentPhase};
use hubwright_state::store::environments::EnvironmentFilter;
use hubwright_state::workflow::Dur;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::ApiQuery;

/// `?owner=&phase=&template=&cluster=&expiring_within=&cursor=&limit=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    owner: Option<String>,
    /// Only in this phase; `deleted` finds deleted environments.
    phase: Option<EnvironmentPhase>,
    template: Option<String>,
    /// Only environments on this cluster (as `GET /v1/templates` lists them).
    #[param(example = "default")]
    cluster: Option<String>,
    /// Only environments that expire within this long from now (e.g. `2h`)
    /// and whose teardown has not been requested yet.
    #[param(example = "2h")]
    expiring_within: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Page size.
    #[serde(default = "default_page")]
    #[param(minimum = 1, maximum = 200)]
    limit: i64,
    /// Include deleted environments (implied by a `phase` filter).
    #[serde(default)]
    include_deleted: bool,
}

fn default_page() -> i64 {
    50
}

/// A page of environments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page {
    items: Vec<Environment>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<Uuid>,
}

/// List environments (a developer's own; everyone's for operators), oldest first.
#[utoipa::path(get, path = "/v1/environments", operation_id = "list_environments", tag = "environments", params(ListQuery),
    responses((status = 200, body = Page), (status = 422, body = ProblemDocument)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page>> {
    if !(1..=200).contains(&query.limit) {
        return Err(Problem::invalid_parameter(
            "limit",
            "must be between 1 and 200",
        ));
    }
    // Developers list only their own: asking for another owner finds nothing.
    let owner = if caller.is_operator() {
        query.owner
    } else {
        match query.owner {
            Some(owner) if owner != caller.subject() => {
                return Ok(Json(Page {
                    items: Vec::new(),
                    next_cursor: None,
                }));
            }
            _ => Some(caller.subject().to_owned()),
        }
    };
    let expires_before = match &query.expiring_within {
        Some(text) => {
            let within: Dur = text
                .parse()
                .map_err(|rule: String| Problem::invalid_parameter("expiring_within", &rule))?;
            Some(
                state
                    .clock
                    .now()
                    .checked_add_signed(within.to_chrono())
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            )
        }
        None => None,
    };
    let filter = EnvironmentFilter {
        owner,
        phase: query.phase,
        template: query.template,
        cluster: query.cluster,
        include_deleted: query.include_deleted,
        expires_before,
    };
    // One extra row tells whether another page follows.
    let mut items = state
        .store
        .list_environments(&filter, query.cursor, query.limit + 1)
        .await?;
    let more = items.len() > usize::try_from(query.limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}
