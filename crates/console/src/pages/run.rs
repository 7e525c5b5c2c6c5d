//! A run: its facts, every step with its attempts, output and error, and its
//! timeline, redrawn live while it runs; operators retry it from a chosen
//! step or cancel it.
//!
//! The page's live region (`run_detail.html`) is rendered in one place and
//! served twice: inside the page, and alone at `/runs/{id}/steps` for the
//! script, which fetches it again on every event of `/runs/{id}/events`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use uuid::Uuid;

use crate::Console;
use crate::api::{Api, ApiProblem};
use crate::pages::PageError;
use crate::render::data;
use crate::session::{OptionalViewer, Viewer};

/// The most timeline events a page shows (the API's largest page).
const TIMELINE: usize = 1000;

/// The run routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/runs/{id}", get(show))
        .route("/runs/{id}/steps", get(fragment))
        .route("/runs/{id}/events", get(events))
        .route("/runs/{id}/retry", post(retry))
        .route("/runs/{id}/cancel", post(cancel))
}

/// `id` as a run id; anything else is a page that does not exist.
fn run_id(id: &str) -> Result<Uuid, PageError> {
    id.parse()
        .map_err(|_| PageError::NotFound(format!("there is no run {id}")))
}

/// What the page says after an action, and what it keeps of the form.
#[derive(Debug, Default)]
struct Feedback {
    notice: Option<String>,
    /// A problem with the action as a whole (a conflict).
    action_error: Option<String>,
    /// The API's rule for `from_step`, shown beside the select.
    retry_error: Option<String>,
    /// The step (from 1) the retry select shows chosen.
    from_step: Option<i64>,
}

/// Everything the page and its live region show, read through the API.
async fn detail(api: &Api<'_>, id: Uuid, viewer: &Viewer) -> Result<Value, PageError> {
    let run: JsonValue = api.get(&format!("/v1/runs/{id}")).await?;
    let timeline: JsonValue = api
        .get(&format!("/v1/runs/{id}/events?limit={TIMELINE}"))
        .await?;
    let events: Vec<JsonValue> = timeline["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut event| {
            if let (Some(idx), Some(object)) = (event["step_idx"].as_i64(), event.as_object_mut()) {
                object.insert("step_number".to_owned(), json!(idx + 1));
            }
            event
        })
        .collect();
    // The environment's name for the link; a run outlives its environment.
    let environment_name = match run["environment_id"].as_str() {
        Some(env) => api
            .get::<JsonValue>(&format!("/v1/environments/{env}"))
            .await
            .ok()
            .and_then(|e| e["name"].as_str().map(str::to_owned)),
        None => None,
    };
    let state = run["state"].as_str().unwrap_or_default().to_owned();
    let current = run["current_step"].as_i64().unwrap_or_default();
    let steps: Vec<JsonValue> = run["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|step| annotate_step(step, current, &state))
        .collect();
    let operator = viewer.has(hubwright_state::model::Role::Operator);
    // A failed run resumes at its failed step or an earlier one.
    let retry_choices: Vec<JsonValue> = if state == "failed" {
        steps
            .iter()
            .filter(|s| s["idx"].as_i64().is_some_and(|idx| idx <= current))
            .map(|s| json!({ "number": s["number"], "name": s["name"], "failed": s["state"] == "failed" }))
            .collect()
    } else {
        Vec::new()
    };
    let waiting_for_approval = state == "waiting"
        && steps
            .iter()
            .any(|s| s["is_current"] == true && s["kind"] == "approval");
    let live = matches!(state.as_str(), "pending" | "running" | "waiting");
    Ok(context! {
        run => data(&run),
        error_detail => run["error"]["detail"].as_object().map(|_| pretty(&run["error"]["detail"])),
        steps => data(&steps),
        events => data(&events),
        more_events => events.len() >= TIMELINE,
        last_event => timeline["next_after"].as_i64().unwrap_or_default(),
        environment_name,
        progress => progress(current, run["step_count"].as_i64().unwrap_or_default(), &steps),
        can_retry => operator && state == "failed",
        can_cancel => operator && live && run["cancel_requested_at"].is_null(),
        retry_choices => data(&retry_choices),
        failed_step => current + 1,
        waiting_for_approval,
        live,
    })
}

/// A step with what the page shows beside the API's fields.
fn annotate_step(mut step: JsonValue, current: i64, run_state: &str) -> JsonValue {
    let idx = step["idx"].as_i64().unwrap_or_default();
    let output = (!step["output"].is_null()).then(|| pretty(&step["output"]));
    let error_detail =
        (!step["error"]["detail"].is_null()).then(|| pretty(&step["error"]["detail"]));
    if let Some(object) = step.as_object_mut() {
        object.insert("number".to_owned(), json!(idx + 1));
        object.insert(
            "is_current".to_owned(),
            json!(idx == current && run_state != "succeeded"),
        );
        object.insert("output_text".to_owned(), json!(output));
        object.insert("error_detail".to_owned(), json!(error_detail));
    }
    step
}

/// "Step 2 of 3 (helm)", or "All 3 steps done".
fn progress(current: i64, count: i64, steps: &[JsonValue]) -> String {
    if current >= count {
        return format!("All {count} steps done");
    }
    let name = steps
        .iter()
        .find(|s| s["idx"].as_i64() == Some(current))
        .and_then(|s| s["name"].as_str())
        .unwrap_or_default();
    format!("Step {} of {count} ({name})", current + 1)
}

fn pretty(value: &JsonValue) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    #[serde(default)]
    done: String,
    #[serde(default)]
    from: Option<i64>,
}

async fn show(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id = run_id(&id)?;
    // Only what the console itself redirected with is said; nothing is echoed.
    let notice = match query.done.as_str() {
        "retried" => Some(match query.from {
            Some(step) => format!("Retried: the run resumes at step {step}."),
            None => "Retried: the run resumes.".to_owned(),
        }),
        "cancelled" => Some("Cancelled: no further step runs.".to_owned()),
        "cancel_requested" => Some(
            "Cancellation requested: the worker stops the step in flight, then the run.".to_owned(),
        ),
        _ => None,
    };
    let feedback = Feedback {
        notice,
        ..Feedback::default()
    };
    page(&console, &viewer, peer, id, feedback, StatusCode::OK).await
}

/// The run page with `feedback`, answered with `status`.
async fn page(
    console: &Console,
    viewer: &Viewer,
    peer: SocketAddr,
    id: Uuid,
    feedback: Feedback,
    status: StatusCode,
) -> Result<Response, PageError> {
    let api = Api::new(console, viewer, Some(peer));
    let detail = detail(&api, id, viewer).await?;
    let html = console.views().render(
        "run.html",
        Some(viewer),
        context! {
            title => "Run",
            nav => "runs",
            notice => feedback.notice,
            action_error => feedback.action_error,
            retry_error => feedback.retry_error,
            from_step => feedback.from_step,
            ..detail
        },
    );
    Ok((status, html).into_response())
}

/// The live region alone, for the script. Without a session it is 401, not
/// the sign-in page, so the script never draws that into the region.
async fn fragment(
    State(console): State<Console>,
    OptionalViewer(viewer): OptionalViewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(viewer) = viewer else {
        return Ok((StatusCode::UNAUTHORIZED, "sign in again").into_response());
    };
    let id = run_id(&id)?;
    let api = Api::new(&console, &viewer, Some(peer));
    let detail = detail(&api, id, &viewer).await?;
    let Html(html) = console
        .views()
        .render("run_detail.html", Some(&viewer), detail);
    Ok(Html(html).into_response())
}

#[derive(Debug, Deserialize)]
struct AfterQuery {
    #[serde(default)]
    after: i64,
}

/// The run's timeline as it happens, for the live region. A reconnecting
/// browser says the last event it saw (`Last-Event-ID`); the stream resumes
/// after it rather than after the page's `after`.
async fn events(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(query): Query<AfterQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let id = run_id(&id)?;
    let seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<i64>().ok());
    let after = seen.unwrap_or(query.after).max(0);
    let api = Api::new(&console, &viewer, Some(peer));
    let path = format!("/v1/runs/{id}/events?after={after}");
    Ok(crate::live::events(&api, &path).await)
}

#[derive(Debug, Deserialize)]
struct RetryForm {
    #[serde(default)]
    csrf: String,
    /// A step's number from 1 (or its name); empty: the failed step.
    #[serde(default)]
    from_step: String,
}

async fn retry(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(form): Form<RetryForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let id = run_id(&id)?;
    let chosen = form.from_step.trim();
    let number = chosen.parse::<i64>().ok();
    let body = match (chosen, number) {
        ("", _) => json!({}),
        (_, Some(number)) => json!({ "from_step": number }),
        (name, None) => json!({ "from_step": name }),
    };
    let api = Api::new(&console, &viewer, Some(peer));
    let answer = api
        .send::<JsonValue>(Method::POST, &format!("/v1/runs/{id}/retry"), Some(body))
        .await;
    match answer {
        Ok(accepted) => {
            let step = accepted["resumes_at_step"].as_i64().unwrap_or(1);
            Ok(Redirect::to(&format!("/runs/{id}?done=retried&from={step}")).into_response())
        }
        Err(problem) => {
            let feedback = Feedback {
                retry_error: problem.for_field("/from_step").map(str::to_owned),
                from_step: number,
                ..Feedback::default()
            };
            refused(&console, &viewer, peer, id, problem, feedback).await
        }
    }
}

async fn cancel(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(form): Form<crate::session::CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let id = run_id(&id)?;
    let api = Api::new(&console, &viewer, Some(peer));
    match api
        .send::<JsonValue>(Method::POST, &format!("/v1/runs/{id}/cancel"), None)
        .await
    {
        Ok(accepted) => {
            let done = match accepted["status"].as_str() {
                Some("cancel_requested") => "cancel_requested",
                _ => "cancelled",
            };
            Ok(Redirect::to(&format!("/runs/{id}?done={done}")).into_response())
        }
        Err(problem) => refused(&console, &viewer, peer, id, problem, Feedback::default()).await,
    }
}

/// An action the API refused: a conflict or a broken rule is shown on the
/// run page (the rule beside its field when it names one); anything else
/// (not allowed, not found) is the console's error page.
async fn refused(
    console: &Console,
    viewer: &Viewer,
    peer: SocketAddr,
    id: Uuid,
    problem: ApiProblem,
    mut feedback: Feedback,
) -> Result<Response, PageError> {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::CONFLICT);
    if !matches!(problem.status, 409 | 422) {
        return Err(problem.into());
    }
    if feedback.retry_error.is_none() {
        feedback.action_error = Some(problem.detail);
    }
    page(console, viewer, peer, id, feedback, status).await
}
