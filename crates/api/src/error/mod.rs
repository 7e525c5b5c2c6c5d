//! Every error the API returns is `application/problem+json` (RFC 9457) with a
//! `type` that resolves to a page about it (`/docs/problems/<slug>`, see
//! [`crate::problems`]), a human `detail` that names the field and the rule,
//! for a 422 an `errors` list that says where each rule was broken, and no
//! internals: database errors are logged here and answered generically.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use hubwright_state::policy::Breach;

use crate::problems::{self, ProblemKind};

mod document;

pub use document::{FieldError, ProblemDocument, json_pointer};

/// A problem to report to the caller.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    kind: &'static ProblemKind,
    detail: String,
    errors: Vec<FieldError>,
    /// Seconds to wait before trying again (`Retry-After`), for a 429.
    retry_after: Option<u64>,
    /// The limit a `limit-exceeded` problem is about.
    limit: Option<Box<Breach>>,
}

/// Headers a handler reads: `Problem::invalid` with one of these names points
/// at the header, not the body.
const HEADERS: &[&str] = &[
    "Idempotency-Key",
    "Last-Event-ID",
    "Accept",
    "Content-Type",
    "Authorization",
];

impl Problem {
    fn new(kind: &'static ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(kind.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            limit: None,
        }
    }

    /// 403: one more environment (or a longer life, or another extension)
    /// would go past a limit of the policy file; the document names it.
    pub fn limit_exceeded(breach: Breach) -> Self {
        let mut problem = Self::new(&problems::LIMIT_EXCEEDED, breach.to_string());
        problem.limit = Some(Box::new(breach));
        problem
    }

    /// 403: the policy file does not let the caller use this template or
    /// profile; `reason` names the rule.
    pub fn template_forbidden(reason: impl Into<String>) -> Self {
        Self::new(&problems::TEMPLATE_FORBIDDEN, reason)
    }

    /// 400: the request could not be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(&problems::BAD_REQUEST, detail)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(&problems::UNAUTHORIZED, detail)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(&problems::FORBIDDEN, detail)
    }

    /// 404: nothing there (or nothing the caller may see).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(&problems::NOT_FOUND, detail)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(
            &problems::METHOD_NOT_ALLOWED,
            "this path does not accept that method",
        )
    }

    /// 409: the resource is in a state that does not allow this.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(&problems::CONFLICT, detail)
    }

    /// 413: the body is larger than the API accepts.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(&problems::PAYLOAD_TOO_LARGE, detail)
    }

    /// 415: not JSON.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(&problems::UNSUPPORTED_MEDIA_TYPE, detail)
    }

    /// 422: readable, but `field` breaks `rule`. `field` is a dotted path
    /// into the body (`parameters.cpu_limit` points at
    /// `/parameters/cpu_limit`; `body` at the whole body), or the name of a
    /// header the API reads (`Idempotency-Key`). Query and path parameters
    /// have [`Problem::invalid_parameter`].
    pub fn invalid(field: &str, rule: &str) -> Self {
        if let Some(header) = HEADERS.iter().find(|h| h.eq_ignore_ascii_case(field)) {
            return Self::invalid_header(header, rule);
        }
        match field {
            "body" => Self::invalid_at(field, json_pointer([]), rule),
            // What axum's own query and path extractors say; the parameter's
            // name is at the start of the rule when they know it.
            "query" | "path" => {
                let rule = rule
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(rule);
                if let Some(name) = unknown_field(rule) {
                    return Self::invalid_parameter(name, rule);
                }
                match rule.split_once(": ") {
                    Some((name, rest)) if is_parameter_name(name) => {
                        Self::invalid_parameter(name, rest)
                    }
                    _ => Self::invalid_parameter(field, rule),
                }
            }
            _ => Self::invalid_at(field, json_pointer(field.split('.')), rule),
        }
    }

    /// 422: `rule` is broken at `pointer` (RFC 6901) in the body; the detail
    /// calls the place `field`.
    pub fn invalid_at(field: &str, pointer: String, rule: &str) -> Self {
        Self::invalid_with(field, rule, FieldError::at_pointer(pointer, rule))
    }

    /// 422: query or path parameter `name` breaks `rule`.
    pub fn invalid_parameter(name: &str, rule: &str) -> Self {
        Self::invalid_with(name, rule, FieldError::at_parameter(name, rule))
    }

    /// 422: request header `name` breaks `rule`.
    pub fn invalid_header(name: &str, rule: &str) -> Self {
        Self::invalid_with(name, rule, FieldError::at_header(name, rule))
    }

    fn invalid_with(field: &str, rule: &str, error: FieldError) -> Self {
        let mut problem = Self::new(&problems::INVALID_REQUEST, format!("{field}: {rule}"));
        problem.errors.push(error);
        problem
    }

    /// 500: a bug in the API itself (a handler panicked). Says nothing more.
    pub fn internal() -> Self {
        Self::new(
            &problems::INTERNAL,
            "the API failed on this request; it has been logged",
        )
    }

    /// 503: the database (or another dependency) is failing; details go to the log.
    pub fn unavailable() -> Self {
        Self::new(
            &problems::UNAVAILABLE,
            "a dependency of the API is failing; try again shortly",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What was wrong, naming the field and the rule.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Where each broken rule is (a 422's `errors`).
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// 429: too many requests; try again after `wait` (sent as
    /// `Retry-After`, in whole seconds, at least 1).
    pub fn too_many_requests(detail: impl Into<String>, wait: std::time::Duration) -> Self {
        let mut problem = Self::new(&problems::TOO_MANY_REQUESTS, detail);
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        problem.retry_after = Some(seconds.max(1));
        problem
    }

    /// The seconds a 429 asks the caller to wait.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// 408: the request's body did not arrive in time.
    pub fn request_timeout(detail: impl Into<String>) -> Self {
        Self::new(&problems::REQUEST_TIMEOUT, detail)
    }

    /// 429: no more event streams for this caller (or this server) now;
    /// the handler adds `Retry-After`.
    pub fn too_many_streams(detail: impl Into<String>) -> Self {
        Self::new(&problems::TOO_MANY_STREAMS, detail)
    }
}

/// The field serde's `deny_unknown_fields` refused: `unknown field `x`, …`.
pub(crate) fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
}

/// Whether `name` can be a query or path parameter's name (so it is not the
/// start of a sentence).
fn is_parameter_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || b == b'_'
                || b == b'-'
                || b == b'.'
                || b == b'['
                || b == b']'
        })
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemDocument {
            kind: self.kind.type_url(),
            title: self.kind.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
            limit: self.limit.map(|breach| *breach),
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
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
            Error::LimitExceeded(breach) => Self::limit_exceeded(*breach),
            Error::IllegalTransition { .. } | Error::LeaseLost { .. } => {
                Self::conflict(err.to_string())
            }
            Error::Invalid { field, rule } => match field.strip_prefix("parameters.") {
                // A parameter's name is the template's and may hold dots.
                Some(name) => Self::invalid_at(&field, json_pointer(["parameters", name]), &rule),
                None => Self::invalid(&field, &rule),
            },
            // The extractors refuse what Postgres cannot store first; this is
            // the last line: input, so a 422 and no ERROR line.
            Error::Unstorable(why) => {
                tracing::info!(%why, "the database refused a value of the request");
                Self::invalid_at("request", json_pointer([]), crate::input::UNSTORABLE)
            }
            Error::Database(_) | Error::Migrate(_) | Error::Workflow(_) => {
                tracing::error!(error = %err, "request failed on a dependency");
                Self::unavailable()
            }
        }
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dotted_field_becomes_a_json_pointer_with_escapes() {
        assert_eq!(
            json_pointer(["parameters", "cpu_limit"]),
            "/parameters/cpu_limit"
        );
        assert_eq!(json_pointer(["a/b", "c~d"]), "/a~1b/c~0d");
        assert_eq!(json_pointer([]), "");
        let problem = Problem::invalid("parameters.cpu_limit", "must be at most 16");
        assert_eq!(
            problem.errors(),
            [FieldError::at_pointer(
                "/parameters/cpu_limit".to_owned(),
                "must be at most 16"
            )]
        );
    }

    #[test]
    fn headers_and_axum_query_messages_are_not_body_pointers() {
        let header = Problem::invalid("idempotency-key", "too long");
        assert_eq!(
            header.errors()[0].header.as_deref(),
            Some("Idempotency-Key")
        );
        let query = Problem::invalid(
            "query",
            "Failed to deserialize query string: limit: invalid digit found in string",
        );
        assert_eq!(
            query.errors(),
            [FieldError::at_parameter(
                "limit",
                "invalid digit found in string"
            )]
        );
        let unknown = Problem::invalid(
            "query",
            "Failed to deserialize query string: unknown field `x`, expected `limit`",
        );
        assert_eq!(unknown.errors()[0].parameter.as_deref(), Some("x"));
    }

    #[test]
    fn a_state_error_on_a_dotted_parameter_name_keeps_it_one_segment() {
        let problem = Problem::from(hubwright_state::Error::Invalid {
            field: "parameters.a.b".to_owned(),
            rule: "is required".to_owned(),
        });
        assert_eq!(
            problem.errors()[0].pointer.as_deref(),
            Some("/parameters/a.b")
        );
    }
}
