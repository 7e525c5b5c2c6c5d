//! Approvals: what waits for a decision (operators see all; others those
//! they may decide or asked for, as the API decides), approved or denied
//! with a comment (`/v1/approvals`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value as JsonValue, json};
use uuid::Uuid;

use crate::Console;
use crate::api::Api;
use crate::pages::PageError;
use crate::render::data;
use crate::session::Viewer;

/// The states the filter offers; `all` is any.
const STATES: [&str; 5] = ["pending", "approved", "denied", "expired", "all"];

/// The approval routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/approvals", get(list))
        .route("/approvals/{id}/decide", post(decide))
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ListQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
    /// What the console redirected with after a decision.
    #[serde(default, skip_serializing)]
    done: String,
}

/// What the page says after a decision, and what it keeps of the forms.
#[derive(Debug, Default)]
struct Feedback {
    notice: Option<&'static str>,
    /// A problem with a decision as a whole (already decided, too late).
    problem: Option<String>,
    /// The API's rule for a comment, by approval id.
    comment_errors: BTreeMap<String, String>,
    /// What was typed, by approval id.
    comments: BTreeMap<String, String>,
}

async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let notice = match query.done.as_str() {
        "approved" => Some("Approved: the run goes on."),
        "denied" => Some("Denied: the run fails and its environment is torn down."),
        _ => None,
    };
    let feedback = Feedback {
        notice,
        ..Feedback::default()
    };
    page(&console, &viewer, peer, &query, feedback, StatusCode::OK).await
}

/// The list with `feedback`, answered with `status`.
async fn page(
    console: &Console,
    viewer: &Viewer,
    peer: SocketAddr,
    query: &ListQuery,
    feedback: Feedback,
    status: StatusCode,
) -> Result<Response, PageError> {
    let api = Api::new(console, viewer, Some(peer));
    let state = if STATES.contains(&query.state.as_str()) {
        query.state.as_str()
    } else {
        "pending"
    };
    let mut path = format!("/v1/approvals?state={state}");
    if let Ok(cursor) = query.cursor.parse::<Uuid>() {
        path.push_str(&format!("&cursor={cursor}"));
    }
    let listed: JsonValue = api.get(&path).await?;
    let next = listed["next_cursor"].as_str().map(|cursor| {
        serde_urlencoded::to_string(ListQuery {
            state: state.to_owned(),
            cursor: cursor.to_owned(),
            done: String::new(),
        })
        .unwrap_or_default()
    });
    let html = console.views().render(
        "approvals.html",
        Some(viewer),
        context! {
            title => "Approvals",
            nav => "approvals",
            items => data(&listed["items"]),
            state,
            states => STATES,
            next,
            notice => feedback.notice,
            problem => feedback.problem,
            comment_errors => data(&feedback.comment_errors),
            comments => data(&feedback.comments),
        },
    );
    Ok((status, html).into_response())
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf: String,
    /// `approve` or `deny`: the button pressed.
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

async fn decide(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| PageError::NotFound(format!("there is no approval {id}")))?;
    let (verb, done) = match form.decision.as_str() {
        "approve" => ("approve", "approved"),
        "deny" => ("deny", "denied"),
        other => {
            return Err(PageError::BadRequest(format!(
                "decision: must be approve or deny (got `{other}`)"
            )));
        }
    };
    let comment = form.comment.trim();
    let body = if comment.is_empty() {
        json!({})
    } else {
        json!({ "comment": comment })
    };
    let api = Api::new(&console, &viewer, Some(peer));
    let path = format!("/v1/approvals/{id}/{verb}");
    match api.send::<JsonValue>(Method::POST, &path, Some(body)).await {
        Ok(_) => Ok(Redirect::to(&format!("/approvals?done={done}")).into_response()),
        // A broken rule or a decision that came too late is shown on the
        // list, the comment kept; not allowed or not found is an error page.
        Err(problem) if matches!(problem.status, 409 | 422) => {
            let key = id.to_string();
            let mut feedback = Feedback::default();
            match problem.for_field("/comment") {
                Some(rule) => {
                    feedback.comment_errors.insert(key.clone(), rule.to_owned());
                }
                None => feedback.problem = Some(problem.detail.clone()),
            }
            feedback.comments.insert(key, form.comment.clone());
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::CONFLICT);
            page(
                &console,
                &viewer,
                peer,
                &ListQuery::default(),
                feedback,
                status,
            )
            .await
        }
        Err(problem) => Err(problem.into()),
    }
}
