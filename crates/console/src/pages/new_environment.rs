//! A new environment: the template catalogue, then a form generated from the
//! chosen template's parameter schema. The API validates the request; its
//! messages are shown next to the fields they name, with the user's input
//! kept.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use minijinja::context;
use serde_json::{Value, json};

use super::parameter_form;
use super::parameter_values::{self, last_values};
use crate::Console;
use crate::api::{Api, ApiProblem, segment};
use crate::pages::PageError;
use crate::pages::request_key;
use crate::render::data;
use crate::session::Viewer;

/// The routes of the catalogue and the request form.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/environments/new", get(catalogue))
        .route("/environments/new/{template}", get(form).post(submit))
}

async fn catalogue(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let list: Value = api.get("/v1/templates").await?;
    Ok(console
        .views()
        .render(
            "environment_new.html",
            Some(&viewer),
            // `files` is in the answer for operators only.
            context! { title => "New environment", nav => "new", templates => data(&list["items"]), files => data(&list["files"]) },
        )
        .into_response())
}

/// What the form holds: the user's input after a refused request, or
/// nothing yet.
#[derive(Debug, Default)]
struct Attempt {
    values: Option<HashMap<String, String>>,
    problem: Option<ApiProblem>,
}

impl Attempt {
    fn value(&self, key: &str) -> Option<&str> {
        self.values.as_ref()?.get(key).map(String::as_str)
    }

    /// The API's message about the request's own field `field` (`name`):
    /// where a 422 points, or a 409's detail when it starts with the field
    /// (`name: alice already has an environment named …`).
    fn message(&self, field: &str) -> Option<String> {
        let problem = self.problem.as_ref()?;
        problem
            .for_field(&format!("/{field}"))
            .map(str::to_owned)
            .or_else(|| {
                problem
                    .errors
                    .is_empty()
                    .then(|| problem.detail.strip_prefix(&format!("{field}: ")))
                    .flatten()
                    .map(str::to_owned)
            })
    }
}

async fn template_view(api: &Api<'_>, name: &str) -> Result<Value, PageError> {
    Ok(api.get(&format!("/v1/templates/{}", segment(name))).await?)
}

fn render_form(
    console: &Console,
    viewer: &Viewer,
    template: &Value,
    attempt: &Attempt,
    key: &str,
    status: StatusCode,
) -> Response {
    let (fields, fixed) =
        parameter_form::fields(template, attempt.values.as_ref(), attempt.problem.as_ref());
    let clusters: Vec<String> = template["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    // The API's default cluster is `default`: preselected when there is one.
    let cluster = match attempt.value("cluster") {
        Some(sent) => sent.to_owned(),
        None if clusters.iter().any(|c| c == "default") => "default".to_owned(),
        None => clusters.first().cloned().unwrap_or_default(),
    };
    let problem = attempt.problem.as_ref();
    let page = context! {
        title => format!("New {} environment", template["name"].as_str().unwrap_or_default()),
        nav => "new",
        template => data(template),
        fields => data(&fields),
        fixed => data(&fixed),
        clusters,
        request => context! {
            name => attempt.value("name").unwrap_or_default(),
            ttl => attempt.value("ttl").unwrap_or_else(|| template["ttl"]["default"].as_str().unwrap_or_default()),
            cluster,
            key,
        },
        errors => context! {
            name => attempt.message("name"),
            ttl => attempt.message("ttl"),
            cluster => attempt.message("cluster"),
        },
        problem => problem.map(|p| context! { detail => p.detail.clone(), status => p.status }),
        limit => problem.and_then(|p| p.limit.as_ref()).map(data),
    };
    let html = console
        .views()
        .render("environment_form.html", Some(viewer), page);
    (status, html).into_response()
}

async fn form(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let template = template_view(&api, &name).await?;
    let key = request_key()?;
    Ok(render_form(
        &console,
        &viewer,
        &template,
        &Attempt::default(),
        &key,
        StatusCode::OK,
    ))
}

/// The request's body from the form: the template's parameters as their
/// declared types, and `ttl`/`cluster` only when given.
fn request_body(template: &Value, values: &HashMap<String, String>) -> Value {
    let mut body = json!({
        "name": values.get("name").map_or("", |name| name.trim()),
        "template": template["name"],
        "parameters": parameter_values::parameters(template, values),
    });
    for field in ["ttl", "cluster"] {
        if let Some(value) = values
            .get(field)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            body[field] = json!(value);
        }
    }
    body
}

async fn submit(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let values = last_values(&pairs);
    viewer.check_csrf(values.get("csrf").map_or("", String::as_str))?;
    let api = Api::new(&console, &viewer, Some(peer));
    let template = template_view(&api, &name).await?;
    let body = request_body(&template, &values);
    // The key rides in the form, so a reload or a second click sends the
    // same one and gets the first answer back.
    let key = match values.get("request_key").filter(|key| !key.is_empty()) {
        Some(key) => key.clone(),
        None => request_key()?,
    };
    let answer = api
        .send_idempotent::<Value>(Method::POST, "/v1/environments", body, &key)
        .await;
    match answer {
        Ok(accepted) => {
            let id = accepted["environment"]["id"]
                .as_str()
                .and_then(|id| id.parse::<uuid::Uuid>().ok())
                .ok_or_else(|| {
                    PageError::Api(ApiProblem {
                        status: 500,
                        detail: "the API's answer named no environment; the server's log says more"
                            .to_owned(),
                        ..ApiProblem::default()
                    })
                })?;
            Ok(Redirect::to(&format!("/environments/{id}")).into_response())
        }
        // What the user can fix (or must know) is shown on the form.
        Err(mut problem) if matches!(problem.status, 403 | 409 | 422 | 429) => {
            let status =
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let mut key = key;
            // The form went back (the browser's Back button) after its
            // request was done, and was changed: a new request needs a new key.
            if problem.detail.starts_with("Idempotency-Key") {
                key = request_key()?;
                problem.detail = "this form was sent before with other values, and that request was done (see My environments); to ask for another environment, check the fields and send the form again".to_owned();
            }
            let attempt = Attempt {
                values: Some(values),
                problem: Some(problem),
            };
            Ok(render_form(
                &console, &viewer, &template, &attempt, &key, status,
            ))
        }
        Err(problem) => Err(problem.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_on_the_name_is_shown_at_the_name() {
        let attempt = Attempt {
            values: None,
            problem: Some(ApiProblem {
                status: 409,
                detail: "name: alice already has an environment named `lab`".to_owned(),
                ..ApiProblem::default()
            }),
        };
        assert_eq!(
            attempt.message("name").as_deref(),
            Some("alice already has an environment named `lab`")
        );
        assert_eq!(attempt.message("ttl"), None);
    }
}
