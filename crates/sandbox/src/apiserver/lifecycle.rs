//! Deletion across many objects: deletecollection and the namespace controller.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::resources::{self, ResourceType};
use super::selector::Selector;
use super::store::{EventType, Inner, Key, Store, in_scope};
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
    /// delete its content; once none is left and `delay` has passed since the
    /// controller first saw it terminating, drop the `kubernetes` finalizer
    /// (the namespace then goes when `metadata.finalizers` is empty too). A
    /// real controller takes seconds: discovery, then a list and a delete of
    /// every resource type.
    pub fn sweep_namespaces(&self, delay: Duration) {
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
        let names: Vec<&str> = terminating.iter().map(|(k, _)| k.name.as_str()).collect();
        inner
            .terminating_since
            .retain(|name, _| names.contains(&name.as_str()));
        for (nskey, ns) in terminating {
            let since = *inner
                .terminating_since
                .entry(nskey.name.clone())
                .or_insert_with(Instant::now);
            if !delete_content(&mut inner, &nskey.name) || since.elapsed() < delay {
                continue;
            }
            inner.terminating_since.remove(&nskey.name);
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

/// Deletes everything in namespace `ns`; whether nothing is left (objects
/// with finalizers stay until those are removed).
fn delete_content(inner: &mut Inner, ns: &str) -> bool {
    let content: Vec<(Key, Value)> = inner
        .objects
        .iter()
        .filter(|(k, _)| !k.namespace.is_empty() && k.namespace == ns)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut left = false;
    for (key, obj) in content {
        let Some(rt) = resources::RESOURCES.get(key.resource) else {
            continue;
        };
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            let _ = delete_locked(inner, rt, key.clone(), obj);
        }
        left |= inner.objects.contains_key(&key);
    }
    !left
}
