//! The leases a worker holds, and the heartbeat that keeps them.
//!
//! Every run a worker executes has an entry here with its fencing token and a
//! signal. The heartbeat extends all leases in one statement; a run missing from
//! the answer was lost (the lease expired and another worker took it, or the
//! run ended) and its task is told to abandon the step in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use uuid::Uuid;

use super::Shared;

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
    ) -> (LeaseGuard, watch::Receiver<LeaseSignal>) {
        let (signal, receiver) = watch::channel(LeaseSignal::Held);
        self.lock().insert(run_id, Entry { token, signal });
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

/// Extends every held lease each `heartbeat_interval` until the process stops.
pub(crate) async fn heartbeat(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let held = shared.leases.snapshot();
        if held.is_empty() {
            continue;
        }
        let lease =
            chrono::Duration::from_std(shared.config.lease).unwrap_or(chrono::Duration::MAX);
        match shared
            .store
            .heartbeat(&held, lease, shared.clock.now())
            .await
        {
            Ok(alive) => {
                let alive: HashMap<Uuid, bool> = alive
                    .iter()
                    .map(|h| (h.run_id, h.cancel_requested))
                    .collect();
                for (run_id, token) in held {
                    let signal = match alive.get(&run_id) {
                        Some(true) => LeaseSignal::CancelRequested,
                        Some(false) => continue,
                        None => LeaseSignal::Lost,
                    };
                    shared.leases.signal(run_id, token, signal);
                }
            }
            // The lease may still be valid; the next beat tries again, and a
            // commit under an expired lease is refused by the fencing token.
            Err(err) => tracing::warn!(error = %err, "heartbeat failed"),
        }
    }
}
