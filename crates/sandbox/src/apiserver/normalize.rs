//! What the real server does to every object it stores: system fields on
//! create, fields a write may not change, defaults, and the conversions a
//! round trip through the Go types makes (Secret `stringData`, `omitempty`).

use serde_json::{Map, Value, json};

use super::body::meta_str;
use super::fields::Scope;
use super::resources::ResourceType;
use super::write::is_namespace;

pub(super) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Everything but `metadata` and `status`, to decide whether `generation` moves.
pub(super) fn spec_part(obj: &Value) -> Map<String, Value> {
    match obj {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    }
}

pub(super) const SYSTEM_FIELDS: &[&str] = &[
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// What a main-resource or status write may not change: reset it from `old`.
pub(super) fn reset_from_old(rt: &ResourceType, old: &Value, new: &mut Value, scope: Scope) {
    if scope == Scope::Status {
        let status = new.get("status").cloned();
        let managed = new.pointer("/metadata/managedFields").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Value::Object(m) = new {
                    m.remove("status");
                }
            }
        }
        if let Some(m) = managed {
            new["metadata"]["managedFields"] = m;
        }
        return;
    }
    if rt.status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Value::Object(m) = new {
                    m.remove("status");
                }
            }
        }
    }
    if is_namespace(rt) {
        match old.pointer("/spec/finalizers") {
            Some(f) => new["spec"]["finalizers"] = f.clone(),
            None => {
                if let Some(Value::Object(spec)) = new.get_mut("spec") {
                    spec.remove("finalizers");
                }
            }
        }
    }
    if let (Some(Value::Object(om)), Some(Value::Object(nm))) =
        (old.get("metadata"), new.get_mut("metadata"))
    {
        for f in SYSTEM_FIELDS {
            match om.get(*f) {
                Some(v) => nm.insert((*f).to_owned(), v.clone()),
                None => nm.remove(*f),
            };
        }
        if !nm.contains_key("managedFields")
            && let Some(mf) = om.get("managedFields")
        {
            nm.insert("managedFields".to_owned(), mf.clone());
        }
    }
}

/// Defaults the real server applies before field tracking.
pub(super) fn default_object(rt: &ResourceType, obj: &mut Value) {
    if is_namespace(rt) {
        let name = meta_str(obj, "name").to_owned();
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    }
}

/// Conversions the real server makes on every write: a Secret's `stringData`
/// is base64-encoded into `data` and not stored; its `type` defaults to
/// `Opaque`; empty `omitempty` fields go ([`omit_empty`]).
pub(super) fn normalize(rt: &ResourceType, obj: &mut Value) {
    omit_empty(obj);
    if rt.kind != "Secret" || !rt.group.is_empty() {
        return;
    }
    let Value::Object(m) = obj else { return };
    if let Some(Value::Object(plain)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        for (k, v) in plain {
            data[k] = json!(base64(v.as_str().unwrap_or("").as_bytes()));
        }
    }
    m.entry("type").or_insert_with(|| json!("Opaque"));
}

/// Drops the empty (or null) maps and lists the Go types tag `omitempty`,
/// as decoding into them and encoding again does on the real server: an
/// applied `data: {}` is owned by its manager but not stored. Only the fields
/// the stand-in knows to be Go maps or slices: metadata's labels,
/// annotations, finalizers and owner references, and a ConfigMap's or
/// Secret's `data`/`binaryData` (a struct such as `spec: {}` stays).
pub(super) fn omit_empty(obj: &mut Value) {
    fn drop_empty(m: &mut Map<String, Value>, keys: &[&str]) {
        for k in keys {
            let empty = match m.get(*k) {
                Some(Value::Null) => true,
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if empty {
                m.remove(*k);
            }
        }
    }
    let Value::Object(m) = obj else { return };
    if matches!(
        m.get("kind").and_then(Value::as_str),
        Some("ConfigMap" | "Secret")
    ) {
        drop_empty(m, &["data", "binaryData"]);
    }
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        drop_empty(
            meta,
            &["labels", "annotations", "finalizers", "ownerReferences"],
        );
    }
}

/// Standard base64 with padding, as Go's `encoding/json` writes `[]byte`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// System fields of a new object (`PrepareForCreate`).
pub(super) fn prepare_create(rt: &ResourceType, obj: &mut Value) {
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        for f in SYSTEM_FIELDS {
            meta.remove(*f);
        }
        meta.insert("uid".to_owned(), json!(uuid::Uuid::now_v7().to_string()));
        meta.insert("creationTimestamp".to_owned(), json!(now()));
        if rt.generation {
            meta.insert("generation".to_owned(), json!(1));
        }
    }
    if rt.status {
        obj["status"] = json!({});
    }
    if is_namespace(rt) {
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
        obj["status"] = json!({ "phase": "Active" });
    }
}
