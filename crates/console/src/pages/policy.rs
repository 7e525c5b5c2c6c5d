//! The policy page: the viewer's own limits and use (everyone,
//! `GET /v1/policy/me`) and, for operators and admins, the policy file in
//! force with its reload status, limits, groups and template access
//! (`GET /v1/policy`), as tables.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hubwright_state::model::Role;
use minijinja::context;
use serde::Serialize;
use serde_json::Value as JsonValue;

use crate::Console;
use crate::api::Api;
use crate::pages::PageError;
use crate::render::data;
use crate::session::Viewer;

/// The policy route.
pub fn routes() -> Router<Console> {
    Router::new().route("/policy", get(show))
}

/// One limit as a level of the policy file sets it.
#[derive(Debug, Serialize)]
struct LimitRow {
    /// `environments`, `per_profile.gpu`, `max_ttl`...
    limit: String,
    value: String,
}

/// A group: its members and the limits they get.
#[derive(Debug, Serialize)]
struct GroupRow {
    name: String,
    members: Vec<String>,
    limits: Vec<LimitRow>,
}

/// Who may use one template and its profiles.
#[derive(Debug, Serialize)]
struct TemplateRow {
    name: String,
    /// `None`: every caller.
    groups: Option<Vec<String>>,
    /// (profile, the groups that may choose it)
    profiles: Vec<(String, Vec<String>)>,
}

/// A limit value as the policy file writes it: `25`, `32`, `128Gi`, `unlimited`.
fn text(value: &JsonValue) -> String {
    match value {
        JsonValue::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The rows of one level's limits; maps (`per_template`, `per_profile`)
/// become one row per key, named as the policy file's path names them.
fn limit_rows(limits: &JsonValue) -> Vec<LimitRow> {
    let mut rows = Vec::new();
    for (name, value) in limits.as_object().into_iter().flatten() {
        match value.as_object() {
            Some(per) => rows.extend(per.iter().map(|(key, value)| LimitRow {
                limit: format!("{name}.{key}"),
                value: text(value),
            })),
            None => rows.push(LimitRow {
                limit: name.clone(),
                value: text(value),
            }),
        }
    }
    rows
}

fn strings(value: &JsonValue) -> Vec<String> {
    value.as_array().into_iter().flatten().map(text).collect()
}

fn groups(policy: &JsonValue) -> Vec<GroupRow> {
    policy["groups"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, group)| GroupRow {
            name: name.clone(),
            members: strings(&group["members"]),
            limits: limit_rows(&group["limits"]),
        })
        .collect()
}

fn owners(policy: &JsonValue) -> Vec<GroupRow> {
    policy["owners"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, limits)| GroupRow {
            name: name.clone(),
            members: Vec::new(),
            limits: limit_rows(limits),
        })
        .collect()
}

fn templates(policy: &JsonValue) -> Vec<TemplateRow> {
    policy["templates"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, access)| TemplateRow {
            name: name.clone(),
            groups: access["groups"]
                .is_array()
                .then(|| strings(&access["groups"])),
            profiles: access["profiles"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(profile, groups)| (profile.clone(), strings(groups)))
                .collect(),
        })
        .collect()
}

async fn show(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let mine: JsonValue = api.get("/v1/policy/me").await?;
    // The file in force is for operators and admins, as the API decides.
    let in_force: Option<JsonValue> = if viewer.has(Role::Operator) {
        Some(api.get("/v1/policy").await?)
    } else {
        None
    };
    let file = in_force.as_ref().map(|view| {
        let policy = &view["policy"];
        context! {
            status => data(view),
            defaults => data(&limit_rows(&policy["defaults"])),
            groups => data(&groups(policy)),
            owners => data(&owners(policy)),
            templates => data(&templates(policy)),
            usage => data(&policy["usage"]),
        }
    });
    let title = if file.is_some() {
        "Policy"
    } else {
        "My limits"
    };
    Ok(console
        .views()
        .render(
            "policy.html",
            Some(&viewer),
            context! { title, nav => "policy", mine => data(&mine), file },
        )
        .into_response())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn limits_read_as_rows_named_by_their_place_in_the_policy_file() {
        let rows = super::limit_rows(&json!({
            "environments": 25,
            "per_profile": { "gpu": 2 },
            "memory": "128Gi",
            "max_extensions": "unlimited",
        }));
        let rows: Vec<(String, String)> = rows.into_iter().map(|r| (r.limit, r.value)).collect();
        for expected in [
            ("environments", "25"),
            ("per_profile.gpu", "2"),
            ("memory", "128Gi"),
            ("max_extensions", "unlimited"),
        ] {
            assert!(
                rows.contains(&(expected.0.to_owned(), expected.1.to_owned())),
                "{expected:?} in {rows:?}"
            );
        }
    }
}
