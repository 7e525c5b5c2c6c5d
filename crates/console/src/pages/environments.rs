//! Environments: the list (a developer's own; operators filter all of
//! them), extend, and delete with a confirmation page.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use crate::Console;
use crate::api::{Api, segment};
use crate::pages::PageError;
use crate::render::data;
use crate::session::Viewer;

/// An environment this close to its expiry is shown with a warning.
const EXPIRY_WARNING_SECS: i64 = 3600;

/// The environment routes.
pub fn routes() -> axum::Router<Console> {
    Router::new()
        .route("/environments", get(list))
        .route("/environments/{id}/extend", post(extend))
        .route(
            "/environments/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

/// The list's filters, as the API takes them.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
struct Filters {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    phase: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    owner: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    template: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    expiring_within: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

/// Adds what the pages show beside the API's fields: seconds left and
/// whether the expiry is near.
pub(crate) fn annotate(mut environment: JsonValue, now: DateTime<Utc>) -> JsonValue {
    let left = environment["expires_at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| (at.with_timezone(&Utc) - now).num_seconds());
    if let (Some(left), Some(object)) = (left, environment.as_object_mut()) {
        let live = !matches!(object["phase"].as_str(), Some("deleted" | "tearing_down"));
        object.insert("seconds_left".to_owned(), json!(left));
        object.insert(
            "expiring_soon".to_owned(),
            json!(live && left < EXPIRY_WARNING_SECS),
        );
    }
    environment
}

async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(filters): Query<Filters>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let query = serde_urlencoded::to_string(&filters).unwrap_or_default();
    let page: JsonValue = match api.get(&format!("/v1/environments?limit=50&{query}")).await {
        Ok(page) => page,
        // A filter the API refused is shown with the list empty.
        Err(problem) if problem.status == 422 => {
            json!({ "items": [], "filter_error": problem.detail })
        }
        Err(problem) => return Err(problem.into()),
    };
    let now = console.app.clock.now();
    let items: Vec<JsonValue> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .cloned()
        .map(|environment| annotate(environment, now))
        .collect();
    let next = page["next_cursor"].as_str().map(|cursor| {
        let next = Filters {
            cursor: cursor.to_owned(),
            ..filters.clone()
        };
        serde_urlencoded::to_string(&next).unwrap_or_default()
    });
    let filtered = !(filters.phase.is_empty()
        && filters.owner.is_empty()
        && filters.template.is_empty()
        && filters.cluster.is_empty()
        && filters.expiring_within.is_empty());
    Ok(console
        .views()
        .render(
            "environments.html",
            Some(&viewer),
            context! {
                title => if viewer.has(hubwright_state::model::Role::Operator) { "Environments" } else { "My environments" },
                nav => "environments",
                items => data(&items),
                filters => data(&filters),
                filtered,
                filter_error => page["filter_error"].as_str(),
                next,
                phases => ["requested", "provisioning", "ready", "failed", "cancelled", "tearing_down"],
            },
        )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct ExtendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ttl: String,
    /// Where to go back to.
    #[serde(default)]
    back: String,
}

async fn extend(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(form): Form<ExtendForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let api = Api::new(&console, &viewer, Some(peer));
    let ttl = match form.ttl.trim() {
        // The list's button extends by the template's default TTL.
        "" => default_ttl(&api, &id).await?,
        ttl => ttl.to_owned(),
    };
    let path = format!("/v1/environments/{}/extend", segment(&id));
    let page = format!("/environments/{id}");
    match api
        .send::<JsonValue>(Method::POST, &path, Some(json!({ "ttl": ttl })))
        .await
    {
        Ok(_) => {
            let back = crate::session::local_path(&form.back).unwrap_or("/environments");
            Ok(Redirect::to(back).into_response())
        }
        // From the environment's page: the refusal is shown at its field.
        Err(problem) if form.back == page && matches!(problem.status, 403 | 409 | 422) => {
            let refused = super::environment::RefusedExtension { ttl, problem };
            super::environment::page(&console, &viewer, peer, &id, Some(refused)).await
        }
        Err(problem) => Err(problem.into()),
    }
}

/// The default TTL of the environment's template.
async fn default_ttl(api: &Api<'_>, id: &str) -> Result<String, PageError> {
    let environment: JsonValue = api
        .get(&format!("/v1/environments/{}", segment(id)))
        .await?;
    let template = environment["template"].as_str().unwrap_or_default();
    let template: JsonValue = api
        .get(&format!("/v1/templates/{}", segment(template)))
        .await?;
    Ok(template["ttl"]["default"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

async fn confirm_delete(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let environment: JsonValue = api
        .get(&format!("/v1/environments/{}", segment(&id)))
        .await?;
    Ok(console
        .views()
        .render(
            "environment_delete.html",
            Some(&viewer),
            context! { title => "Delete environment", nav => "environments", environment => data(&environment) },
        )
        .into_response())
}

async fn delete(
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
        &format!("/v1/environments/{}", segment(&id)),
        None,
    )
    .await?;
    Ok(Redirect::to("/environments").into_response())
}
