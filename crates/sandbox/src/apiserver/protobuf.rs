//! Kubernetes protobuf request bodies, decoded to the JSON the store keeps.
//!
//! client-go's typed clients send protobuf (`application/vnd.kubernetes.protobuf`)
//! for built-in kinds: helm's release storage creates and updates its Secrets
//! and sends its `DeleteOptions` that way. A body is the magic `k8s\0`, then
//! a `runtime.Unknown` message (type meta, raw object bytes). Only the kinds
//! such clients send here are understood: Secret, ConfigMap and
//! DeleteOptions; anything else is 415. Empty strings, zero numbers and zero
//! times are dropped, as Go's JSON `omitempty` would.

use serde_json::{Map, Value, json};

use super::status::{ApiError, ApiResult};

/// The content type of protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// One protobuf field: its number and its value.
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn bad(what: &str) -> ApiError {
    ApiError::bad_request(&format!("unable to decode protobuf body: {what}"))
}

fn varint(buf: &[u8], pos: &mut usize) -> ApiResult<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(bad("varint too long"))
}

/// The fields of one message, in order.
fn fields(buf: &[u8]) -> ApiResult<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(buf, &mut pos)?),
            1 | 5 => {
                pos += if key & 7 == 1 { 8 } else { 4 };
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| bad("length"))?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len());
                let end = end.ok_or_else(|| bad("truncated field"))?;
                let bytes = &buf[pos..end];
                pos = end;
                Field::Bytes(bytes)
            }
            _ => return Err(bad("unsupported wire type")),
        };
        out.push((key >> 3, field));
    }
    if pos > buf.len() {
        return Err(bad("truncated fixed field"));
    }
    Ok(out)
}

fn string(f: Field<'_>) -> ApiResult<String> {
    match f {
        Field::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| bad("invalid UTF-8")),
        _ => Err(bad("expected a string")),
    }
}

fn bytes(f: Field<'_>) -> ApiResult<&[u8]> {
    match f {
        Field::Bytes(b) => Ok(b),
        _ => Err(bad("expected bytes")),
    }
}

fn number(f: Field<'_>) -> ApiResult<u64> {
    match f {
        Field::Varint(v) => Ok(v),
        _ => Err(bad("expected a varint")),
    }
}

/// Sets `key` unless the value is what `omitempty` drops.
fn set(out: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Object(m) => m.is_empty(),
        Value::Null => true,
        _ => false,
    };
    if !empty {
        out.insert(key.to_owned(), value);
    }
}

/// A `map<string, string>` entry (key 1, value 2); `bytes_value` base64s the value.
fn map_entry(buf: &[u8], bytes_value: bool) -> ApiResult<(String, Value)> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (n, f) in fields(buf)? {
        match n {
            1 => k = string(f)?,
            2 if bytes_value => v = json!(super::normalize::base64(bytes(f)?)),
            2 => v = json!(string(f)?),
            _ => {}
        }
    }
    Ok((k, v))
}

fn add_entry(
    out: &mut Map<String, Value>,
    key: &str,
    f: Field<'_>,
    bytes_value: bool,
) -> ApiResult<()> {
    let (k, v) = map_entry(bytes(f)?, bytes_value)?;
    let map = out.entry(key).or_insert_with(|| json!({}));
    map[k] = v;
    Ok(())
}

/// `metav1.Time` (seconds 1, nanos 2) as RFC 3339; None for the zero time.
fn time(buf: &[u8]) -> ApiResult<Value> {
    let mut seconds = 0i64;
    for (n, f) in fields(buf)? {
        if n == 1 {
            seconds = number(f)? as i64;
        }
    }
    if seconds == 0 {
        return Ok(Value::Null);
    }
    let t = chrono::DateTime::from_timestamp(seconds, 0).ok_or_else(|| bad("time"))?;
    Ok(json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn owner_reference(buf: &[u8]) -> ApiResult<Value> {
    let mut out = Map::new();
    for (n, f) in fields(buf)? {
        match n {
            1 => set(&mut out, "kind", json!(string(f)?)),
            3 => set(&mut out, "name", json!(string(f)?)),
            4 => set(&mut out, "uid", json!(string(f)?)),
            5 => set(&mut out, "apiVersion", json!(string(f)?)),
            6 => {
                out.insert("controller".into(), json!(number(f)? != 0));
            }
            7 => {
                out.insert("blockOwnerDeletion".into(), json!(number(f)? != 0));
            }
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

/// `ObjectMeta`; managed fields are dropped (the stand-in ignores sent ones).
fn object_meta(buf: &[u8]) -> ApiResult<Value> {
    let mut out = Map::new();
    for (n, f) in fields(buf)? {
        match n {
            1 => set(&mut out, "name", json!(string(f)?)),
            2 => set(&mut out, "generateName", json!(string(f)?)),
            3 => set(&mut out, "namespace", json!(string(f)?)),
            5 => set(&mut out, "uid", json!(string(f)?)),
            6 => set(&mut out, "resourceVersion", json!(string(f)?)),
            7 => set(&mut out, "generation", json!(number(f)? as i64)),
            8 => set(&mut out, "creationTimestamp", time(bytes(f)?)?),
            9 => set(&mut out, "deletionTimestamp", time(bytes(f)?)?),
            10 => set(
                &mut out,
                "deletionGracePeriodSeconds",
                json!(number(f)? as i64),
            ),
            11 => add_entry(&mut out, "labels", f, false)?,
            12 => add_entry(&mut out, "annotations", f, false)?,
            13 => push(&mut out, "ownerReferences", owner_reference(bytes(f)?)?),
            14 => push(&mut out, "finalizers", json!(string(f)?)),
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

fn push(out: &mut Map<String, Value>, key: &str, value: Value) {
    if let Value::Array(items) = out.entry(key).or_insert_with(|| json!([])) {
        items.push(value);
    }
}

fn secret(buf: &[u8]) -> ApiResult<Map<String, Value>> {
    let mut out = Map::new();
    for (n, f) in fields(buf)? {
        match n {
            1 => {
                out.insert("metadata".into(), object_meta(bytes(f)?)?);
            }
            2 => add_entry(&mut out, "data", f, true)?,
            3 => set(&mut out, "type", json!(string(f)?)),
            4 => add_entry(&mut out, "stringData", f, false)?,
            5 => {
                out.insert("immutable".into(), json!(number(f)? != 0));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn config_map(buf: &[u8]) -> ApiResult<Map<String, Value>> {
    let mut out = Map::new();
    for (n, f) in fields(buf)? {
        match n {
            1 => {
                out.insert("metadata".into(), object_meta(bytes(f)?)?);
            }
            2 => add_entry(&mut out, "data", f, false)?,
            3 => add_entry(&mut out, "binaryData", f, true)?,
            4 => {
                out.insert("immutable".into(), json!(number(f)? != 0));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn delete_options(buf: &[u8]) -> ApiResult<Map<String, Value>> {
    let mut out = Map::new();
    for (n, f) in fields(buf)? {
        match n {
            1 => {
                out.insert("gracePeriodSeconds".into(), json!(number(f)? as i64));
            }
            2 => {
                let mut pre = Map::new();
                for (n, f) in fields(bytes(f)?)? {
                    match n {
                        1 => set(&mut pre, "uid", json!(string(f)?)),
                        2 => set(&mut pre, "resourceVersion", json!(string(f)?)),
                        _ => {}
                    }
                }
                out.insert("preconditions".into(), Value::Object(pre));
            }
            3 => {
                out.insert("orphanDependents".into(), json!(number(f)? != 0));
            }
            4 => set(&mut out, "propagationPolicy", json!(string(f)?)),
            5 => push(&mut out, "dryRun", json!(string(f)?)),
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes a protobuf body to JSON with `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing the k8s protobuf magic prefix"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(rest)? {
        match n {
            1 => {
                for (n, f) in fields(bytes(f)?)? {
                    match n {
                        1 => api_version = string(f)?,
                        2 => kind = string(f)?,
                        _ => {}
                    }
                }
            }
            2 => raw = bytes(f)?,
            _ => {}
        }
    }
    let mut object = match kind.as_str() {
        "Secret" => secret(raw)?,
        "ConfigMap" => config_map(raw)?,
        "DeleteOptions" => delete_options(raw)?,
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the hubwright API server stand-in decodes {CONTENT_TYPE} only for Secret, ConfigMap and DeleteOptions, not {other:?}; send application/json"
                ),
                Some(json!({})),
            ));
        }
    };
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}
