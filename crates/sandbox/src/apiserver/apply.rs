//! Server-side apply as structured-merge-diff does it: merge the applied
//! configuration into the live object, prune what the manager stopped
//! applying, compare live with the result, and find conflicts where the
//! change touches fields other managers own.
//!
//! Lists are atomic here (one leaf), and an empty map the manager applies is
//! a field it owns (SMD's `toFieldSet` inserts empty maps and maps' entries).

use serde_json::{Value, json};

use super::fields::{
    Entry, FieldSet, Path, SYSTEM_META, Scope, Writer, entries, get, leaves, remove, set,
    store_entries, upsert,
};

/// A server-side apply conflict: which manager owns which path.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The other manager, as the real server prints it.
    pub manager: String,
    /// `.metadata.labels.x`.
    pub path: String,
}

fn path_string(p: &Path) -> String {
    p.iter().map(|k| format!(".{k}")).collect()
}

fn related(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// What changed between two versions of an object, by path (SMD's `Comparison`).
#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn as_map(v: Option<&Value>) -> Option<&serde_json::Map<String, Value>> {
    v.and_then(Value::as_object)
}

impl Comparison {
    /// Compares the tracked fields of `old` and `new` in `scope`.
    fn of(old: &Value, new: &Value, scope: Scope) -> Self {
        let mut out = Comparison::default();
        let mut keys: Vec<&String> = old
            .as_object()
            .into_iter()
            .chain(new.as_object())
            .flat_map(|m| m.keys())
            .filter(|k| scope.tracks(k))
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            out.walk(&mut vec![k.clone()], old.get(k), new.get(k));
        }
        out
    }

    fn walk(&mut self, path: &mut Path, old: Option<&Value>, new: Option<&Value>) {
        let (old, new) = (present(old), present(new));
        let map_or_absent = |v: Option<&Value>| v.is_none() || v.is_some_and(Value::is_object);
        let empty = |v: Option<&Value>| as_map(v).is_none_or(|m| m.is_empty());
        match (old, new) {
            (None, None) => {}
            // Maps (or nothing) on both sides: a leaf while both are empty,
            // else walked into, the map itself added or removed as a whole.
            _ if map_or_absent(old) && map_or_absent(new) && !(empty(old) && empty(new)) => {
                let mut keys: Vec<String> = as_map(old)
                    .into_iter()
                    .chain(as_map(new))
                    .flat_map(|m| m.keys().cloned())
                    .filter(|k| {
                        !(path.len() == 1
                            && path[0] == "metadata"
                            && SYSTEM_META.contains(&k.as_str()))
                    })
                    .collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    path.push(k.clone());
                    self.walk(
                        path,
                        old.and_then(|o| o.get(&k)),
                        new.and_then(|n| n.get(&k)),
                    );
                    path.pop();
                }
                if old.is_none() {
                    self.added.insert(path.clone());
                } else if new.is_none() {
                    self.removed.insert(path.clone());
                }
            }
            (None, Some(_)) => {
                self.added.insert(path.clone());
            }
            (Some(_), None) => {
                self.removed.insert(path.clone());
            }
            (Some(o), Some(n)) => {
                if o != n {
                    self.modified.insert(path.clone());
                }
                // A map replaced by another type: its fields are gone, or new.
                if o.is_object() && !n.is_object() {
                    self.walk_map_alone(path, o, true);
                } else if n.is_object() && !o.is_object() {
                    self.walk_map_alone(path, n, false);
                }
            }
        }
    }

    fn walk_map_alone(&mut self, path: &mut Path, map: &Value, was_old: bool) {
        for (k, v) in map.as_object().into_iter().flatten() {
            path.push(k.clone());
            if was_old {
                self.walk(path, Some(v), None);
            } else {
                self.walk(path, None, Some(v));
            }
            path.pop();
        }
    }
}

/// Server-side apply of `applied` onto `live` (None: the object is new).
/// Returns the merged object with managed fields updated, or the conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    w: &Writer<'_>,
) -> Result<Value, Vec<Conflict>> {
    let empty = json!({});
    let live_v = live.unwrap_or(&empty);
    let prior = entries(live_v);
    let mut list = prior.clone();
    let sub = w.scope.subresource();
    let mine = |e: &Entry| e.same_key(w.manager, "Apply", sub);
    let applied_set = leaves(applied, w.scope);

    // Merge: the applied fields over the live object; an applied empty map
    // keeps a live map's entries.
    let mut merged = live_v.clone();
    for p in &applied_set {
        let v = get(applied, p).cloned().unwrap_or(Value::Null);
        let keep_map = matches!(&v, Value::Object(m) if m.is_empty())
            && matches!(get(&merged, p), Some(Value::Object(_)));
        if !keep_map {
            set(&mut merged, p, v);
        }
    }
    // Prune: what this manager applied last time and no longer does, unless
    // another manager owns it (or something inside it).
    let previously: FieldSet = list
        .iter()
        .filter(|e| mine(e))
        .flat_map(|e| e.fields.clone())
        .collect();
    let others: FieldSet = list
        .iter()
        .filter(|e| !mine(e))
        .flat_map(|e| e.fields.clone())
        .collect();
    for p in previously.difference(&applied_set) {
        let kept = applied_set
            .iter()
            .chain(others.iter())
            .any(|q| related(p, q));
        if !kept {
            remove(&mut merged, p);
        }
    }

    // Conflicts: fields this apply adds or changes that another manager owns.
    let change = Comparison::of(live_v, &merged, w.scope);
    let touched: FieldSet = change.added.union(&change.modified).cloned().collect();
    let mut conflicts = Vec::new();
    for e in list.iter_mut().filter(|e| !mine(e)) {
        let clashes: Vec<Path> = e.fields.intersection(&touched).cloned().collect();
        if force {
            e.fields.retain(|p| !clashes.contains(p));
        } else {
            conflicts.extend(clashes.iter().map(|p| Conflict {
                manager: e.describe(),
                path: path_string(p),
            }));
        }
        e.fields.retain(|p| !change.removed.contains(p));
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let i = upsert(&mut list, w, "Apply");
    list[i].fields = applied_set;
    // A new object whose applied metadata held only its name has none yet.
    if !merged.get("metadata").is_some_and(Value::is_object) {
        merged["metadata"] = json!({});
    }
    store_entries(&mut merged, &prior, list);
    Ok(merged)
}

/// The real server's message for apply conflicts.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.path
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut parts = Vec::new();
    for m in managers {
        parts.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager == m) {
            parts.push(format!("- {}", c.path));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        parts.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "v1",
            now: "2026-01-01T00:00:00Z",
            scope: Scope::Main {
                status_subresource: false,
            },
        }
    }

    fn cm(data: Value) -> Value {
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "cm" }, "data": data })
    }

    #[test]
    fn fields_a_manager_stops_applying_go_unless_another_owns_them() {
        let live = apply(
            None,
            &cm(json!({ "one": "1", "two": "2", "three": "3" })),
            false,
            &writer("a"),
        )
        .unwrap();
        let live = apply(Some(&live), &cm(json!({ "two": "2" })), false, &writer("b")).unwrap();
        let after = apply(Some(&live), &cm(json!({ "one": "1" })), false, &writer("a")).unwrap();
        assert_eq!(
            after["data"],
            json!({ "one": "1", "two": "2" }),
            "{after:#}"
        );
    }
}
