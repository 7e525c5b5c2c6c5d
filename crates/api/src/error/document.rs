//! The problem document as it goes over the wire (RFC 9457), and where in a
//! request each broken rule is: a JSON pointer into the body, a query or
//! path parameter, or a header.

use serde::Serialize;

use hubwright_state::policy::Breach;

/// The problem+json document (RFC 9457) every error answer carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemDocument {
    /// The kind of problem: a relative URL, e.g. `/docs/problems/invalid-request`,
    /// of a page (served by hubwright, no token needed) that says what it means
    /// and what to do.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong: names the field and the rule.
    pub detail: String,
    /// For `422`: each rule broken, and where. Absent for other statuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For `limit-exceeded`: the limit, its value, the current use, what
    /// the request asked for, and the rule of the policy file that set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Breach>,
}

/// One rule a request broke. Exactly one of `pointer`, `parameter` and
/// `header` says where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// A JSON Pointer (RFC 6901) into the request body, e.g.
    /// `/parameters/cpu_limit`; `""` is the whole body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// A query or path parameter, e.g. `limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// A request header, e.g. `Idempotency-Key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The rule, e.g. `must be at most 16`.
    pub rule: String,
}

impl FieldError {
    /// A rule broken at `pointer` in the body.
    pub fn at_pointer(pointer: String, rule: &str) -> Self {
        Self {
            pointer: Some(pointer),
            parameter: None,
            header: None,
            rule: rule.to_owned(),
        }
    }

    /// A rule broken by query or path parameter `name`.
    pub fn at_parameter(name: &str, rule: &str) -> Self {
        Self {
            pointer: None,
            parameter: Some(name.to_owned()),
            header: None,
            rule: rule.to_owned(),
        }
    }

    /// A rule broken by request header `name`.
    pub fn at_header(name: &str, rule: &str) -> Self {
        Self {
            pointer: None,
            parameter: None,
            header: Some(name.to_owned()),
            rule: rule.to_owned(),
        }
    }
}

/// The JSON Pointer (RFC 6901) of `segments`: each escaped (`~` as `~0`, `/`
/// as `~1`) and preceded by `/`; no segments is `""`, the whole document.
pub fn json_pointer<'a>(segments: impl IntoIterator<Item = &'a str>) -> String {
    segments
        .into_iter()
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}
