//! `/environments/{id}/events`: the API's event stream of the environment's
//! latest run, for the environment page's script, through the session.
//!
//! The API names each event by its kind (`event: step_started`); a browser's
//! `EventSource` hears named events only by listening for each name, and the
//! kinds are an open set. So the console drops the names (each event's data
//! still carries its `kind`), and the script hears every event as a message.
//! When the API's stream ends (the run has ended and every event is sent) the
//! console adds an `end` event, so the script stops instead of reconnecting.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use crate::Console;
use crate::api::{Api, segment};
use crate::pages::PageError;
use crate::session::Viewer;

/// What the console sends after the API's stream has ended.
const END: &[u8] = b"event: end\ndata: {}\n\n";

/// The live stream of the environment's latest run; `204 No Content` (which
/// tells a browser not to reconnect) when it has none.
pub(crate) async fn events(
    State(console): State<Console>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let api = Api::new(&console, &viewer, Some(peer));
    let environment: Value = api
        .get(&format!("/v1/environments/{}", segment(&id)))
        .await?;
    let Some(run) = environment["current_run"]["id"].as_str() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    // A browser that reconnects says where it got to; the API resumes there.
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let path = match after {
        Some(after) => format!("/v1/runs/{}/events?after={after}", segment(run)),
        None => format!("/v1/runs/{}/events", segment(run)),
    };
    let upstream = api.stream(&path).await;
    let is_stream = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    if !upstream.status().is_success() || !is_stream {
        // A refusal (too many open streams: 429 with `Retry-After`) as the
        // API gave it.
        return Ok(upstream);
    }
    Ok(unnamed(upstream))
}

/// The stream being passed on, and the part of a line not yet complete.
struct Relay {
    upstream: axum::body::BodyDataStream,
    partial: Vec<u8>,
    ended: bool,
}

/// Complete lines of `text` without the `event:` ones.
fn without_names(text: &[u8]) -> Vec<u8> {
    text.split_inclusive(|b| *b == b'\n')
        .filter(|line| !line.starts_with(b"event:"))
        .flatten()
        .copied()
        .collect()
}

/// `upstream`'s events without their names, then [`END`].
fn unnamed(upstream: Response) -> Response {
    let (mut parts, body) = upstream.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let relay = Relay {
        upstream: body.into_data_stream(),
        partial: Vec::new(),
        ended: false,
    };
    let stream = futures_util::stream::unfold(relay, |mut relay| async move {
        loop {
            if relay.ended {
                return None;
            }
            if let Some(last) = relay.partial.iter().rposition(|b| *b == b'\n') {
                let lines: Vec<u8> = relay.partial.drain(..=last).collect();
                let kept = without_names(&lines);
                if !kept.is_empty() {
                    return Some((Ok::<_, axum::Error>(Bytes::from(kept)), relay));
                }
                continue;
            }
            match relay.upstream.next().await {
                Some(Ok(chunk)) => relay.partial.extend_from_slice(&chunk),
                // Cut off: the browser reconnects and resumes.
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "console: an event stream was cut off");
                    return None;
                }
                None => {
                    relay.ended = true;
                    return Some((Ok(Bytes::from_static(END)), relay));
                }
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_dropped_and_the_rest_kept() {
        let sent = b"event: step_started\ndata: {\"kind\":\"step_started\"}\nid: 7\n\n:\n\n";
        assert_eq!(
            without_names(sent),
            b"data: {\"kind\":\"step_started\"}\nid: 7\n\n:\n\n".to_vec()
        );
    }

    #[tokio::test]
    async fn an_event_split_across_chunks_arrives_whole_and_the_stream_ends_with_end() {
        let chunks = [
            "event: run_succ",
            "eeded\ndata: {\"kind\":\"run_succeeded\"}\n",
            "id: 9\n\n",
        ];
        let body = Body::from_stream(futures_util::stream::iter(
            chunks.map(|chunk| Ok::<_, std::io::Error>(Bytes::from(chunk))),
        ));
        let relayed = unnamed(Response::new(body));
        let bytes = axum::body::to_bytes(relayed.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "data: {\"kind\":\"run_succeeded\"}\nid: 9\n\nevent: end\ndata: {}\n\n"
        );
    }
}
