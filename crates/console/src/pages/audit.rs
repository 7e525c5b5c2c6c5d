//! The audit log (admins): entries newest first with the API's filters and
//! cursor pages, and `GET /audit/export`, the API's JSON-lines export
//! through the session (the API's own export wants a bearer token, which a
//! browser does not have), as a download with the same filters.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value as JsonValue, json};

use crate::Console;
use crate::api::{Api, ApiProblem};
use crate::pages::PageError;
use crate::render::data;
use crate::session::Viewer;

/// The export's media type, as the API answers it.
const JSON_LINES: &str = "application/x-ndjson";

/// The audit routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/audit", get(list))
        .route("/audit/export", get(export))
}

/// The filters, as the form sends them (`since` and `until` as a
/// `datetime-local` input writes them, in UTC).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct Filters {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    outcome: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    since: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    until: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

impl Filters {
    fn is_empty(&self) -> bool {
        [
            &self.actor,
            &self.action,
            &self.target,
            &self.outcome,
            &self.channel,
            &self.since,
            &self.until,
        ]
        .iter()
        .all(|f| f.trim().is_empty())
    }

    /// The API's query: the times as RFC 3339, the rest as typed.
    fn api_query(&self, with_cursor: bool) -> String {
        let api = Self {
            since: rfc3339(&self.since),
            until: rfc3339(&self.until),
            cursor: if with_cursor {
                self.cursor.clone()
            } else {
                String::new()
            },
            ..self.clone()
        };
        serde_urlencoded::to_string(api).unwrap_or_default()
    }

    /// The form's values: a time the API would read is shown as the
    /// `datetime-local` input takes it.
    fn for_form(&self) -> Self {
        Self {
            since: local_input(&self.since),
            until: local_input(&self.until),
            ..self.clone()
        }
    }
}

/// `2026-12-06T09:00` (a `datetime-local` value, read as UTC) as
/// `2026-12-06T09:00:00Z`; any other text as it is, for the API to judge.
fn rfc3339(text: &str) -> String {
    let text = text.trim();
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map_or_else(
        || text.to_owned(),
        |at| at.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )
}

/// An RFC 3339 time as a `datetime-local` input shows it, in UTC; other
/// text as it is.
fn local_input(text: &str) -> String {
    DateTime::parse_from_rfc3339(text.trim()).map_or_else(
        |_| text.to_owned(),
        |at| {
            at.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        },
    )
}

/// The message for query parameter `name`, if the API named it.
fn for_parameter<'p>(problem: &'p ApiProblem, name: &str) -> Option<&'p str> {
    problem
        .errors
        .iter()
        .find(|e| e.parameter.as_deref() == Some(name))
        .map(|e| e.detail.as_str())
}

async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(filters): Query<Filters>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let path = format!("/v1/audit?limit=50&{}", filters.api_query(true));
    let (page, problem): (JsonValue, Option<ApiProblem>) = match api.get(&path).await {
        Ok(page) => (page, None),
        // A filter the API refused: the form shows why, next to it.
        Err(problem) if problem.status == 422 => (json!({ "items": [] }), Some(problem)),
        Err(problem) => return Err(problem.into()),
    };
    let errors = problem.as_ref().map(|problem| {
        let fields = [
            "actor", "action", "target", "outcome", "channel", "since", "until", "cursor",
        ];
        let named: serde_json::Map<String, JsonValue> = fields
            .iter()
            .filter_map(|name| Some((name.to_string(), json!(for_parameter(problem, name)?))))
            .collect();
        named
    });
    // A refusal no field explains is shown above the list.
    let general = problem
        .as_ref()
        .filter(|_| errors.as_ref().is_none_or(serde_json::Map::is_empty))
        .map(|problem| problem.detail.clone());
    let next = page["next_cursor"].as_i64().map(|cursor| {
        serde_urlencoded::to_string(Filters {
            cursor: cursor.to_string(),
            ..filters.clone()
        })
        .unwrap_or_default()
    });
    let export = filters.api_query(false);
    Ok(console
        .views()
        .render(
            "audit.html",
            Some(&viewer),
            context! {
                title => "Audit log",
                nav => "audit",
                items => data(&page["items"]),
                filters => data(&filters.for_form()),
                filtered => !filters.is_empty(),
                paged => !filters.cursor.is_empty(),
                first_page => serde_urlencoded::to_string(Filters { cursor: String::new(), ..filters.clone() }).unwrap_or_default(),
                errors => data(&errors.unwrap_or_default()),
                general,
                next,
                export,
            },
        )
        .into_response())
}

async fn export(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(filters): Query<Filters>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let path = format!("/v1/audit/export?{}", filters.api_query(false));
    let mut response = api.download(&path, JSON_LINES).await?;
    let name = format!(
        "attachment; filename=\"hubwright-audit-{}.jsonl\"",
        console.app.clock.now().format("%Y%m%dT%H%M%SZ")
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datetime_local_value_is_sent_to_the_api_as_utc() {
        assert_eq!(rfc3339("2026-12-06T09:00"), "2026-12-06T09:00:00Z");
        assert_eq!(rfc3339("2026-12-06T09:00:30"), "2026-12-06T09:00:30Z");
        // Anything else is the API's to judge, and its message names the field.
        assert_eq!(rfc3339("yesterday"), "yesterday");
        assert_eq!(
            rfc3339("2026-12-06T09:00:00+01:00"),
            "2026-12-06T09:00:00+01:00"
        );
        assert_eq!(
            local_input("2026-12-06T09:00:00+01:00"),
            "2026-12-06T08:00:00"
        );
    }
}
