//! Watch: a chunked stream of JSON lines `{"type":..,"object":..}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::resources::ResourceType;
use super::selector::Selector;
use super::status::status_body;
use super::store::{Event, EventType, Store, in_scope};

/// What a watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// The resource type watched.
    pub rt: &'static ResourceType,
    /// Only this namespace, when set.
    pub namespace: Option<String>,
    /// Label and field selector.
    pub selector: Selector,
    /// Start after this resourceVersion; None (or "0") sends the current state first.
    pub since: Option<u64>,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// How often to send bookmarks when allowed.
    pub bookmark_interval: Duration,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({ "type": kind, "object": object }).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// The line for `event` as seen through `selector`, if the watcher sees it.
fn render(event: &Event, selector: &Selector) -> Option<Bytes> {
    let now = selector.matches(&event.object);
    let before = event.prev.as_ref().is_some_and(|p| selector.matches(p));
    match event.kind {
        EventType::Added | EventType::Deleted if now => {
            Some(line(event.kind.as_str(), &event.object))
        }
        EventType::Modified => match (before, now) {
            (true, true) => Some(line("MODIFIED", &event.object)),
            (false, true) => Some(line("ADDED", &event.object)),
            (true, false) => {
                let mut old = event.prev.clone().unwrap_or(Value::Null);
                old["metadata"]["resourceVersion"] = json!(event.rv.to_string());
                Some(line("DELETED", &old))
            }
            (false, false) => None,
        },
        _ => None,
    }
}

fn expired(message: &str) -> Bytes {
    line("ERROR", &status_body(410, "Expired", message, None))
}

/// Starts the watch and returns the streaming response.
pub fn respond(store: &Arc<Store>, req: WatchRequest) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    match store.subscribe(req.rt, req.namespace.as_deref(), req.since) {
        Err(compacted) => {
            let since = req.since.unwrap_or(0);
            let _ = tx.try_send(expired(&format!(
                "too old resource version: {since} ({})",
                compacted + 1
            )));
        }
        Ok(sub) => {
            tokio::spawn(pump(req, sub.initial, sub.rx, sub.rv, tx));
        }
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

async fn pump(
    req: WatchRequest,
    initial: Vec<Arc<Event>>,
    mut rx: broadcast::Receiver<Arc<Event>>,
    mut rv: u64,
    tx: mpsc::Sender<Bytes>,
) {
    for e in initial {
        if let Some(b) = render(&e, &req.selector)
            && tx.send(b).await.is_err()
        {
            return;
        }
    }
    let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut bookmark = tokio::time::interval(req.bookmark_interval);
    bookmark.tick().await;
    loop {
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            _ = timeout => return,
            _ = tx.closed() => return,
            _ = bookmark.tick(), if req.bookmarks => {
                let object = json!({
                    "kind": req.rt.kind,
                    "apiVersion": req.rt.api_version(),
                    "metadata": { "resourceVersion": rv.to_string(), "creationTimestamp": null },
                });
                Some(line("BOOKMARK", &object))
            }
            event = rx.recv() => match event {
                Ok(e) => {
                    rv = rv.max(e.rv);
                    if in_scope(&e.key, req.rt, req.namespace.as_deref()) { render(&e, &req.selector) } else { None }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx.send(expired("too old resource version: watcher fell behind")).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if let Some(b) = next
            && tx.send(b).await.is_err()
        {
            return;
        }
    }
}
