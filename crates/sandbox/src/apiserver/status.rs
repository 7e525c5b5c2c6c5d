//! `Status` error bodies in kube-apiserver's shape (`k8s.io/apimachinery/pkg/api/errors`).

use serde_json::{Value, json};

use super::resources::ResourceType;

/// An API error: the HTTP code and the `Status` body the real server would send.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// The `Status` object.
    pub body: Value,
    /// Seconds for a `Retry-After` header, if any.
    pub retry_after: Option<u64>,
}

/// Result of an API operation.
pub type ApiResult<T> = Result<T, ApiError>;

/// One `StatusCause` (`reason` is the Go field `Type`).
#[derive(Debug, Clone)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldManagerConflict`, `NamespaceTerminating`, ...
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
}

impl Cause {
    fn to_json(&self) -> Value {
        let mut v = json!({ "reason": self.reason, "message": self.message });
        if !self.field.is_empty() {
            v["field"] = json!(self.field);
        }
        v
    }
}

/// Builds a `Status` failure body. `details` is omitted when `None`.
pub fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "code": code,
    });
    if !reason.is_empty() {
        v["reason"] = json!(reason);
    }
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

/// `details` naming an object: `{name, group, kind}` with empty values omitted.
pub fn details(name: &str, group: &str, kind: &str, causes: &[Cause]) -> Value {
    let mut d = json!({});
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    if !kind.is_empty() {
        d["kind"] = json!(kind);
    }
    if !causes.is_empty() {
        d["causes"] = Value::Array(causes.iter().map(Cause::to_json).collect());
    }
    d
}

impl ApiError {
    /// An error with the given parts.
    pub fn new(code: u16, reason: &str, message: &str, details: Option<Value>) -> Self {
        Self {
            code,
            body: status_body(code, reason, message, details),
            retry_after: None,
        }
    }

    /// 404 `configmaps "x" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", rt.qualified()),
            Some(details(name, rt.group, rt.plural, &[])),
        )
    }

    /// 404 for a path the server does not serve.
    pub fn unknown_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }

    /// 409 `configmaps "x" already exists`.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", rt.qualified()),
            Some(details(name, rt.group, rt.plural, &[])),
        )
    }

    /// 409 Conflict: `Operation cannot be fulfilled on configmaps "x": <why>`.
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified()
            ),
            Some(details(name, rt.group, rt.plural, &[])),
        )
    }

    /// 409 Conflict for a stale `resourceVersion`.
    pub fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid: `ConfigMap "x" is invalid: <field>: <message>`.
    pub fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = if summary.len() == 1 {
            summary.join("")
        } else {
            format!("[{}]", summary.join(", "))
        };
        Self::new(
            422,
            "Invalid",
            &format!("{} \"{name}\" is invalid: {summary}", rt.qualified_kind()),
            Some(details(name, rt.group, rt.kind, &causes)),
        )
    }

    /// 422 Invalid for request options (`PatchOptions`, `ListOptions`):
    /// `ListOptions.meta.k8s.io "" is invalid: <field>: <message>`.
    pub fn options_invalid(kind: &str, causes: &[Cause]) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = if summary.len() == 1 {
            summary.join("")
        } else {
            format!("[{}]", summary.join(", "))
        };
        Self::new(
            422,
            "Invalid",
            &format!("{kind}.meta.k8s.io \"\" is invalid: {summary}"),
            Some(details("", "meta.k8s.io", kind, causes)),
        )
    }

    /// 400 BadRequest with a message and no details.
    pub fn bad_request(message: &str) -> Self {
        Self::new(400, "BadRequest", message, None)
    }

    /// 403 Forbidden: `configmaps "x" is forbidden: <why>`.
    pub fn forbidden(rt: &ResourceType, name: &str, why: &str, causes: &[Cause]) -> Self {
        let message = if name.is_empty() {
            format!("{} is forbidden: {why}", rt.qualified())
        } else {
            format!("{} \"{name}\" is forbidden: {why}", rt.qualified())
        };
        Self::new(
            403,
            "Forbidden",
            &message,
            Some(details(name, rt.group, rt.plural, causes)),
        )
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )
    }

    /// 401 for a missing or wrong bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized", None)
    }

    /// 415 for a patch content type the server does not know.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {content_type:?}"
            ),
            Some(json!({})),
        )
    }

    /// 500 InternalError with the given cause.
    pub fn internal(message: &str) -> Self {
        Self::new(
            500,
            "InternalError",
            &format!("Internal error occurred: {message}"),
            Some(json!({ "causes": [{ "message": message }] })),
        )
    }

    /// The error the real server returns for `code` when nothing more specific
    /// applies (`errors.NewGenericServerResponse`).
    pub fn generic(
        code: u16,
        rt: Option<&ResourceType>,
        name: &str,
        retry_after: Option<u64>,
    ) -> Self {
        let (reason, message) = match code {
            400 => ("BadRequest", "the server rejected our request for an unknown reason".to_owned()),
            401 => ("Unauthorized", "Unauthorized".to_owned()),
            404 => ("NotFound", "the server could not find the requested resource".to_owned()),
            409 => ("Conflict", "the server reported a conflict".to_owned()),
            410 => ("Expired", "the resource version is too old".to_owned()),
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later".to_owned(),
            ),
            500 => return Self::internal("injected fault"),
            503 => ("ServiceUnavailable", "the server is currently unable to handle the request".to_owned()),
            504 => ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request".to_owned()),
            _ => ("", "an error on the server (\"unknown\") has prevented the request from succeeding".to_owned()),
        };
        let mut d = match rt {
            Some(rt) => details(name, rt.group, rt.plural, &[]),
            None => json!({}),
        };
        if let Some(s) = retry_after {
            d["retryAfterSeconds"] = json!(s);
        }
        let mut e = Self::new(code, reason, &message, Some(d));
        e.retry_after = retry_after;
        e
    }
}
