//! Runs: every run for operators (a developer's own otherwise, as the API
//! decides), newest first, filtered as `GET /v1/runs` filters, a page at a
//! time.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use hubwright_state::workflow::Dur;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value as JsonValue, json};

use crate::Console;
use crate::api::{Api, ApiProblem};
use crate::pages::PageError;
use crate::render::data;
use crate::session::Viewer;

/// Runs per page.
const PAGE: u32 = 50;

/// The states a run can be in, for the filter.
const STATES: [&str; 6] = [
    "pending",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "cancelled",
];

/// The list routes.
pub fn routes() -> Router<Console> {
    Router::new().route("/runs", get(list))
}

/// The list's filters, named as the API names them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct Filters {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    owner: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    template: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    environment: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    kind: String,
    /// A time (RFC 3339) or, in the console only, a duration back from now
    /// (`24h`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    since: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

impl Filters {
    fn trimmed(self) -> Self {
        let t = |s: String| s.trim().to_owned();
        Self {
            state: t(self.state),
            owner: t(self.owner),
            template: t(self.template),
            environment: t(self.environment),
            kind: t(self.kind),
            since: t(self.since),
            cursor: t(self.cursor),
        }
    }

    fn any(&self) -> bool {
        [
            &self.state,
            &self.owner,
            &self.template,
            &self.environment,
            &self.kind,
            &self.since,
        ]
        .iter()
        .any(|f| !f.is_empty())
    }

    /// The API's query: `since` as a time, a duration counted back from `now`.
    fn api_query(&self, now: DateTime<Utc>) -> String {
        let mut query = self.clone();
        if let Ok(back) = self.since.parse::<Dur>()
            && let Some(at) = now.checked_sub_signed(back.to_chrono())
        {
            query.since = at.to_rfc3339_opts(SecondsFormat::Secs, true);
        }
        serde_urlencoded::to_string(&query).unwrap_or_default()
    }
}

/// The API's complaints about the filters, by query parameter (some name
/// theirs as a pointer, `/since`).
fn field_errors(problem: &ApiProblem) -> BTreeMap<String, String> {
    let mut errors: BTreeMap<String, String> = problem
        .errors
        .iter()
        .filter_map(|e| {
            let name = e
                .parameter
                .clone()
                .or_else(|| Some(e.pointer.as_deref()?.strip_prefix('/')?.to_owned()))?;
            Some((name, e.detail.clone()))
        })
        .collect();
    if errors.is_empty() {
        errors.insert(String::new(), problem.detail.clone());
    }
    errors
}

/// A run with what the list shows beside the API's fields.
fn annotate(mut run: JsonValue) -> JsonValue {
    let id = run["id"].as_str().unwrap_or_default().to_owned();
    let current = run["current_step"].as_i64().unwrap_or_default();
    let count = run["step_count"].as_i64().unwrap_or_default();
    let progress = if current >= count {
        format!("all {count} done")
    } else {
        format!("{} of {count}", current + 1)
    };
    if let Some(object) = run.as_object_mut() {
        // The end of a UUIDv7 is random; its start is the time, alike
        // among runs made together.
        let short = id.get(id.len().saturating_sub(8)..).unwrap_or_default();
        object.insert("short_id".to_owned(), json!(short));
        object.insert("progress".to_owned(), json!(progress));
    }
    run
}

async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(filters): Query<Filters>,
) -> Result<Response, PageError> {
    let filters = filters.trimmed();
    let api = Api::new(&console, &viewer, Some(peer));
    let now = console.app.clock.now();
    let path = format!("/v1/runs?limit={PAGE}&{}", filters.api_query(now));
    let (page, errors, status) = match api.get::<JsonValue>(&path).await {
        Ok(page) => (page, BTreeMap::new(), StatusCode::OK),
        // Filters the API refused are shown beside their fields, kept as typed.
        Err(problem) if problem.status == 422 => (
            json!({ "items": [] }),
            field_errors(&problem),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(problem) => return Err(problem.into()),
    };
    let items: Vec<JsonValue> = page["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(annotate)
        .collect();
    let next = page["next_cursor"].as_str().map(|cursor| {
        let next = Filters {
            cursor: cursor.to_owned(),
            ..filters.clone()
        };
        serde_urlencoded::to_string(&next).unwrap_or_default()
    });
    let operator = viewer.has(hubwright_state::model::Role::Operator);
    let html = console.views().render(
        "runs.html",
        Some(&viewer),
        context! {
            title => if operator { "Runs" } else { "My runs" },
            nav => "runs",
            items => data(&items),
            filters => data(&filters),
            filtered => filters.any(),
            errors => data(&errors),
            general_error => errors.get(""),
            first_page => filters.cursor.is_empty(),
            next,
            states => STATES,
        },
    );
    Ok((status, html).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_since_is_counted_back_from_now_and_a_time_passes_as_typed() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let back = Filters {
            since: "2h".to_owned(),
            ..Filters::default()
        };
        assert_eq!(back.api_query(now), "since=2026-12-07T10%3A00%3A00Z");
        let at = Filters {
            since: "2026-12-01T00:00:00Z".to_owned(),
            state: "failed".to_owned(),
            ..Filters::default()
        };
        assert_eq!(
            at.api_query(now),
            "state=failed&since=2026-12-01T00%3A00%3A00Z"
        );
    }
}
