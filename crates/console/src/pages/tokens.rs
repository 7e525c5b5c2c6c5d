//! Tokens (admins): the list, a create form whose answer shows the new
//! secret once, and revocation with a confirmation page.
//!
//! The secret is rendered straight into the answer to the form's POST and
//! nowhere else: it is not put in a redirect's URL, a cookie or the session,
//! so reloading or going back cannot show it again (every page is
//! `Cache-Control: no-store`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use hubwright_state::store::console::SessionAuth;
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use crate::Console;
use crate::api::{Api, ApiProblem, segment};
use crate::pages::{PageError, request_key};
use crate::render::data;
use crate::session::Viewer;

/// The roles a token may have, in the order the form offers them.
const ROLES: [&str; 3] = ["developer", "operator", "admin"];

/// The token routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}/revoke", get(confirm_revoke).post(revoke))
}

/// What the create form holds: sent back with its errors when refused.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
struct CreateForm {
    #[serde(default, skip_serializing)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    role: String,
    /// The form's `Idempotency-Key`: a reload of the page that answered it
    /// sends the form again, and must not mint a second token.
    #[serde(default)]
    request_key: String,
}

/// `?revoked=<id>`: the list says which token was just revoked.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    revoked: String,
}

/// The id of the token the viewer's session rides on, if it is a token session.
fn own_token(viewer: &Viewer) -> Option<String> {
    match viewer.user.auth {
        SessionAuth::Token(id) => Some(id.to_string()),
        SessionAuth::Oidc => None,
    }
}

/// Every token, newest first (the API's order).
async fn tokens(api: &Api<'_>) -> Result<Vec<JsonValue>, ApiProblem> {
    let page: JsonValue = api.get("/v1/tokens").await?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

/// What the tokens page shows besides the list: a secret just created, a
/// token just revoked, or the create form's problems.
#[derive(Debug, Default)]
struct Extras {
    created: Option<JsonValue>,
    /// The form was sent before and made a token then (the API's 409).
    already_sent: Option<String>,
    revoked: Option<JsonValue>,
    form: CreateForm,
    problem: Option<ApiProblem>,
}

fn page(
    console: &Console,
    viewer: &Viewer,
    items: &[JsonValue],
    extras: Extras,
) -> Result<Response, PageError> {
    let errors = extras.problem.as_ref().map(|problem| {
        context! {
            subject => problem.for_field("/subject"),
            role => problem.for_field("/role"),
        }
    });
    // A refusal no field explains is shown above the form.
    let general = extras.problem.as_ref().and_then(|problem| {
        (problem.for_field("/subject").is_none() && problem.for_field("/role").is_none())
            .then(|| problem.detail.clone())
    });
    let mut form = extras.form;
    if form.role.is_empty() {
        form.role = "developer".to_owned();
    }
    // A refused form keeps its key (nothing was made with it); any other
    // is a new request.
    if extras.problem.is_none() || form.request_key.is_empty() {
        form.request_key = request_key()?;
    }
    Ok(console
        .views()
        .render(
            "tokens.html",
            Some(viewer),
            context! {
                title => "Tokens",
                nav => "tokens",
                items => data(&items),
                own_token => own_token(viewer),
                created => extras.created.as_ref().map(data),
                already_sent => extras.already_sent,
                revoked => extras.revoked.as_ref().map(data),
                form => data(&form),
                errors => errors.unwrap_or(Value::UNDEFINED),
                general,
                roles => ROLES,
            },
        )
        .into_response())
}

async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let items = tokens(&api).await?;
    let revoked = items
        .iter()
        .find(|t| !query.revoked.is_empty() && t["id"] == query.revoked.as_str())
        .cloned();
    let extras = Extras {
        revoked,
        ..Extras::default()
    };
    page(&console, &viewer, &items, extras)
}

async fn create(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let api = Api::new(&console, &viewer, Some(peer));
    let role = (!form.role.is_empty()).then(|| form.role.clone());
    let body = json!({ "subject": form.subject, "role": role });
    let created: Result<JsonValue, ApiProblem> = if form.request_key.is_empty() {
        api.send(Method::POST, "/v1/tokens", Some(body)).await
    } else {
        api.send_idempotent(Method::POST, "/v1/tokens", body, &form.request_key)
            .await
    };
    match created {
        Ok(created) => {
            let items = tokens(&api).await?;
            let extras = Extras {
                created: Some(created),
                ..Extras::default()
            };
            Ok((
                StatusCode::CREATED,
                page(&console, &viewer, &items, extras)?,
            )
                .into_response())
        }
        // Sent again (a reload of the answer): no second token; say which
        // one the first sending made.
        Err(problem) if problem.status == 409 && problem.detail.starts_with("Idempotency-Key") => {
            let items = tokens(&api).await?;
            let extras = Extras {
                already_sent: Some(problem.detail),
                ..Extras::default()
            };
            Ok((
                StatusCode::CONFLICT,
                page(&console, &viewer, &items, extras)?,
            )
                .into_response())
        }
        // Refused: the form again, with the user's input and the API's reasons.
        Err(problem) if problem.status == 422 => {
            let items = tokens(&api).await?;
            let extras = Extras {
                form,
                problem: Some(problem),
                ..Extras::default()
            };
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&console, &viewer, &items, extras)?,
            )
                .into_response())
        }
        Err(problem) => Err(problem.into()),
    }
}

/// The token `id`, from the list (the API has no single-token read).
async fn token(api: &Api<'_>, id: &str) -> Result<JsonValue, PageError> {
    tokens(api)
        .await?
        .into_iter()
        .find(|t| t["id"] == id)
        .ok_or_else(|| PageError::NotFound(format!("there is no token with id {id}")))
}

async fn confirm_revoke(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let token = token(&api, &id).await?;
    let own = own_token(&viewer).is_some_and(|own| own == id);
    Ok(console
        .views()
        .render(
            "token_revoke.html",
            Some(&viewer),
            context! {
                title => "Revoke token",
                nav => "tokens",
                token => data(&token),
                own,
            },
        )
        .into_response())
}

async fn revoke(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(form): Form<crate::session::CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let api = Api::new(&console, &viewer, Some(peer));
    api.send::<JsonValue>(
        Method::DELETE,
        &format!("/v1/tokens/{}", segment(&id)),
        None,
    )
    .await?;
    // Revoking the session's own token ended the session with it.
    if own_token(&viewer).is_some_and(|own| own == id) {
        return Ok(Redirect::to("/sign-in").into_response());
    }
    Ok(Redirect::to(&format!("/tokens?revoked={}", segment(&id))).into_response())
}
