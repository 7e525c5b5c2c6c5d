//! The console's pages, and how a page that cannot be shown is answered.

mod approvals;
mod audit;
mod environment;
mod environment_events;
mod environments;
mod new_environment;
mod parameter_form;
mod parameter_values;
mod policy;
mod pools;
mod queue;
mod run;
mod runs;
mod tokens;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::context;

use crate::Console;
use crate::api::ApiProblem;
use crate::render::views;

/// Every page route.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/environments") }))
        .merge(environments::routes())
        .merge(new_environment::routes())
        .merge(environment::routes())
        .merge(runs::routes())
        .merge(run::routes())
        .merge(queue::routes())
        .merge(pools::routes())
        .merge(approvals::routes())
        .merge(tokens::routes())
        .merge(policy::routes())
        .merge(audit::routes())
}

/// A request no console route took: the API's, unless a browser asked for
/// a page outside the API's paths.
pub async fn not_a_page(api: Router, request: axum::extract::Request) -> Response {
    use tower::ServiceExt;
    let path = request.uri().path();
    let api_path = ["/v1/", "/docs", "/metrics", "/healthz", "/readyz"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    let wants_page = request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_page && !api_path && request.method() == axum::http::Method::GET {
        let mut response =
            PageError::NotFound(format!("there is no page at {path}")).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_SECURITY_POLICY,
            axum::http::HeaderValue::from_static(crate::render::CONTENT_SECURITY_POLICY),
        );
        return response;
    }
    match api.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A fresh key for one form: sending it twice does the request once.
pub(crate) fn request_key() -> Result<String, PageError> {
    hubwright_state::store::console::new_secret()
        .map_err(|_| PageError::Unavailable("the system has no randomness".to_owned()))
}

/// Why a page is not shown; each answers an HTML page with its status.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404: also what a developer sees of another's environment.
    #[error("{0}")]
    NotFound(String),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
    /// What the API answered.
    #[error("{}", .0.detail)]
    Api(ApiProblem),
}

impl From<ApiProblem> for PageError {
    fn from(problem: ApiProblem) -> Self {
        Self::Api(problem)
    }
}

impl From<hubwright_api::Problem> for PageError {
    fn from(problem: hubwright_api::Problem) -> Self {
        Self::Api(ApiProblem {
            status: problem.status().as_u16(),
            title: problem
                .status()
                .canonical_reason()
                .unwrap_or("Error")
                .to_owned(),
            detail: problem.detail().to_owned(),
            ..ApiProblem::default()
        })
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, detail) = match self {
            Self::BadRequest(detail) => (StatusCode::BAD_REQUEST, detail),
            Self::Forbidden(detail) => (StatusCode::FORBIDDEN, detail),
            Self::NotFound(detail) => (StatusCode::NOT_FOUND, detail),
            Self::Unavailable(detail) => (StatusCode::SERVICE_UNAVAILABLE, detail),
            Self::Api(problem) => (
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                problem.detail,
            ),
        };
        // A session that ended between pages: sign in again, then come back.
        if status == StatusCode::UNAUTHORIZED {
            return Redirect::to("/sign-in").into_response();
        }
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
            s if s.is_client_error() => "Cannot do that",
            _ => "Something went wrong",
        };
        let html = views().render(
            "problem.html",
            None,
            context! { title, status => status.as_u16(), detail },
        );
        (status, html).into_response()
    }
}
