//! The object store: objects by (resource, namespace, name), one global
//! resourceVersion counter, and the event history watches replay from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::resources::{RESOURCES, ResourceType};
use super::selector::Selector;
use super::status::{ApiError, ApiResult};

/// Where an object lives: index into [`RESOURCES`], namespace (`""` when
/// cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Index of the resource type in [`RESOURCES`].
    pub resource: usize,
    /// Namespace, empty for cluster-scoped kinds.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl Key {
    /// The key of `name` in `namespace` of `rt`.
    pub fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        let resource = RESOURCES.iter().position(|r| r == rt).unwrap_or(usize::MAX);
        let namespace = if rt.namespaced {
            namespace.to_owned()
        } else {
            String::new()
        };
        Key {
            resource,
            namespace,
            name: name.to_owned(),
        }
    }
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// An object was created.
    Added,
    /// An object changed.
    Modified,
    /// An object was removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Which object.
    pub key: Key,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for DELETED: its last state, with the new rv).
    pub object: Value,
    /// The object before the change, so a filtered watch can turn a change
    /// that leaves its selector into DELETED and one that enters it into ADDED.
    pub prev: Option<Value>,
}

/// Mutable state behind the store's lock.
#[derive(Debug)]
pub struct Inner {
    /// The last resourceVersion handed out.
    pub rv: u64,
    /// Every object.
    pub objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Highest resourceVersion no longer in the history; watches from before it get 410.
    compacted: u64,
    tx: broadcast::Sender<Arc<Event>>,
    /// When the namespace controller first saw each terminating namespace,
    /// so that it finishes only after the termination delay.
    pub terminating_since: HashMap<String, Instant>,
}

impl Inner {
    /// Stores `object` at `key` with a fresh resourceVersion and records the event.
    pub fn commit(&mut self, key: Key, mut object: Value, kind: EventType) -> Value {
        self.rv += 1;
        let rv = self.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let prev = self.objects.get(&key).cloned();
        match kind {
            EventType::Deleted => {
                self.objects.remove(&key);
            }
            _ => {
                self.objects.insert(key.clone(), object.clone());
            }
        }
        let event = Arc::new(Event {
            rv,
            key,
            kind,
            object: object.clone(),
            prev,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine.
        let _ = self.tx.send(event);
        object
    }
}

/// The store shared by the request handlers and the namespace controller.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    /// Wakes the controllers when a namespace is created, so that its
    /// `kube-root-ca.crt` follows within moments, as on a real cluster.
    wake: tokio::sync::Notify,
}

/// What a new watch starts with.
#[derive(Debug)]
pub struct Subscription {
    /// Events to send before live ones.
    pub initial: Vec<Arc<Event>>,
    /// Live events.
    pub rx: broadcast::Receiver<Arc<Event>>,
    /// The resourceVersion the watch is at after `initial`.
    pub rv: u64,
}

impl Store {
    /// An empty store keeping `history_limit` events for watches.
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        Store {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_limit,
                compacted: 0,
                tx,
                terminating_since: HashMap::new(),
            }),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Wakes the controllers before their next pass is due.
    pub fn wake_controllers(&self) {
        self.wake.notify_one();
    }

    /// Until [`Store::wake_controllers`] is called.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the whole event history, as etcd compaction does.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.compacted = inner.rv;
        inner.history.clear();
    }

    /// The object at `rt/ns/name`, or 404.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        self.lock()
            .objects
            .get(&Key::new(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// The list object for `rt` (in `ns` when given) filtered by `sel`.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>, sel: &Selector) -> Value {
        let inner = self.lock();
        let items: Vec<Value> = inner
            .objects
            .iter()
            .filter(|(k, _)| in_scope(k, rt, ns))
            .filter(|(_, v)| sel.matches(v))
            .map(|(_, v)| {
                let mut item = v.clone();
                // The real server omits apiVersion and kind in list items.
                if let Value::Object(m) = &mut item {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                item
            })
            .collect();
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": { "resourceVersion": inner.rv.to_string() },
            "items": items,
        })
    }

    /// Starts a watch of `rt` in `ns`: from `since` (replaying the history), or
    /// with synthetic ADDED events for what exists when `since` is None.
    /// `Err(compacted)` when `since` is older than the kept history.
    pub fn subscribe(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        since: Option<u64>,
    ) -> Result<Subscription, u64> {
        let inner = self.lock();
        let rx = inner.tx.subscribe();
        let initial = match since {
            Some(since) if since < inner.compacted => return Err(inner.compacted),
            Some(since) => inner
                .history
                .iter()
                .filter(|e| e.rv > since && in_scope(&e.key, rt, ns))
                .cloned()
                .collect(),
            None => inner
                .objects
                .iter()
                .filter(|(k, _)| in_scope(k, rt, ns))
                .map(|(k, v)| {
                    Arc::new(Event {
                        rv: 0,
                        key: k.clone(),
                        kind: EventType::Added,
                        object: v.clone(),
                        prev: None,
                    })
                })
                .collect(),
        };
        Ok(Subscription {
            initial,
            rx,
            rv: inner.rv,
        })
    }
}

/// Whether `key` belongs to `rt`, in `ns` when given.
pub fn in_scope(key: &Key, rt: &ResourceType, ns: Option<&str>) -> bool {
    RESOURCES.get(key.resource) == Some(rt) && ns.is_none_or(|ns| key.namespace == ns)
}
