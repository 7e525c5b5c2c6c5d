//! Extractors whose rejections are problems that say where the request was
//! wrong: a JSON body (a JSON Pointer to the bad value), a query string and
//! path parameters (the parameter's name).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{Problem, json_pointer, unknown_field};

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
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let segments = path_segments(err.path());
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // serde_json appends the position; the pointer says it better.
                let text = inner.to_string();
                let rule = text
                    .rsplit_once(" at line ")
                    .map_or(text.as_str(), |(rule, _)| rule);
                invalid_body(segments, rule)
            }
            _ => Problem::bad_request(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    // Characters after the document make it invalid JSON too.
    deserializer
        .end()
        .map_err(|err| Problem::bad_request(format!("the body is not valid JSON: {err}")))?;
    crate::input::check_json(body)?;
    Ok(value)
}

/// The segments of a path serde walked, as JSON Pointer segments.
fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect()
}

/// A 422 at the body value `segments` lead to; an unknown field points at
/// itself (serde_path_to_error's path already ends with it).
fn invalid_body(mut segments: Vec<String>, rule: &str) -> Problem {
    if let Some(name) = unknown_field(rule)
        && segments.last().map(String::as_str) != Some(name)
    {
        segments.push(name.to_owned());
    }
    let field = if segments.is_empty() {
        "body".to_owned()
    } else {
        segments.join(".")
    };
    Problem::invalid_at(
        &field,
        json_pointer(segments.iter().map(String::as_str)),
        rule,
    )
}

/// Like `axum::extract::Query`, but a value that does not fit is a 422 that
/// names the parameter (and an unknown parameter is named too).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        crate::input::check_query(query)?;
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Self)
            .map_err(|err| {
                let name = path_segments(err.path()).join(".");
                let rule = err.into_inner().to_string();
                match unknown_field(&rule) {
                    Some(unknown) => Problem::invalid_parameter(
                        unknown,
                        &format!("is not a parameter of this operation ({rule})"),
                    ),
                    None if !name.is_empty() => Problem::invalid_parameter(&name, &rule),
                    // A missing required parameter has no path; serde names it.
                    None => {
                        Problem::invalid_parameter(missing_field(&rule).unwrap_or("query"), &rule)
                    }
                }
            })
    }
}

/// The field serde found missing: `missing field `x``.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
}

/// Like `axum::extract::Path`, but a malformed path parameter is a problem
/// that names it.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(params) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            crate::input::check_path(params.iter())?;
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(err) => {
                use axum::extract::path::ErrorKind;
                use axum::extract::rejection::PathRejection;
                if let PathRejection::FailedToDeserializePathParams(inner) = &err
                    && let ErrorKind::InvalidUtf8InPathParam { key } = inner.kind()
                {
                    return Err(Problem::invalid_parameter(key, crate::input::UTF8));
                }
                // The routes here have one parameter each; name it when so.
                let names: Vec<String> =
                    axum::extract::RawPathParams::from_request_parts(parts, state)
                        .await
                        .map(|params| params.iter().map(|(key, _)| key.to_owned()).collect())
                        .unwrap_or_default();
                let name = match names.as_slice() {
                    [one] => one.as_str(),
                    _ => "path",
                };
                Err(Problem::invalid_parameter(name, &err.body_text()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldError;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        #[serde(default)]
        name: String,
        #[serde(default)]
        inner: Inner,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        count: u32,
    }

    fn parse(body: &str) -> Result<Body, Problem> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        optional_json(&headers, body.as_bytes())
    }

    #[test]
    fn a_wrong_value_deep_in_the_body_is_pointed_at() {
        let err = parse(r#"{"inner": {"count": "x"}}"#).unwrap_err();
        assert_eq!(err.errors()[0].pointer.as_deref(), Some("/inner/count"));
        assert!(err.errors()[0].rule.starts_with("invalid type"), "{err:?}");
        assert!(!err.errors()[0].rule.contains("line"), "{err:?}");
    }

    #[test]
    fn an_unknown_field_is_pointed_at_itself() {
        let err = parse(r#"{"inner": {"cuont": 1}}"#).unwrap_err();
        assert_eq!(err.errors()[0].pointer.as_deref(), Some("/inner/cuont"));
        let top = parse(r#"{"nmae": "x"}"#).unwrap_err();
        assert_eq!(top.errors()[0].pointer.as_deref(), Some("/nmae"));
    }

    #[test]
    fn a_body_of_the_wrong_shape_points_at_the_whole_body() {
        let err = parse(r#""text""#).unwrap_err();
        assert_eq!(
            err.errors(),
            [FieldError::at_pointer(String::new(), &err.errors()[0].rule)]
        );
        assert_eq!(parse("{} x").unwrap_err().status(), 400);
    }
}
