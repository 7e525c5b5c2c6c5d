//! One environment: its facts, its provisioning steps (redrawn live as its
//! run's events arrive), extend and delete, and the timeline of its runs.
//!
//! The steps region is rendered by one template partial, for the page and
//! for the fragment the page's script fetches on each event
//! (`/environments/{id}/steps`), so it is drawn in one place.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::Console;
use crate::api::{Api, ApiProblem, segment};
use crate::pages::PageError;
use crate::pages::environments::annotate;
use crate::render::data;
use crate::session::Viewer;

/// Runs shown in the timeline, newest; older ones are in the runs list.
const TIMELINE_RUNS: usize = 10;
/// Events shown per run: the API's largest page.
const EVENTS_PER_RUN: usize = 1000;

/// The environment page's routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/environments/{id}", get(show))
        .route("/environments/{id}/steps", get(steps))
        .route(
            "/environments/{id}/events",
            get(super::environment_events::events),
        )
}

/// An extension the API refused, shown on the environment page next to
/// its field.
#[derive(Debug)]
pub(crate) struct RefusedExtension {
    /// What the user asked for.
    pub ttl: String,
    /// Why not.
    pub problem: ApiProblem,
}

async fn environment(api: &Api<'_>, id: &str) -> Result<Value, PageError> {
    Ok(api
        .get(&format!("/v1/environments/{}", segment(id)))
        .await?)
}

/// A condition's reason in words: `RetryScheduled` → `retry scheduled`.
fn reason_words(reason: &str) -> String {
    let mut words = String::new();
    for c in reason.chars() {
        if c.is_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.extend(c.to_lowercase());
    }
    words
}

/// What the steps region shows: one row per provisioning step, the step
/// that failed, and one sentence that says where things stand.
fn progress(environment: &Value) -> Value {
    let conditions = environment["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = conditions.len();
    let steps: Vec<Value> = conditions
        .iter()
        .map(|c| {
            json!({
                "name": c["type"],
                "status": c["status"],
                "reason": reason_words(c["reason"].as_str().unwrap_or_default()),
                "message": c["message"],
                "at": c["last_transition_time"],
            })
        })
        .collect();
    let failed = conditions
        .iter()
        .find(|c| c["reason"] == "Failed")
        .and_then(|c| c["type"].as_str());
    let current = conditions
        .iter()
        .enumerate()
        .find(|(_, c)| c["status"] != "True");
    let summary = match environment["phase"].as_str().unwrap_or_default() {
        "requested" => "Requested: provisioning starts when a worker picks it up.".to_owned(),
        "provisioning" => match current {
            Some((at, c)) => format!(
                "Provisioning: step {} of {total}, {}, is {}: {}.",
                at + 1,
                c["type"].as_str().unwrap_or_default(),
                reason_words(c["reason"].as_str().unwrap_or_default()),
                c["message"].as_str().unwrap_or_default()
            ),
            None => "Provisioning.".to_owned(),
        },
        "ready" if environment["url"].is_string() => "Ready: the hub is up.".to_owned(),
        "ready" => "Ready: provisioning has finished.".to_owned(),
        "failed" => match failed {
            Some(step) => format!("Failed at step {step}."),
            None => "Failed.".to_owned(),
        },
        "cancelled" => "Cancelled: an operator stopped its run before it finished.".to_owned(),
        "tearing_down" => {
            "Being deleted: the hub and everything in it are being removed.".to_owned()
        }
        "deleted" => "Deleted.".to_owned(),
        other => other.to_owned(),
    };
    json!({ "steps": steps, "failed_step": failed, "summary": summary })
}

/// The runs of the environment, oldest first, each with its events.
async fn timeline(api: &Api<'_>, id: &str) -> Result<Vec<Value>, PageError> {
    let page: Value = api
        .get(&format!(
            "/v1/runs?environment={}&limit={TIMELINE_RUNS}",
            segment(id)
        ))
        .await?;
    let mut runs = page["items"].as_array().cloned().unwrap_or_default();
    runs.reverse();
    let mut timeline = Vec::with_capacity(runs.len());
    for run in runs {
        let run_id = run["id"].as_str().unwrap_or_default();
        let events: Value = api
            .get(&format!(
                "/v1/runs/{}/events?limit={EVENTS_PER_RUN}",
                segment(run_id)
            ))
            .await?;
        let events = events["events"].as_array().cloned().unwrap_or_default();
        let more = events.len() >= EVENTS_PER_RUN;
        timeline.push(json!({
            "id": run["id"],
            "workflow": run["workflow"],
            "state": run["state"],
            "created_at": run["created_at"],
            "events": events,
            "more": more,
        }));
    }
    Ok(timeline)
}

/// The environment page, with a refused extension shown at its field.
pub(crate) async fn page(
    console: &Console,
    viewer: &Viewer,
    peer: SocketAddr,
    id: &str,
    refused: Option<RefusedExtension>,
) -> Result<Response, PageError> {
    let api = Api::new(console, viewer, Some(peer));
    let environment = annotate(environment(&api, id).await?, console.app.clock.now());
    let environment_id = environment["id"].as_str().unwrap_or(id).to_owned();
    // The template's TTL policy, for the extend form; a template the policy
    // no longer lets the owner use leaves the form without a default.
    let template_path = format!(
        "/v1/templates/{}",
        segment(environment["template"].as_str().unwrap_or_default())
    );
    let ttl = api
        .get::<Value>(&template_path)
        .await
        .map(|template| template["ttl"].clone())
        .unwrap_or(Value::Null);
    let timeline = timeline(&api, &environment_id).await?;
    let status = refused.as_ref().map_or(StatusCode::OK, |refused| {
        StatusCode::from_u16(refused.problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
    });
    let extend = match &refused {
        Some(refused) => context! {
            ttl => refused.ttl.clone(),
            error => refused.problem.for_field("/ttl").map(str::to_owned)
                .or_else(|| (refused.problem.status == 403).then(|| refused.problem.detail.clone())),
            detail => refused.problem.detail.clone(),
        },
        None => context! { ttl => ttl["default"].as_str().unwrap_or_default() },
    };
    let html = console.views().render(
        "environment.html",
        Some(viewer),
        context! {
            title => environment["name"].as_str().unwrap_or(id),
            nav => "environments",
            progress => data(&progress(&environment)),
            environment => data(&environment),
            ttl => data(&ttl),
            extend,
            timeline => data(&timeline),
        },
    );
    Ok((status, html).into_response())
}

async fn show(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    page(&console, &viewer, peer, &id, None).await
}

/// The steps region alone, for the page's script to redraw it.
async fn steps(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let environment = environment(&api, &id).await?;
    Ok(console
        .views()
        .render(
            "environment_progress.html",
            Some(&viewer),
            context! { progress => data(&progress(&environment)), environment => data(&environment) },
        )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(reason_words("RetryScheduled"), "retry scheduled");
        assert_eq!(reason_words("Waiting"), "waiting");
    }

    #[test]
    fn a_provisioning_environment_says_which_step_it_is_on_and_why() {
        let environment = json!({
            "phase": "provisioning",
            "conditions": [
                {"type": "namespace", "status": "True", "reason": "Succeeded", "message": "succeeded"},
                {"type": "hub", "status": "Unknown", "reason": "Waiting", "message": "0/1 available"},
            ],
        });
        assert_eq!(
            progress(&environment)["summary"],
            "Provisioning: step 2 of 2, hub, is waiting: 0/1 available."
        );
    }

    #[test]
    fn a_failed_environment_names_the_step_that_failed() {
        let environment = json!({
            "phase": "failed",
            "conditions": [
                {"type": "namespace", "status": "False", "reason": "Failed", "message": "forbidden"},
            ],
        });
        let progress = progress(&environment);
        assert_eq!(progress["failed_step"], "namespace");
        assert_eq!(progress["summary"], "Failed at step namespace.");
    }
}
