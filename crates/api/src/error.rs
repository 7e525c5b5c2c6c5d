//! Every error the API returns is `application/problem+json` (RFC 9457) with a
//! stable `type`, a human `detail` that names the field and the rule, and no
//! internals: database errors are logged here and answered generically.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem to report to the caller.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
}

/// The problem+json document (RFC 9457) every error answer carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemDocument {
    /// Stable identifier of the kind of problem, e.g. `urn:hubwright:problem:invalid-request`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong: names the field and the rule.
    pub detail: String,
}

impl Problem {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
        }
    }

    /// 400: the request could not be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 401: no valid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404: nothing there (or nothing the caller may see).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this path does not accept that method",
        )
    }

    /// 409: the resource is in a state that does not allow this.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 413: the body is larger than the API accepts.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            detail,
        )
    }

    /// 415: not JSON.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    /// 422: readable, but a field breaks a rule.
    pub fn invalid(field: &str, rule: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "Invalid request",
            format!("{field}: {rule}"),
        )
    }

    /// 500: a bug in the API itself (a handler panicked). Says nothing more.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the API failed on this request; it has been logged",
        )
    }

    /// 503: the database (or another dependency) is failing; details go to the log.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "a dependency of the API is failing; try again shortly",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemDocument {
            kind: format!("urn:hubwright:problem:{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<hubwright_state::Error> for Problem {
    fn from(err: hubwright_state::Error) -> Self {
        use hubwright_state::Error;
        match err {
            Error::RunNotFound(id) => Self::not_found(format!("no run {id}")),
            Error::EnvironmentNotFound(id) => Self::not_found(format!("no environment {id}")),
            Error::TokenNotFound(id) => Self::not_found(format!("no token {id}")),
            Error::Conflict { field, rule } => Self::conflict(format!("{field}: {rule}")),
            Error::IllegalTransition { .. } | Error::LeaseLost { .. } => {
                Self::conflict(err.to_string())
            }
            Error::Invalid { field, rule } => Self::invalid(&field, &rule),
            Error::Database(_) | Error::Migrate(_) | Error::Workflow(_) => {
                tracing::error!(error = %err, "request failed on a dependency");
                Self::unavailable()
            }
        }
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, Problem>;
