//! Live regions' event streams: a run's timeline from the API, re-framed for
//! the console's script.
//!
//! The API names each event by its kind (`event: step_succeeded`), and a
//! browser's `EventSource` has no way to listen to every name at once. The
//! script does not care which kind came, only that something did, so the
//! names are dropped here: every event arrives as a plain message (ids kept,
//! so a reconnecting browser resumes after the last one it saw). When the
//! API's stream ends (the run ended and every event was sent) an `end` event
//! follows, and the script stops listening instead of reconnecting forever.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures_util::StreamExt;

use crate::api::Api;

/// What ends a re-framed stream: the script closes its `EventSource` on it.
const END: &[u8] = b"event: end\ndata: {}\n\n";

/// `path` (an API event stream, e.g. `/v1/runs/{id}/events?after=12`) as the
/// console's script reads it; a refusal (404, 429) passes through as it is.
pub async fn events(api: &Api<'_>, path: &str) -> Response {
    let response = api.stream(path).await;
    let is_stream = response.status().is_success()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
    if !is_stream {
        return response;
    }
    let (parts, body) = response.into_parts();
    let upstream = body.into_data_stream();
    let reframed = futures_util::stream::unfold(
        (upstream, Vec::new(), false),
        |(mut upstream, mut pending, ended)| async move {
            if ended {
                return None;
            }
            loop {
                // Whole lines only: a chunk may end in the middle of one.
                if let Some(last) = pending.iter().rposition(|&b| b == b'\n') {
                    let rest = pending.split_off(last + 1);
                    let lines = unnamed(&pending);
                    pending = rest;
                    if !lines.is_empty() {
                        return Some((Ok::<_, std::io::Error>(lines), (upstream, pending, false)));
                    }
                }
                match upstream.next().await {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    // Cut off: the browser reconnects and resumes after
                    // the last id it saw.
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "console: an event stream was cut off");
                        return None;
                    }
                    // The run ended (or its session did, or the server stops).
                    None => {
                        return Some((Ok(Bytes::from_static(END)), (upstream, pending, true)));
                    }
                }
            }
        },
    );
    Response::from_parts(parts, Body::from_stream(reframed))
}

/// `lines` (whole lines of an event stream) without their `event:` lines.
fn unnamed(lines: &[u8]) -> Bytes {
    let kept: Vec<u8> = lines
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b"event:"))
        .flatten()
        .copied()
        .collect();
    Bytes::from(kept)
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_names_are_dropped_and_ids_and_data_kept() {
        let framed = super::unnamed(
            b"id: 7\nevent: step_succeeded\ndata: {\"kind\":\"step_succeeded\"}\n\n:keep-alive\n",
        );
        assert_eq!(
            &framed[..],
            b"id: 7\ndata: {\"kind\":\"step_succeeded\"}\n\n:keep-alive\n"
        );
    }
}
