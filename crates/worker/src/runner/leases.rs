//! The leases a worker holds, and the heartbeat that keeps them.
//!
//! Every run a worker executes has an entry here with its fencing token, when
//! its lease runs out as far as the worker knows, and a signal. The heartbeat
//! extends all leases in one statement; a run missing from the answer was lost
//! (the lease expired and another worker took it, or the run ended) and its
//! task is told to abandon the step in flight. While the database is away the
//! heartbeat tries again every second or so instead of waiting for its next
//! beat, so leases are extended as soon as it is back, before they run out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use super::{Shared, outage_backoff};

/// What the heartbeat learned about a run since the step started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseSignal {
    /// Still ours.
    Held,
    /// An operator asked to cancel the run.
    CancelRequested,
    /// Another worker owns the run now, or it ended: write nothing more.
    Lost,
}

#[derive(Debug)]
struct Entry {
    token: i64,
    /// When the lease runs out unless extended: the `now` the claim or the
    /// last successful heartbeat sent, plus the lease. Commits retry until
    /// shortly before it.
    expires_at: DateTime<Utc>,
    signal: watch::Sender<LeaseSignal>,
}

/// The table of held leases.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    entries: Mutex<HashMap<Uuid, Entry>>,
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a claimed run; the guard forgets it again when dropped, whatever
    /// way the run's task ends.
    pub(crate) fn hold(
        self: &Arc<Self>,
        run_id: Uuid,
        token: i64,
        expires_at: DateTime<Utc>,
    ) -> (LeaseGuard, watch::Receiver<LeaseSignal>) {
        let (signal, receiver) = watch::channel(LeaseSignal::Held);
        self.lock().insert(
            run_id,
            Entry {
                token,
                expires_at,
                signal,
            },
        );
        let guard = LeaseGuard {
            leases: Arc::clone(self),
            run_id,
        };
        (guard, receiver)
    }

    /// Every held (run, token).
    pub(crate) fn snapshot(&self) -> Vec<(Uuid, i64)> {
        self.lock().iter().map(|(id, e)| (*id, e.token)).collect()
    }

    /// When the run's lease runs out, if this worker still holds it.
    pub(crate) fn expires_at(&self, run_id: Uuid) -> Option<DateTime<Utc>> {
        self.lock().get(&run_id).map(|entry| entry.expires_at)
    }

    /// Records that a heartbeat extended the run's lease to `expires_at`.
    fn extended(&self, run_id: Uuid, token: i64, expires_at: DateTime<Utc>) {
        if let Some(entry) = self.lock().get_mut(&run_id)
            && entry.token == token
        {
            entry.expires_at = expires_at;
        }
    }

    /// Tells a run's task what the heartbeat found.
    fn signal(&self, run_id: Uuid, token: i64, signal: LeaseSignal) {
        if let Some(entry) = self.lock().get(&run_id)
            && entry.token == token
        {
            entry.signal.send_replace(signal);
        }
    }
}

/// Removes a run from the lease table when its task ends.
#[derive(Debug)]
pub(crate) struct LeaseGuard {
    leases: Arc<Leases>,
    run_id: Uuid,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.leases.lock().remove(&self.run_id);
    }
}

/// Extends every held lease each `heartbeat_interval` until the process
/// stops. A failed beat is tried again with a short backoff until one
/// succeeds, rather than at the next beat, which may come after the leases
/// ran out.
pub(crate) async fn heartbeat(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut delays = outage_backoff().build();
        let mut failures = 0_u32;
        loop {
            match refresh(&shared).await {
                Ok(held) => {
                    if failures > 0 {
                        tracing::info!(
                            leases = held,
                            failures,
                            "database reachable again; leases refreshed"
                        );
                        // Runs this worker gave up meanwhile are due for rescue.
                        shared.rescue_soon.notify_one();
                    }
                    break;
                }
                Err(err) => {
                    failures += 1;
                    tracing::warn!(error = %err, failures, "heartbeat failed; retrying");
                    shared.rescue_soon.notify_one();
                    let delay = delays.next().unwrap_or(super::OUTAGE_MAX_DELAY);
                    tokio::time::sleep(delay).await;
                }
            }
        }
        // The next beat a whole interval after this one, not at once to make
        // up for the ones missed.
        tick.reset();
    }
}

/// One heartbeat: extends every held lease and tells the runs that lost
/// theirs. Returns how many leases are still held. Each attempt gets at most a
/// beat's interval, so a connection that hangs rather than fails does not hold
/// the leases up past their end.
pub(crate) async fn refresh(shared: &Shared) -> Result<usize, String> {
    let held = shared.leases.snapshot();
    if held.is_empty() {
        return Ok(0);
    }
    let now = shared.clock.now();
    let expires_at = now + shared.lease();
    let beat = shared.store.heartbeat(&held, shared.lease(), now);
    let alive = match tokio::time::timeout(shared.config.heartbeat_interval(), beat).await {
        Ok(Ok(alive)) => alive,
        Ok(Err(err)) => return Err(err.to_string()),
        Err(_) => {
            return Err(format!(
                "no answer within {:?}",
                shared.config.heartbeat_interval()
            ));
        }
    };
    let alive: HashMap<Uuid, bool> = alive
        .iter()
        .map(|h| (h.run_id, h.cancel_requested))
        .collect();
    for (run_id, token) in held {
        match alive.get(&run_id) {
            Some(cancel_requested) => {
                shared.leases.extended(run_id, token, expires_at);
                if *cancel_requested {
                    shared
                        .leases
                        .signal(run_id, token, LeaseSignal::CancelRequested);
                }
            }
            None => shared.leases.signal(run_id, token, LeaseSignal::Lost),
        }
    }
    Ok(alive.len())
}
