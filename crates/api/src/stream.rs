//! A run's timeline as Server-Sent Events, so clients can follow it live.
//!
//! Each event is sent with its id; a client that reconnects with
//! `Last-Event-ID` resumes after it. The stream ends once the run has ended and
//! every event is sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use hubwright_state::Store;
use hubwright_state::model::Event;
use uuid::Uuid;

/// How often the database is asked for new events while the run is live.
const POLL: Duration = Duration::from_millis(250);

struct Cursor {
    store: Store,
    run_id: Uuid,
    after: i64,
    pending: VecDeque<Event>,
    finished: bool,
    first: bool,
}

/// The events of `run_id` after event `after`, live.
pub fn follow(
    store: Store,
    run_id: Uuid,
    after: i64,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let cursor = Cursor {
        store,
        run_id,
        after,
        pending: VecDeque::new(),
        finished: false,
        first: true,
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok(to_sse(&event)), cursor));
            }
            if cursor.finished {
                return None;
            }
            if !cursor.first {
                tokio::time::sleep(POLL).await;
            }
            cursor.first = false;
            // The state is read before the events, so the events of the final
            // transition are sent before the stream ends.
            let ended = match cursor.store.run(cursor.run_id).await {
                Ok(run) => run.state.is_terminal(),
                Err(err) => {
                    tracing::warn!(error = %err, "event stream stopped");
                    return None;
                }
            };
            match cursor.store.events(cursor.run_id, cursor.after, 500).await {
                Ok(events) => {
                    if let Some(last) = events.last() {
                        cursor.after = last.id;
                    }
                    // A full page may have more behind it.
                    cursor.finished = ended && events.len() < 500;
                    cursor.pending.extend(events);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "event stream stopped");
                    return None;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn to_sse(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default()
        .id(event.id.to_string())
        .event(event.kind.as_str())
        .data(data)
}
