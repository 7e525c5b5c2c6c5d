//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

use super::status::{ApiError, ApiResult};

/// Applies an RFC 7386 merge patch to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "JSON pointer must be empty or start with a \"/\": {path:?}"
        ));
    }
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    Ok((parent.to_owned(), unescape(last)))
}

fn missing(op: &str, path: &str) -> String {
    format!("{op} operation does not apply: doc is missing path: \"{path}\": missing value")
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| missing("add", path))?;
            if i > a.len() {
                return Err(missing("add", path));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(missing("add", path)),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(|| missing("remove", path)),
        Some(Value::Array(a)) => {
            let i: usize = last.parse().map_err(|_| missing("remove", path))?;
            if i >= a.len() {
                return Err(missing("remove", path));
            }
            Ok(a.remove(i))
        }
        _ => Err(missing("remove", path)),
    }
}

/// Applies an RFC 6902 JSON patch (add, remove, replace, move, copy, test).
/// A malformed patch is 400; one that does not apply is 422, as the real server says.
pub fn json_patch(doc: &mut Value, patch: &Value) -> ApiResult<()> {
    apply_ops(doc, patch).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            Some(serde_json::json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": e }] })),
        )
    })
}

fn apply_ops(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch
        .as_array()
        .ok_or("json: cannot unmarshal object into Go value of type jsonpatch.Patch")?;
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match name {
            "add" => add(doc, path, value)?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                if doc.pointer(path).is_none() {
                    return Err(missing("replace", path));
                }
                remove(doc, path)?;
                add(doc, path, value)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).unwrap_or("");
                let v = if name == "move" {
                    remove(doc, from)?
                } else {
                    doc.pointer(from)
                        .cloned()
                        .ok_or_else(|| missing("copy", from))?
                };
                add(doc, path, v)?;
            }
            other => {
                return Err(format!("Unexpected kind: {other}"));
            }
        }
    }
    Ok(())
}
