//! The console's calls to the API: each a request to the API's own router,
//! in-process, on behalf of the signed-in user (their [`ConsoleUser`] in the
//! request's extensions, where a bearer token would otherwise be). The
//! answers are the API's JSON, and its problem documents become the console's
//! error messages, so a form shows exactly the rule the API states.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use hubwright_api::auth::ConsoleUser;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

use crate::Console;
use crate::session::Viewer;

/// Answers are read up to this size; the API's pages are far smaller.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// A problem document the API answered with, as the console shows it.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ApiProblem {
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// Its kind, in a few words.
    #[serde(default)]
    pub title: String,
    /// What was wrong, naming the field and the rule.
    #[serde(default)]
    pub detail: String,
    /// Each rule a request broke, and where.
    #[serde(default)]
    pub errors: Vec<FieldProblem>,
    /// For `limit-exceeded`: the limit, its value, the current use, what the
    /// request asked for and the rule of the policy file that set it.
    #[serde(default)]
    pub limit: Option<Value>,
}

/// One rule a request broke.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldProblem {
    /// A JSON pointer into the body (`/parameters/cpu_limit`).
    #[serde(default)]
    pub pointer: Option<String>,
    /// A query parameter.
    #[serde(default)]
    pub parameter: Option<String>,
    /// What was wrong with it (the API calls it the `rule`).
    #[serde(default, alias = "rule")]
    pub detail: String,
}

impl ApiProblem {
    /// The message for the field at `pointer` (`/ttl`), if the API named it.
    pub fn for_field(&self, pointer: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.pointer.as_deref() == Some(pointer))
            .map(|e| e.detail.as_str())
    }
}

/// One caller's view of the API: the user and the address their request
/// came from (the API's per-address limits count it).
#[derive(Debug, Clone)]
pub struct Api<'a> {
    console: &'a Console,
    user: &'a ConsoleUser,
    peer: Option<SocketAddr>,
}

impl<'a> Api<'a> {
    /// Calls made for `viewer`, whose request came from `peer`.
    pub fn new(console: &'a Console, viewer: &'a Viewer, peer: Option<SocketAddr>) -> Self {
        Self {
            console,
            user: &viewer.user,
            peer,
        }
    }

    /// `GET path` (with its query), read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiProblem> {
        self.call(Method::GET, path, None).await
    }

    /// `method path` with a JSON `body`, read as `T`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ApiProblem> {
        self.call(method, path, body).await
    }

    /// `method path` with a JSON `body` and an `Idempotency-Key`: sending the
    /// same form twice (a reload, a double click) gets the first answer again
    /// instead of doing it twice.
    pub async fn send_idempotent<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Value,
        key: &str,
    ) -> Result<T, ApiProblem> {
        let mut request = self.request(method.clone(), path, Some(body), None)?;
        // A key that is no header value is sent as none: the API's answer
        // is then the same as without one.
        if let Ok(value) = axum::http::HeaderValue::from_str(key) {
            request.headers_mut().insert("idempotency-key", value);
        }
        self.answer(method, path, request).await
    }

    /// `path` as a streaming answer (`text/event-stream`), passed through.
    pub async fn stream(&self, path: &str) -> axum::response::Response {
        let request = match self.request(Method::GET, path, None, Some("text/event-stream")) {
            Ok(request) => request,
            Err(problem) => return crate::pages::PageError::from(problem).into_response(),
        };
        match self.console.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ApiProblem> {
        let request = self.request(method.clone(), path, body, None)?;
        self.answer(method, path, request).await
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        request: Request<Body>,
    ) -> Result<T, ApiProblem> {
        let response = match self.console.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = read_answer(response, &method, path).await?;
        if status.is_success() {
            // 204 No Content reads as JSON null.
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            serde_json::from_slice(bytes).map_err(|err| {
                internal(format!(
                    "the API's answer to {method} {path} did not read: {err}"
                ))
            })
        } else {
            Err(problem_of(status, &bytes))
        }
    }

    /// `GET path` as a download: the API's answer passed through as it
    /// streams (`accept` names the media type wanted), or its problem.
    pub async fn download(
        &self,
        path: &str,
        accept: &str,
    ) -> Result<axum::response::Response, ApiProblem> {
        let request = self.request(Method::GET, path, None, Some(accept))?;
        let response = match self.console.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = read_answer(response, &Method::GET, path).await?;
        Err(problem_of(status, &bytes))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        accept: Option<&str>,
    ) -> Result<Request<Body>, ApiProblem> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, accept.unwrap_or("application/json"));
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |value| Body::from(value.to_string()));
        let mut request = builder.body(body).map_err(|err| ApiProblem {
            status: StatusCode::NOT_FOUND.as_u16(),
            title: "Not found".to_owned(),
            detail: format!("no such page: {err}"),
            ..ApiProblem::default()
        })?;
        request.extensions_mut().insert(self.user.clone());
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        Ok(request)
    }
}

/// The whole body of an answer, up to [`MAX_ANSWER`].
async fn read_answer(
    response: axum::response::Response,
    method: &Method,
    path: &str,
) -> Result<axum::body::Bytes, ApiProblem> {
    Ok(
        http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|err| {
                internal(format!(
                    "reading the API's answer to {method} {path}: {err}"
                ))
            })?
            .to_bytes(),
    )
}

/// The problem document of a refusal with `status`.
fn problem_of(status: StatusCode, bytes: &[u8]) -> ApiProblem {
    let mut problem: ApiProblem = serde_json::from_slice(bytes).unwrap_or_default();
    problem.status = status.as_u16();
    if problem.detail.is_empty() {
        problem.detail = status.canonical_reason().unwrap_or("error").to_owned();
    }
    problem
}

fn internal(detail: String) -> ApiProblem {
    tracing::error!(%detail, "console: calling the API");
    ApiProblem {
        status: StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
        title: "Internal error".to_owned(),
        detail: "the console could not read the API's answer; the server's log says why".to_owned(),
        ..ApiProblem::default()
    }
}

/// `text` as one path segment: a name with `/`, `?` or `%` stays one segment.
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::ApiProblem;

    #[test]
    fn a_fields_rule_is_read_from_the_apis_problem_document() {
        let problem: ApiProblem = serde_json::from_str(
            r#"{"title": "Invalid request", "detail": "comment: must be at most 2000 characters",
                "errors": [{"pointer": "/comment", "rule": "must be at most 2000 characters"}]}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            problem.for_field("/comment"),
            Some("must be at most 2000 characters")
        );
    }
}
