//! The rescuer: returns runs of dead or hung workers to the queue, and starts
//! teardowns that waited for a run to stop.
//!
//! It runs every `rescue_interval`, and at once when a database call of this
//! worker failed ([`Shared::rescue_soon`]): then it tries until the database
//! answers again, refreshes the leases this worker still holds (so its own
//! live runs are not taken for dead), and rescues the runs whose lease ran
//! out during the outage. Those resume within about a second of the database
//! coming back instead of at the next round.

use std::sync::Arc;

use backon::BackoffBuilder;
use tokio::sync::Notify;

use super::{OUTAGE_MAX_DELAY, Shared, leases, outage_backoff};

/// Runs until the worker stops.
pub(super) async fn rescue(shared: Arc<Shared>, wake: Arc<Notify>) {
    let mut tick = tokio::time::interval(shared.config.rescue_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let after_failure = tokio::select! {
            _ = tick.tick() => false,
            () = shared.rescue_soon.notified() => true,
        };
        let mut delays = outage_backoff().build();
        let mut failures = 0_u32;
        loop {
            match round(&shared, &wake, after_failure || failures > 0).await {
                Ok(()) => break,
                Err(err) => {
                    failures += 1;
                    tracing::warn!(error = %err, failures, "rescue failed; retrying");
                    tokio::time::sleep(delays.next().unwrap_or(OUTAGE_MAX_DELAY)).await;
                }
            }
        }
    }
}

/// One round. After a failure the leases still held are refreshed first: the
/// heartbeat may not have caught up yet, and a run of this worker whose lease
/// looks expired only because the database was away is not rescued from it.
async fn round(shared: &Shared, wake: &Notify, refresh_first: bool) -> Result<(), String> {
    if refresh_first {
        leases::refresh(shared).await?;
    }
    let rescued = shared
        .store
        .rescue_expired(&shared.id, 500, shared.clock.now())
        .await
        .map_err(|err| err.to_string())?;
    if rescued > 0 {
        metrics::counter!(crate::metrics::RUNS_RESCUED).increment(rescued);
        tracing::info!(count = rescued, "rescued runs whose lease expired");
        // The database's wake-up may be lost while the listener reconnects.
        wake.notify_one();
    }
    // A teardown waits for its environment's other run to stop; the worker
    // that stopped it starts it, unless that worker died first.
    if let Err(err) = shared.store.start_due_teardowns(shared.clock.now()).await {
        tracing::warn!(error = %err, "could not start waiting teardowns");
    }
    Ok(())
}
