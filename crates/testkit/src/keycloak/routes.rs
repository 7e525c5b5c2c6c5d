//! Dispatch by path (realm, token endpoint, admin API and its bearer check)
//! and the response shapes every route shares.

use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin::admin;
use super::server::Store;
use super::token::token;
use super::{ADMIN_CLIENT_ID, REALM};

/// A JSON error body as Keycloak sends one.
pub(super) fn error(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A JSON 200 as the admin API sends one.
pub(super) fn ok_json(body: Value) -> Response {
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "application/json;charset=UTF-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Answers one request the faults let through.
pub(super) fn route(
    store: &mut Store,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["realms", realm, rest @ ..] => {
            if *realm != REALM {
                return error(
                    StatusCode::NOT_FOUND,
                    json!({ "error": "Realm does not exist" }),
                );
            }
            match (method, rest) {
                (&Method::POST, ["protocol", "openid-connect", "token"]) => {
                    token(store, headers, body)
                }
                _ => error(
                    StatusCode::NOT_FOUND,
                    json!({ "error": "HTTP 404 Not Found" }),
                ),
            }
        }
        ["admin", "realms", realm, rest @ ..] => {
            let caller = bearer(headers).and_then(|token| store.tokens.get(token));
            match caller {
                None => error(
                    StatusCode::UNAUTHORIZED,
                    json!({ "error": "HTTP 401 Unauthorized" }),
                ),
                Some(caller) if caller != ADMIN_CLIENT_ID => error(
                    StatusCode::FORBIDDEN,
                    json!({ "error": "HTTP 403 Forbidden" }),
                ),
                Some(_) if *realm != REALM => error(
                    StatusCode::NOT_FOUND,
                    json!({ "error": "Realm not found." }),
                ),
                Some(_) => admin(store, method, rest, query, body),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            json!({ "error": "HTTP 404 Not Found" }),
        ),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Keycloak's answer to a body that is not a JSON object.
pub(super) fn cannot_parse() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        json!({ "error": "unknown_error", "error_description": "Cannot parse the JSON" }),
    )
}
