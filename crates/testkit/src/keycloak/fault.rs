//! Injected faults: the next N matching requests answer a status (with
//! Keycloak's body for it, or a given one) or hang.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes::error;

/// What a matching [`Fault`] does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer this status with `body`, or Keycloak's body for the status when
    /// `None` (401, 403, 404 and 500 as Keycloak words them; 502, 503 and 504
    /// with no body, as the proxy in front of a down Keycloak answers).
    Status {
        /// The HTTP status.
        code: u16,
        /// The JSON body; Keycloak's own for `code` when `None`.
        body: Option<Value>,
    },
    /// Never answer.
    Hang,
}

/// One fault rule: the next `times` matching requests get `action`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Requests whose path starts with this.
    pub path_prefix: String,
    /// Only this method (`GET`, `POST`, ...); any when `None`.
    pub method: Option<String>,
    /// How many requests it applies to before it retires.
    pub times: u32,
    /// What it does.
    pub action: FaultAction,
}

impl Fault {
    /// The next request under `path_prefix` answers `code` (Keycloak's body).
    pub fn status(path_prefix: impl Into<String>, code: u16) -> Self {
        Fault {
            path_prefix: path_prefix.into(),
            method: None,
            times: 1,
            action: FaultAction::Status { code, body: None },
        }
    }

    /// The next request under `path_prefix` never gets an answer.
    pub fn hang(path_prefix: impl Into<String>) -> Self {
        Fault {
            path_prefix: path_prefix.into(),
            method: None,
            times: 1,
            action: FaultAction::Hang,
        }
    }

    /// Applies to the next `times` requests.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Applies to `method` only.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Answers `body` (a status fault only).
    pub fn body(mut self, body: Value) -> Self {
        if let FaultAction::Status { body: slot, .. } = &mut self.action {
            *slot = Some(body);
        }
        self
    }

    /// Whether it applies to this request (and has uses left).
    pub(super) fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && path.starts_with(&self.path_prefix)
            && self.method.as_deref().is_none_or(|m| m == method.as_str())
    }
}

/// A fault's answer: `body`, or Keycloak's for `code`.
pub(super) fn fault_response(code: u16, body: Option<Value>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.or_else(|| match code {
        401 => Some(json!({ "error": "HTTP 401 Unauthorized" })),
        403 => Some(json!({ "error": "HTTP 403 Forbidden" })),
        404 => Some(json!({ "error": "HTTP 404 Not Found" })),
        500 => Some(json!({ "error": "unknown_error" })),
        _ => None,
    });
    match body {
        Some(body) => error(status, body),
        None => status.into_response(),
    }
}
