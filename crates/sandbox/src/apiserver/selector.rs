//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and field
//! selectors (`metadata.name`, `metadata.namespace`).

use serde_json::Value;

use super::status::{ApiError, ApiResult};
use super::validate::is_label_key;

#[derive(Debug, Clone)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector plus field selector; the empty selector matches all.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<(String, bool, String)>,
}

fn parse_error(detail: &str) -> ApiError {
    ApiError::bad_request(&format!("unable to parse requirement: {detail}"))
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(rest: &str) -> ApiResult<Vec<String>> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| parse_error(&format!("found '{rest}', expected: '('")))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

fn check_key(key: &str) -> ApiResult<String> {
    if is_label_key(key) {
        Ok(key.to_owned())
    } else {
        Err(parse_error(&format!(
            "key: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

fn parse_requirement(raw: &str) -> ApiResult<Requirement> {
    let r = raw.trim();
    if let Some(key) = r.strip_prefix('!') {
        return Ok(Requirement {
            key: check_key(key.trim())?,
            op: Op::DoesNotExist,
        });
    }
    for (token, ctor) in [("!=", 0), ("==", 1), ("=", 1)] {
        if let Some((k, v)) = r.split_once(token) {
            let value = v.trim().to_owned();
            let op = if ctor == 0 {
                Op::NotEq(value)
            } else {
                Op::Eq(value)
            };
            return Ok(Requirement {
                key: check_key(k.trim())?,
                op,
            });
        }
    }
    if let Some((k, rest)) = r.split_once(" notin ") {
        return Ok(Requirement {
            key: check_key(k.trim())?,
            op: Op::NotIn(parse_set(rest)?),
        });
    }
    if let Some((k, rest)) = r.split_once(" in ") {
        return Ok(Requirement {
            key: check_key(k.trim())?,
            op: Op::In(parse_set(rest)?),
        });
    }
    Ok(Requirement {
        key: check_key(r)?,
        op: Op::Exists,
    })
}

impl Selector {
    /// Parses `labelSelector` and `fieldSelector` query values.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> ApiResult<Self> {
        let mut sel = Selector::default();
        if let Some(l) = labels.filter(|l| !l.trim().is_empty()) {
            for part in split_top(l) {
                sel.labels.push(parse_requirement(part)?);
            }
        }
        if let Some(f) = fields.filter(|f| !f.trim().is_empty()) {
            for part in f.split(',') {
                let (key, neg, value) = if let Some((k, v)) = part.split_once("!=") {
                    (k, true, v)
                } else if let Some((k, v)) = part.split_once("==") {
                    (k, false, v)
                } else if let Some((k, v)) = part.split_once('=') {
                    (k, false, v)
                } else {
                    return Err(ApiError::bad_request(&format!(
                        "invalid selector: '{f}'; can't understand '{part}'"
                    )));
                };
                let key = key.trim();
                if key != "metadata.name" && key != "metadata.namespace" {
                    return Err(ApiError::bad_request(&format!(
                        "field label not supported: {key}"
                    )));
                }
                sel.fields
                    .push((key.to_owned(), neg, value.trim().to_owned()));
            }
        }
        Ok(sel)
    }

    /// Whether `obj` matches every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match &r.op {
            Op::Eq(v) => label(&r.key) == Some(v.as_str()),
            Op::NotEq(v) => label(&r.key) != Some(v.as_str()),
            Op::In(vs) => label(&r.key).is_some_and(|l| vs.iter().any(|v| v == l)),
            Op::NotIn(vs) => !label(&r.key).is_some_and(|l| vs.iter().any(|v| v == l)),
            Op::Exists => label(&r.key).is_some(),
            Op::DoesNotExist => label(&r.key).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|(key, neg, value)| {
                let field = if key == "metadata.name" {
                    "/metadata/name"
                } else {
                    "/metadata/namespace"
                };
                let actual = obj.pointer(field).and_then(Value::as_str).unwrap_or("");
                (actual == value) != *neg
            })
    }
}
