//! Deletion across many objects: deletecollection and the namespace controller.

use serde_json::{Value, json};

use super::resources::{self, ResourceType};
use super::selector::Selector;
use super::store::{EventType, Key, Store, in_scope};
use super::write::{delete_locked, finalizers, ready_to_go};

impl Store {
    /// DELETE of a collection: deletes every matching object; returns the list
    /// of what was deleted (or marked deleting).
    pub fn delete_collection(&self, rt: &ResourceType, ns: Option<&str>, sel: &Selector) -> Value {
        let mut inner = self.lock();
        let keys: Vec<(Key, Value)> = inner
            .objects
            .iter()
            .filter(|(k, v)| in_scope(k, rt, ns) && sel.matches(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut items = Vec::new();
        for (key, old) in keys {
            let uid_status = delete_locked(&mut inner, rt, key, old.clone());
            let mut item = match uid_status {
                Ok(v) if v.get("kind").and_then(Value::as_str) != Some("Status") => v,
                _ => old,
            };
            if let Value::Object(m) = &mut item {
                m.remove("apiVersion");
                m.remove("kind");
            }
            items.push(item);
        }
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": { "resourceVersion": inner.rv.to_string() },
            "items": items,
        })
    }

    /// One pass of the namespace controller: for each namespace being deleted,
    /// delete its content; once none is left, drop the `kubernetes` finalizer
    /// (the namespace then goes when `metadata.finalizers` is empty too).
    pub fn sweep_namespaces(&self) {
        let nsrt = resources::namespaces();
        let mut inner = self.lock();
        let terminating: Vec<(Key, Value)> = inner
            .objects
            .iter()
            .filter(|(k, v)| {
                in_scope(k, nsrt, None)
                    && v.pointer("/metadata/deletionTimestamp").is_some()
                    && finalizers(v, "/spec/finalizers")
                        .iter()
                        .any(|f| f == "kubernetes")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (nskey, ns) in terminating {
            let content: Vec<(Key, Value)> = inner
                .objects
                .iter()
                .filter(|(k, _)| !k.namespace.is_empty() && k.namespace == nskey.name)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let remaining = content.len();
            let mut gone = 0;
            for (key, obj) in content {
                let Some(rt) = resources::RESOURCES.get(key.resource) else {
                    continue;
                };
                if obj.pointer("/metadata/deletionTimestamp").is_none() {
                    let _ = delete_locked(&mut inner, rt, key.clone(), obj);
                }
                if !inner.objects.contains_key(&key) {
                    gone += 1;
                }
            }
            if gone < remaining {
                continue;
            }
            let mut new = ns.clone();
            let rest: Vec<String> = finalizers(&ns, "/spec/finalizers")
                .into_iter()
                .filter(|f| f != "kubernetes")
                .collect();
            new["spec"]["finalizers"] = json!(rest);
            if rest.is_empty()
                && let Some(Value::Object(spec)) = new.get_mut("spec")
            {
                spec.remove("finalizers");
            }
            let kind = if ready_to_go(nsrt, &new) {
                EventType::Deleted
            } else {
                EventType::Modified
            };
            inner.commit(nskey, new, kind);
        }
    }
}
