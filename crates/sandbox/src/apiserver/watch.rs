//! Watch: a chunked stream of JSON lines `{"type":..,"object":..}`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::selector::Selector;
use super::status::status_body;
use super::store::{Event, EventType, Store, in_scope};
use super::watch_options::{INITIAL_EVENTS_END, WatchRequest};

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

/// A BOOKMARK's object at `rv`; `initial_end` marks the end of the initial
/// events of a `sendInitialEvents=true` watch.
fn bookmark_object(req: &WatchRequest, rv: u64, initial_end: bool) -> Value {
    let mut object = json!({
        "kind": req.rt.kind,
        "apiVersion": req.rt.api_version(),
        "metadata": { "resourceVersion": rv.to_string(), "creationTimestamp": null },
    });
    if initial_end {
        object["metadata"]["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
    }
    object
}

/// Starts the watch and returns the streaming response.
pub fn respond(store: &Arc<Store>, req: WatchRequest) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    // Initial events are the current state, whatever the resourceVersion.
    let since = if req.send_initial_events.is_some() {
        None
    } else {
        req.since
    };
    match store.subscribe(req.rt, req.namespace.as_deref(), since) {
        Err(compacted) => {
            let since = req.since.unwrap_or(0);
            let _ = tx.try_send(expired(&format!(
                "too old resource version: {since} ({})",
                compacted + 1
            )));
        }
        Ok(mut sub) => {
            if req.send_initial_events == Some(false) {
                sub.initial.clear();
            }
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
    if req.send_initial_events == Some(true)
        && req.bookmarks
        && tx
            .send(line("BOOKMARK", &bookmark_object(&req, rv, true)))
            .await
            .is_err()
    {
        return;
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
                Some(line("BOOKMARK", &bookmark_object(&req, rv, false)))
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
