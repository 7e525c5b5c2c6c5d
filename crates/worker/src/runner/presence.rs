//! The worker's row in `workers`: registered at start, touched every
//! heartbeat, marked stopped on a clean shutdown, so operators see idle
//! workers and silent ones (`GET /v1/queue`). Nothing depends on it for
//! correctness — leases do that — so a failed write is logged and tried
//! again at the next beat.

use std::sync::Arc;

use hubwright_state::store::workers::WorkerStart;

use super::Shared;

async fn register(shared: &Shared) -> hubwright_state::Result<()> {
    let host = crate::config::host_name();
    let start = WorkerStart {
        id: &shared.id,
        host: &host,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION"),
        concurrency: shared.config.concurrency,
        heartbeat: shared.config.heartbeat_interval(),
    };
    shared
        .store
        .worker_started(&start, shared.clock.now())
        .await
}

/// Registers, then beats every heartbeat interval until aborted.
pub(super) async fn beat(shared: Arc<Shared>) {
    let mut registered = false;
    let mut every = tokio::time::interval(shared.config.heartbeat_interval());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let wrote = if registered {
            shared
                .store
                .worker_seen(&shared.id, shared.clock.now())
                .await
        } else {
            register(&shared).await.map(|()| true)
        };
        match wrote {
            Ok(present) => registered = present,
            Err(err) => {
                tracing::debug!(error = %err, "could not record the worker's heartbeat; trying at the next beat");
            }
        }
    }
}

/// Marks the worker stopped (a clean shutdown).
pub(super) async fn stopped(shared: &Shared) {
    if let Err(err) = shared
        .store
        .worker_stopped(&shared.id, shared.clock.now())
        .await
    {
        tracing::debug!(error = %err, "could not record the worker's shutdown; it will show as silent");
    }
}
