//! A run's timeline as Server-Sent Events, so clients can follow it live.
//!
//! Each event is sent with its id; a client that reconnects with
//! `Last-Event-ID` resumes after it. The stream ends once the run has ended
//! and every event is sent, when the caller's token stops authenticating
//! (re-checked every `--stream-recheck-interval`), or when the server stops.
//! Streams do not poll: the process's one listener wakes them ([`hub`]).

pub mod hub;
mod tasks;

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use hubwright_state::Store;
use hubwright_state::model::Event;
use hubwright_state::store::event_feed::token_fingerprint;
use uuid::Uuid;

use crate::AppState;
use crate::auth::ConsoleUser;
use crate::error::Problem;
use crate::oidc::OidcVerifier;
use hub::{Credential, Refused, Ticket};

/// Events read at once; a full page is followed by another read at once.
const PAGE: i64 = 500;

/// Seconds a refused client is told to wait: streams are long-lived, so a
/// place frees up no sooner than one ends.
const RETRY_AFTER_SECS: u32 = 10;

struct Cursor {
    store: Store,
    ticket: Ticket,
    run_id: Uuid,
    after: i64,
    pending: VecDeque<Event>,
    /// Whether to read now rather than wait for a wake-up.
    read: bool,
    finished: bool,
}

/// Opens the live stream of `run_id` after event `after` for an
/// authenticated request (its `Authorization` header says which credential
/// to re-check), or 429 with `Retry-After` past a cap.
pub fn open(
    state: &AppState,
    headers: &HeaderMap,
    console: Option<&ConsoleUser>,
    run_id: Uuid,
    after: i64,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    // The same rule as authentication: a JWT goes to the provider when one is set.
    let credential = if let Some(user) = console {
        Credential::Session(user.session_hash.clone())
    } else if state.oidc.is_some() && OidcVerifier::looks_like_jwt(bearer) {
        Credential::Jwt(bearer.to_owned())
    } else {
        Credential::Token(token_fingerprint(bearer))
    };
    match state.streams.open(run_id, credential) {
        Ok(ticket) => follow(state.store.clone(), ticket, run_id, after).into_response(),
        Err(refused) => {
            let detail = match refused {
                Refused::PerToken(cap) => format!(
                    "this token already holds {cap} open event streams, the most it may; close one first"
                ),
                Refused::Total(cap) => format!(
                    "the server already holds {cap} open event streams, the most it may; try again later"
                ),
            };
            let mut response = Problem::too_many_streams(detail).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            response
        }
    }
}

/// The events of `run_id` after event `after`, live, while `ticket` holds.
fn follow(
    store: Store,
    ticket: Ticket,
    run_id: Uuid,
    after: i64,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let cursor = Cursor {
        store,
        ticket,
        run_id,
        after,
        pending: VecDeque::new(),
        read: true,
        finished: false,
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok(to_sse(&event)), cursor));
            }
            if cursor.finished {
                return None;
            }
            if cursor.read {
                let page = match cursor
                    .store
                    .events_since(cursor.run_id, cursor.after, PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::warn!(error = %err, "event stream stopped");
                        return None;
                    }
                };
                if let Some(last) = page.events.last() {
                    cursor.after = last.id;
                }
                // A full page may have more behind it.
                let full = page.events.len() as i64 >= PAGE;
                cursor.read = full;
                cursor.finished = page.ended && !full;
                cursor.pending.extend(page.events);
                continue;
            }
            let ticket = &mut cursor.ticket;
            tokio::select! {
                changed = ticket.newest.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    cursor.read = *ticket.newest.borrow_and_update() > cursor.after;
                }
                () = hub::until_true(&mut ticket.revoked) => {
                    tracing::info!(run_id = %cursor.run_id, "event stream ended: its token no longer authenticates");
                    return None;
                }
                () = hub::until_true(&mut ticket.closed) => return None,
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
