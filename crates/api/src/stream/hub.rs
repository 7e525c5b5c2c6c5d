//! One fan-out for every event stream of the process. A single listener
//! (LISTEN on `hubwright_events`, which the `events_notify` trigger sends on)
//! tells each followed run's watch channel its newest event id; a stream
//! wakes when that passes its cursor and reads with one query. Notifications
//! lost while the listener reconnects, or missed otherwise, are caught by one
//! query over every followed run at reconnect and every fallback interval.
//! The same hub counts streams per credential and in total, and re-checks
//! each credential (one query for every hubwright token, a local verification
//! for each OpenID token) so a revoked token's streams end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hubwright_state::Store;
use hubwright_state::store::event_feed::token_fingerprint;
use tokio::sync::watch;
use uuid::Uuid;

use crate::oidc::OidcVerifier;

/// How many event streams may be open and how often they are checked.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// Open streams one credential may hold.
    pub per_token: usize,
    /// Open streams of the whole process.
    pub total: usize,
    /// How often each open stream's credential is checked again.
    pub recheck: Duration,
    /// How often the newest events of followed runs are read in case a
    /// notification was missed.
    pub fallback: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            per_token: 20,
            total: 1000,
            recheck: Duration::from_secs(5),
            fallback: Duration::from_secs(30),
        }
    }
}

/// What a stream is held with, checked again while it is open.
#[derive(Clone)]
pub enum Credential {
    /// A hubwright token, by its fingerprint (never the secret).
    Token(String),
    /// An OpenID provider's JWT, verified again (so its expiry ends the stream).
    Jwt(String),
    /// A web console session, by the hash of its secret: signing out, its
    /// expiry or its token's revocation ends the stream.
    Session(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Token(_) => "Token(<fingerprint>)",
            Self::Jwt(_) => "Jwt(<redacted>)",
            Self::Session(_) => "Session(<hash>)",
        })
    }
}

impl Credential {
    /// What streams are counted by: the same token is the same key.
    pub(super) fn key(&self) -> String {
        match self {
            Self::Token(fingerprint) => fingerprint.clone(),
            Self::Jwt(jwt) => token_fingerprint(jwt),
            Self::Session(hash) => format!("session:{hash}"),
        }
    }
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The credential already holds this many streams.
    PerToken(usize),
    /// The process already holds this many streams.
    Total(usize),
}

/// The process's event streams. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Streams {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    store: Store,
    pub(super) oidc: Option<Arc<OidcVerifier>>,
    limits: StreamLimits,
    pub(super) shared: Mutex<Shared>,
    /// Set once the server stops: every stream ends, so connections close.
    closed: watch::Sender<bool>,
    /// The listener and re-check tasks, started with the first stream.
    tasks: Mutex<Option<Vec<tokio::task::AbortHandle>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The tasks hold only weak references; stop them with the hub so
        // their database connection goes back to the pool.
        if let Some(tasks) = lock(&self.tasks).take() {
            tasks.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Shared {
    runs: HashMap<Uuid, RunEntry>,
    pub(super) tokens: HashMap<String, TokenEntry>,
    open: usize,
}

#[derive(Debug)]
struct RunEntry {
    newest: watch::Sender<i64>,
    streams: usize,
}

#[derive(Debug)]
pub(super) struct TokenEntry {
    pub(super) credential: Credential,
    pub(super) streams: usize,
    pub(super) revoked: watch::Sender<bool>,
}

/// An open stream's place in the hub; dropping it gives the place back.
#[derive(Debug)]
pub struct Ticket {
    inner: Arc<Inner>,
    run_id: Uuid,
    key: String,
    /// The run's newest event id as far as the hub knows.
    pub(super) newest: watch::Receiver<i64>,
    /// Turns true when the credential stops authenticating.
    pub(super) revoked: watch::Receiver<bool>,
    /// Turns true when the server stops.
    pub(super) closed: watch::Receiver<bool>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut shared = lock(&self.inner.shared);
        shared.open = shared.open.saturating_sub(1);
        if let Some(run) = shared.runs.get_mut(&self.run_id) {
            run.streams -= 1;
            if run.streams == 0 {
                shared.runs.remove(&self.run_id);
            }
        }
        if let Some(token) = shared.tokens.get_mut(&self.key) {
            token.streams -= 1;
            if token.streams == 0 {
                shared.tokens.remove(&self.key);
            }
        }
        metrics::gauge!(crate::metrics::EVENT_STREAMS).set(shared.open as f64);
    }
}

/// Resolves once `flag` is true (or its sender is gone), holding no borrow.
pub(super) async fn until_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// A poisoned lock only means a panic elsewhere; the counts are still usable.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Streams {
    /// A hub over `store`; OpenID tokens are checked again with `oidc`.
    pub fn new(store: Store, oidc: Option<Arc<OidcVerifier>>, limits: StreamLimits) -> Self {
        let (closed, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                store,
                oidc,
                limits,
                shared: Mutex::new(Shared::default()),
                closed,
                tasks: Mutex::new(None),
            }),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &StreamLimits {
        &self.inner.limits
    }

    /// A place for a stream of `run_id` held with `credential`, unless a cap
    /// is reached.
    pub fn open(&self, run_id: Uuid, credential: Credential) -> Result<Ticket, Refused> {
        let limits = &self.inner.limits;
        let key = credential.key();
        let (newest, revoked) = {
            let mut shared = lock(&self.inner.shared);
            if shared.open >= limits.total {
                return Err(Refused::Total(limits.total));
            }
            let held = shared.tokens.get(&key).map_or(0, |token| token.streams);
            if held >= limits.per_token {
                return Err(Refused::PerToken(limits.per_token));
            }
            shared.open += 1;
            metrics::gauge!(crate::metrics::EVENT_STREAMS).set(shared.open as f64);
            let token = shared
                .tokens
                .entry(key.clone())
                .or_insert_with(|| TokenEntry {
                    credential,
                    streams: 0,
                    revoked: watch::channel(false).0,
                });
            token.streams += 1;
            let revoked = token.revoked.subscribe();
            let run = shared.runs.entry(run_id).or_insert_with(|| RunEntry {
                newest: watch::channel(0).0,
                streams: 0,
            });
            run.streams += 1;
            (run.newest.subscribe(), revoked)
        };
        self.start_tasks();
        Ok(Ticket {
            inner: Arc::clone(&self.inner),
            run_id,
            key,
            newest,
            revoked,
            closed: self.inner.closed.subscribe(),
        })
    }

    /// Ends every stream, now and from now on: the server is stopping.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Starts the listener and the re-check once, with the first stream; a
    /// process that never streams holds no listening connection.
    fn start_tasks(&self) {
        let mut tasks = lock(&self.inner.tasks);
        if tasks.is_some() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let listen = tokio::spawn(super::tasks::listen(
            weak.clone(),
            self.inner.store.clone(),
            self.inner.limits.fallback,
            self.inner.closed.subscribe(),
        ));
        let recheck = tokio::spawn(super::tasks::recheck(
            weak,
            self.inner.store.clone(),
            self.inner.limits.recheck,
            self.inner.closed.subscribe(),
        ));
        *tasks = Some(vec![listen.abort_handle(), recheck.abort_handle()]);
    }
}

impl Inner {
    /// Run `run_id` has events up to `newest`: wake its streams.
    pub(super) fn announce(&self, run_id: Uuid, newest: i64) {
        if let Some(run) = lock(&self.shared).runs.get(&run_id) {
            run.newest.send_if_modified(|known| {
                let later = newest > *known;
                if later {
                    *known = newest;
                }
                later
            });
        }
    }

    pub(super) fn followed_runs(&self) -> Vec<Uuid> {
        lock(&self.shared).runs.keys().copied().collect()
    }
}
