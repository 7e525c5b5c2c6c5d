//! Field ownership: `metadata.managedFields` in the `FieldsV1` format, updated
//! for Update operations (server-side apply is in [`super::apply`]).
//!
//! A field set is the set of leaf paths a manager owns. Maps are walked into;
//! scalars, lists (always atomic here) and empty maps are leaves.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A path of field names from the object root.
pub type Path = Vec<String>;
/// The leaf paths one manager owns.
pub type FieldSet = BTreeSet<Path>;

/// Which part of an object a write may touch, and so which fields are tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `status` is ignored when the kind has a status subresource.
    Main { status_subresource: bool },
    /// The `/status` subresource: only `status` is tracked.
    Status,
}

impl Scope {
    /// The `subresource` recorded in managed fields entries.
    pub fn subresource(self) -> &'static str {
        match self {
            Scope::Main { .. } => "",
            Scope::Status => "status",
        }
    }

    pub(super) fn tracks(self, root_key: &str) -> bool {
        match self {
            Scope::Main { status_subresource } => {
                !(matches!(root_key, "apiVersion" | "kind")
                    || status_subresource && root_key == "status")
            }
            Scope::Status => root_key == "status",
        }
    }
}

/// Metadata fields the server owns; never part of a field set.
pub(super) const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

fn walk(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                if prefix.len() == 1 && prefix[0] == "metadata" && SYSTEM_META.contains(&k.as_str())
                {
                    continue;
                }
                prefix.push(k.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Null => {}
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The tracked leaf paths of `obj` in `scope`.
pub fn leaves(obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if scope.tracks(k) {
                let mut prefix = vec![k.clone()];
                walk(v, &mut prefix, &mut out);
            }
        }
    }
    out
}

/// The value at `path`, if any.
pub fn get<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

/// Sets the value at `path`, creating maps on the way.
pub fn set(obj: &mut Value, path: &[String], value: Value) {
    let mut cur = obj;
    for k in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else { return };
        cur = m.entry(k.clone()).or_insert(Value::Null);
    }
    *cur = value;
}

/// Removes the value at `path`, then every map above it left empty (never `metadata`).
pub fn remove(obj: &mut Value, path: &[String]) {
    for depth in (1..=path.len()).rev() {
        let (parent, last) = (&path[..depth - 1], &path[depth - 1]);
        let Some(Value::Object(m)) = get_mut(obj, parent) else {
            return;
        };
        let empty_child = matches!(m.get(last), Some(Value::Object(c)) if c.is_empty());
        if depth == path.len() || (empty_child && !(depth == 1 && last == "metadata")) {
            m.remove(last);
        } else {
            return;
        }
        if !m.is_empty() {
            return;
        }
    }
}

fn get_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(obj, |v, k| v.get_mut(k))
}

/// Encodes a field set as `fieldsV1` (`{"f:metadata":{"f:labels":{"f:x":{}}}}`).
pub fn encode(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for k in path {
            let entry = cur.entry(format!("f:{k}")).or_insert_with(|| json!({}));
            let Value::Object(next) = entry else { break };
            cur = next;
        }
    }
    Value::Object(root)
}

/// Decodes `fieldsV1`. List-item keys (`k:`, `v:`, `i:`) collapse onto their list.
pub fn decode(v: &Value) -> FieldSet {
    fn go(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        let Value::Object(m) = v else { return };
        let mut leaf = true;
        for (k, child) in m {
            if let Some(name) = k.strip_prefix("f:") {
                leaf = false;
                prefix.push(name.to_owned());
                go(child, prefix, out);
                prefix.pop();
            }
        }
        if leaf && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
    }
    let mut out = FieldSet::new();
    go(v, &mut Vec::new(), &mut out);
    out
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The field manager.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The API version the write used.
    pub api_version: String,
    /// `""` or `status`.
    pub subresource: String,
    /// When the entry last changed.
    pub time: String,
    /// The owned fields.
    pub fields: FieldSet,
}

impl Entry {
    pub(super) fn same_key(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    fn to_json(&self) -> Value {
        let mut v = json!({});
        if !self.manager.is_empty() {
            v["manager"] = json!(self.manager);
        }
        v["operation"] = json!(self.operation);
        v["apiVersion"] = json!(self.api_version);
        v["time"] = json!(self.time);
        v["fieldsType"] = json!("FieldsV1");
        v["fieldsV1"] = encode(&self.fields);
        if !self.subresource.is_empty() {
            v["subresource"] = json!(self.subresource);
        }
        v
    }

    /// How conflict messages name this manager (`printManager` in the real server).
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {} at {}", self.api_version, self.time));
        }
        s
    }
}

/// Reads `metadata.managedFields` of `obj`.
pub fn entries(obj: &Value) -> Vec<Entry> {
    let Some(Value::Array(items)) = obj.pointer("/metadata/managedFields") else {
        return Vec::new();
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    items
        .iter()
        .map(|e| Entry {
            manager: s(e, "manager"),
            operation: s(e, "operation"),
            api_version: s(e, "apiVersion"),
            subresource: s(e, "subresource"),
            time: s(e, "time"),
            fields: e.get("fieldsV1").map(decode).unwrap_or_default(),
        })
        .collect()
}

/// Writes `entries` (dropping empty ones, keeping the time of unchanged ones) into `obj`.
pub(super) fn store_entries(obj: &mut Value, old: &[Entry], mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    for e in &mut entries {
        if let Some(prev) = old
            .iter()
            .find(|o| o.same_key(&e.manager, &e.operation, &e.subresource))
            && prev.fields == e.fields
            && prev.api_version == e.api_version
        {
            e.time = prev.time.clone();
        }
    }
    let list: Vec<Value> = entries.iter().map(Entry::to_json).collect();
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".to_owned(), Value::Array(list));
        }
    }
}

/// Who is writing: the manager, the API version and the time.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// Field manager name.
    pub manager: &'a str,
    /// API version of the request.
    pub api_version: &'a str,
    /// RFC 3339 time of the write.
    pub now: &'a str,
    /// Which part of the object is written.
    pub scope: Scope,
}

pub(super) fn upsert(list: &mut Vec<Entry>, w: &Writer<'_>, operation: &str) -> usize {
    let sub = w.scope.subresource();
    if let Some(i) = list
        .iter()
        .position(|e| e.same_key(w.manager, operation, sub))
    {
        list[i].api_version = w.api_version.to_owned();
        list[i].time = w.now.to_owned();
        return i;
    }
    list.push(Entry {
        manager: w.manager.to_owned(),
        operation: operation.to_owned(),
        api_version: w.api_version.to_owned(),
        subresource: sub.to_owned(),
        time: w.now.to_owned(),
        fields: FieldSet::new(),
    });
    list.len() - 1
}

/// Records an Update operation turning `old` (None on create) into `new`: the
/// writer gains the fields it changed, every other manager loses them, and
/// fields that no longer exist are dropped from every set.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>) {
    let prior = old.map(entries).unwrap_or_default();
    let mut list = prior.clone();
    let empty = Value::Null;
    let old_v = old.unwrap_or(&empty);
    let new_leaves = leaves(new, w.scope);
    let changed: FieldSet = new_leaves
        .iter()
        .filter(|p| get(old_v, p) != get(new, p))
        .cloned()
        .collect();
    let exists = |p: &Path| get(new, p).is_some_and(|v| !v.is_null());
    for e in &mut list {
        e.fields.retain(|p| exists(p) && !changed.contains(p));
    }
    let i = upsert(&mut list, w, "Update");
    list[i].fields.extend(changed);
    store_entries(new, &prior, list);
}
