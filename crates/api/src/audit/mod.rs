//! `/v1/audit`: the audit trail, for admins. Every state-changing call is
//! recorded by the [`record`] middleware; `GET /v1/audit` pages through the
//! entries newest first with filters, and `GET /v1/audit/export` streams
//! every matching entry as JSON lines.

mod action;
pub mod record;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hubwright_state::Store;
use hubwright_state::model::Role;
use hubwright_state::store::audit::{AuditEntry, AuditFilter, Channel, Outcome};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::ApiQuery;

/// The media type of the export: one JSON object per line.
pub const JSON_LINES: &str = "application/x-ndjson";

/// Entries read per query while exporting.
const EXPORT_PAGE: i64 = 500;

/// The `/v1/audit` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
}

/// `?actor=&action=&target=&outcome=&channel=&since=&until=&cursor=&limit=`; read as
/// text and parsed one by one, so a bad value names its parameter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries by this subject.
    actor: Option<String>,
    /// Only this action, e.g. `environment.create`, `run.retry`, `token.revoke`.
    #[param(example = "environment.create")]
    action: Option<String>,
    /// Only entries about this target: an id (or the name a caller gave).
    target: Option<String>,
    /// `success` (2xx) or `failure` (refused or failed).
    #[param(value_type = Option<Outcome>)]
    outcome: Option<String>,
    /// `api` (an HTTP client: the CLI, a portal, a script) or `console`
    /// (the web console, for the user signed in to it).
    #[param(value_type = Option<Channel>)]
    channel: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>, example = "2026-12-06T09:00:00Z")]
    since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    until: Option<String>,
    /// The `next_cursor` of the previous page (not for the export).
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50; not for the export).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// A page of audit entries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; null on the last one.
    next_cursor: Option<i64>,
}

fn parse_time(field: &str, text: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Problem::invalid_parameter(
                field,
                &format!("must be an RFC 3339 timestamp, e.g. 2026-12-06T09:00:00Z (got `{text}`)"),
            )
        })
}

/// Empty filters are no filters: `?actor=` lists everyone's.
fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

impl AuditQuery {
    fn filter(&self) -> ApiResult<AuditFilter> {
        Ok(AuditFilter {
            actor: non_empty(self.actor.clone()),
            action: non_empty(self.action.clone()),
            target: non_empty(self.target.clone()),
            outcome: self
                .outcome
                .as_deref()
                .map(|text| {
                    Outcome::parse(text)
                        .map_err(|rule| Problem::invalid_parameter("outcome", &rule))
                })
                .transpose()?,
            channel: non_empty(self.channel.clone())
                .map(|text| {
                    Channel::parse(&text)
                        .map_err(|rule| Problem::invalid_parameter("channel", &rule))
                })
                .transpose()?,
            since: self
                .since
                .as_deref()
                .map(|t| parse_time("since", t))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| parse_time("until", t))
                .transpose()?,
        })
    }
}

/// The audit trail, newest first, with filters (admin).
#[utoipa::path(get, path = "/v1/audit", operation_id = "list_audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = ProblemDocument, description = "Not an admin"),
        (status = 422, body = ProblemDocument, description = "A filter's value does not parse; `detail` names the parameter and the rule")),
    security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    caller.require(Role::Admin)?;
    let filter = query.filter()?;
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                Problem::invalid_parameter("limit", "must be a whole number from 1 to 200")
            })?,
    };
    let cursor = query
        .cursor
        .as_deref()
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                Problem::invalid_parameter(
                    "cursor",
                    &format!("must be the `next_cursor` of a previous page (got `{text}`)"),
                )
            })
        })
        .transpose()?;
    // One extra row tells whether another page follows.
    let mut items = state.store.list_audit(&filter, cursor, limit + 1).await?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > page;
    items.truncate(page);
    let next_cursor = if more {
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage { items, next_cursor }))
}

/// Every matching entry as JSON lines, newest first, streamed (admin).
#[utoipa::path(get, path = "/v1/audit/export", operation_id = "export_audit", tag = "audit", params(AuditQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = AuditEntry,
            description = "One entry per line, newest first"),
        (status = 403, body = ProblemDocument, description = "Not an admin"),
        (status = 422, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    caller.require(Role::Admin)?;
    if query.cursor.is_some() || query.limit.is_some() {
        let name = if query.cursor.is_some() {
            "cursor"
        } else {
            "limit"
        };
        return Err(Problem::invalid_parameter(
            name,
            "the export has every matching entry; narrow it with since and until",
        ));
    }
    let filter = query.filter()?;
    let lines = export_lines(state.store.clone(), filter);
    Ok((
        [
            (header::CONTENT_TYPE, JSON_LINES),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

/// Pages of the export as chunks of lines; a database error ends the stream
/// with an error, so the client sees a broken transfer, not a short file.
fn export_lines(
    store: Store,
    filter: AuditFilter,
) -> impl futures_util::Stream<Item = Result<String, axum::BoxError>> {
    // (the cursor for the next page, whether one may follow)
    futures_util::stream::try_unfold((None, true), move |(before, more)| {
        let store = store.clone();
        let filter = filter.clone();
        async move {
            if !more {
                return Ok(None);
            }
            let entries = store
                .list_audit(&filter, before, EXPORT_PAGE)
                .await
                .inspect_err(
                    |err| tracing::error!(error = %err, "the audit export failed part-way"),
                )?;
            if entries.is_empty() {
                return Ok(None);
            }
            let more = i64::try_from(entries.len()).unwrap_or(i64::MAX) == EXPORT_PAGE;
            let next = entries.last().map(|e| e.id);
            let mut chunk = String::new();
            for entry in &entries {
                chunk.push_str(&serde_json::to_string(entry)?);
                chunk.push('\n');
            }
            Ok(Some((chunk, (next, more))))
        }
    })
}
