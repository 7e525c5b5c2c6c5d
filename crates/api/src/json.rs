//! A JSON body extractor whose rejections are problems, not plain text.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::Problem;

/// A JSON body that may be left out (empty means `T::default()`). Malformed
/// JSON, a wrong content type, an unknown field or an oversized body become
/// problem+json answers that say what was wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|err| {
                if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::too_large(format!(
                        "the body may be at most {} bytes",
                        crate::MAX_BODY_BYTES
                    ))
                } else {
                    Problem::bad_request(err.body_text())
                }
            })?;
        optional_json(&headers, &body).map(Self)
    }
}

/// Parses a body that may be left out: empty means `T::default()`; anything
/// else must be JSON.
fn optional_json<T: DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<T, Problem> {
    // An empty body and JSON `null` both mean "nothing to say".
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        return Ok(T::default());
    }
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(Problem::unsupported_media_type(
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    serde_json::from_slice(body).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => Problem::invalid("body", &err.to_string()),
        _ => Problem::bad_request(format!("the body is not valid JSON: {err}")),
    })
}

/// Like `axum::extract::Path`, but a malformed path parameter is a problem
/// that names it.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|err| Problem::invalid("path", &err.body_text()))
    }
}
