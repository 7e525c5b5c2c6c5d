//! The audit middleware: every non-GET call to a `/v1` route is recorded
//! once, after its handler has answered, with who (the [`Caller`] the
//! handler resolved), what (an action named from the route template), which
//! target, from where (the TCP peer) and the outcome (status, and a
//! refusal's problem `type`). See docs/decisions/0017-audit-log.md.
//!
//! [`Caller`]: crate::auth::Caller

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use hubwright_state::model::Role;
use hubwright_state::store::audit::{AuditRecord, AuthKind, Channel, Outcome};
use serde_json::Value;

use crate::AppState;
use crate::auth::ConsoleUser;
use crate::error::Problem;

use super::action::{Action, path_parameter};

/// Largest answer body read for the target id and the problem `type`;
/// answers to state-changing calls are small JSON documents.
const MAX_PEEK: u64 = 256 * 1024;

/// Who made an audited request, as the [`crate::auth::Caller`] extractor
/// resolved them.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The caller's subject.
    pub subject: String,
    /// Their role.
    pub role: Role,
    /// Token or OpenID.
    pub auth: AuthKind,
}

/// Put into an audited request's extensions before its handler runs; the
/// `Caller` extractor fills it, because extensions the extractor sets on its
/// own request never come back out to the middleware.
#[derive(Debug, Clone, Default)]
pub struct ActorSlot(Arc<OnceLock<Actor>>);

impl ActorSlot {
    /// Records who the caller is (the first call wins).
    pub fn fill(&self, actor: Actor) {
        let _ = self.0.set(actor);
    }

    fn get(&self) -> Option<&Actor> {
        self.0.get()
    }
}

/// What the middleware knows of an audited request before its handler runs,
/// in the request's extensions: a handler whose action commits in a
/// transaction of its own (an environment's creation) writes the success
/// record there, atomically with the action, and says so; the middleware
/// then writes nothing for it (docs/decisions/0026-api-throughput.md).
#[derive(Debug, Clone)]
pub struct AuditTrail {
    actor: ActorSlot,
    action: Action,
    route: String,
    method: Method,
    path: String,
    client: Option<IpAddr>,
    channel: Channel,
    recorded: Arc<AtomicBool>,
}

impl AuditTrail {
    /// The record of this request answered with `status`, pointing at
    /// `location` (or carrying `body`): exactly what the middleware writes.
    fn entry(
        &self,
        at: DateTime<Utc>,
        status: StatusCode,
        location: Option<&str>,
        body: &Value,
    ) -> AuditRecord {
        let actor = self.actor.get();
        let mut entry = AuditRecord::new(
            at,
            actor.map(|a| a.subject.as_str()),
            actor.map_or(AuthKind::Unauthenticated, |a| a.auth),
            &self.action.name,
            if status.is_success() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        );
        entry.actor_role = actor.map(|a| a.role);
        entry.target_kind = Some(self.action.target_kind.clone());
        entry.target_id =
            self.action
                .target(location, path_parameter(&self.route, &self.path), body);
        entry.status = Some(status.as_u16());
        if !status.is_success() {
            entry.problem_type = body["type"].as_str().map(str::to_owned);
            entry.detail = body["detail"].as_str().map(str::to_owned);
        }
        entry.client_addr = self.client;
        entry.method = Some(self.method.to_string());
        entry.path = Some(self.path.clone());
        entry.channel = Some(self.channel);
        entry
    }

    /// The record of this request succeeding with `status`, for the handler
    /// to write in its own transaction; its target id is for the store to
    /// fill in (it is known only there, e.g. a pool member's).
    pub fn success(&self, at: DateTime<Utc>, status: StatusCode) -> AuditRecord {
        let mut entry = self.entry(at, status, None, &Value::Null);
        entry.target_id = None;
        entry
    }

    /// The handler has committed this request's success record with its
    /// action: the middleware writes none.
    pub fn mark_recorded(&self) {
        self.recorded.store(true, Ordering::Release);
    }

    fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Acquire)
    }
}

/// Records every non-GET `/v1` call once its handler has answered. The
/// handler runs in a task of its own, so a client that goes away (or a
/// handler timeout) does not cut the action apart from its record. A failed
/// write is logged and counted (`hubwright_audit_write_failures_total`),
/// never answered: the action has happened. A success the handler recorded
/// in its own transaction ([`AuditTrail::mark_recorded`]) is not written
/// again.
pub async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .filter(|_| !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS))
    else {
        return next.run(request).await;
    };
    let trail = AuditTrail {
        actor: ActorSlot::default(),
        action: Action::of(&method, &route),
        path: request.uri().path().to_owned(),
        client: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip()),
        // Only the console's in-process calls carry its user; no HTTP
        // client can set an extension.
        channel: if request.extensions().get::<ConsoleUser>().is_some() {
            Channel::Console
        } else {
            Channel::Api
        },
        route,
        method,
        recorded: Arc::default(),
    };
    request.extensions_mut().insert(trail.actor.clone());
    request.extensions_mut().insert(trail.clone());
    // The handler keeps the request's span (its id, its trace) in its task.
    let span = tracing::Span::current();
    let task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            let response = match std::panic::AssertUnwindSafe(next.run(request))
                .catch_unwind()
                .await
            {
                Ok(response) => response,
                Err(_) => {
                    tracing::error!(route = %format!("{} {}", trail.method, trail.path), "handler panicked");
                    Problem::internal().into_response()
                }
            };
            // A 429 is a throttle, not an attempt the handler saw; recording
            // each would let a flood write without bound (docs/operations.md).
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                return response;
            }
            let status = response.status();
            if status.is_success() && trail.recorded() {
                return response;
            }
            let (response, body) = peek_json(response).await;
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let entry = trail.entry(state.clock.now(), status, location, &body);
            if let Err(err) = state.store.record_audit(&entry).await {
                metrics::counter!(crate::metrics::AUDIT_WRITE_FAILURES).increment(1);
                tracing::error!(error = %err, action = %entry.action, actor = ?entry.actor,
                target = ?entry.target_id, status = status.as_u16(), "could not record an audit entry");
            }
            response
        },
        span,
    ));
    match task.await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "the audited request's task failed");
            Problem::internal().into_response()
        }
    }
}

/// The answer, and its body as JSON when it is a small JSON document
/// (`Null` otherwise; a stream is never read).
async fn peek_json(response: Response) -> (Response, Value) {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let small = axum::body::HttpBody::size_hint(response.body())
        .exact()
        .is_some_and(|n| n <= MAX_PEEK);
    if !is_json || !small {
        return (response, Value::Null);
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, usize::try_from(MAX_PEEK).unwrap_or(usize::MAX)).await {
        Ok(bytes) => {
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (Response::from_parts(parts, Body::from(bytes)), value)
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not read an audited answer");
            (Response::from_parts(parts, Body::empty()), Value::Null)
        }
    }
}
