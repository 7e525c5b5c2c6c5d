//! The token endpoint, as Keycloak answers the client credentials grant.

use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::clients::{fresh_id, fresh_secret};
use super::form::{base64_decode, form_decode, parse_form};
use super::routes::error;
use super::server::Store;

/// The token endpoint: the client credentials grant only.
pub(super) fn token(store: &mut Store, headers: &HeaderMap, body: &[u8]) -> Response {
    let form = parse_form(body);
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64_decode(v.trim()))
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| {
            let (id, secret) = v.split_once(':')?;
            // Keycloak reads Basic credentials as RFC 6749 §2.3.1 says: form-encoded.
            Some((form_decode(id), form_decode(secret)))
        });
    let credentials = basic.or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ))
    });
    let Some(grant_type) = form.get("grant_type") else {
        return error(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_request", "error_description": "Missing form parameter: grant_type" }),
        );
    };
    let invalid = |code: &str| {
        error(
            StatusCode::UNAUTHORIZED,
            json!({ "error": code, "error_description": "Invalid client or Invalid client credentials" }),
        )
    };
    let Some((client_id, secret)) = credentials else {
        return invalid("invalid_client");
    };
    let Some(client) = store
        .clients
        .iter()
        .find(|c| c.get("clientId").and_then(Value::as_str) == Some(client_id.as_str()))
    else {
        return invalid("invalid_client");
    };
    if client.get("secret").and_then(Value::as_str) != Some(secret.as_str()) {
        return invalid("unauthorized_client");
    }
    if grant_type != "client_credentials" {
        return error(
            StatusCode::BAD_REQUEST,
            json!({ "error": "unsupported_grant_type", "error_description": "Unsupported grant_type" }),
        );
    }
    if client.get("serviceAccountsEnabled") != Some(&json!(true)) {
        return error(
            StatusCode::BAD_REQUEST,
            json!({ "error": "unauthorized_client", "error_description": "Client not enabled to retrieve service account" }),
        );
    }
    let access_token = format!("fake.{}.{}", fresh_id(), fresh_secret());
    store.tokens.insert(access_token.clone(), client_id);
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
            (PRAGMA, "no-cache"),
        ],
        json!({
            "access_token": access_token,
            "expires_in": 300,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        })
        .to_string(),
    )
        .into_response()
}
