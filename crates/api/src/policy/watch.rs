//! Reloading the policy file without a restart: at once on SIGHUP, and
//! whenever a poll finds its content changed. A file that does not load
//! leaves the policy in force alone; the error is logged, counted
//! (`hubwright_policy_reloads_total{outcome="failed"}`, the
//! `hubwright_policy_reload_failing` gauge) and shown as `last_reload_error`
//! by `GET /v1/policy`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::policy::{PolicyHolder, Reload};
use hubwright_state::store::audit::{AuditRecord, AuthKind, Outcome};
use hubwright_state::workflow::Catalog;
use hubwright_state::{Clock, Store};

/// Reloads `holder`'s file on SIGHUP and, when `poll` is set, whenever its
/// content changes, until `shutdown` resolves.
pub async fn watch(
    store: Store,
    holder: Arc<PolicyHolder>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    poll: Option<Duration>,
    shutdown: impl Future<Output = ()>,
) {
    if holder.path().is_none() {
        return shutdown.await;
    }
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; the policy file reloads on its poll only");
            None
        }
    };
    let mut ticks = poll.map(|every| {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    tokio::pin!(shutdown);
    loop {
        let force = tokio::select! {
            () = &mut shutdown => return,
            Some(()) = hung_up(&mut hangup) => true,
            () = tick(&mut ticks) => false,
        };
        reload(&store, &holder, &catalog, clock.as_ref(), force).await;
    }
}

/// The next SIGHUP; never, without a listener.
async fn hung_up(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// The next poll; never, without one.
async fn tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// One reload, off the async threads (it reads a file), logged and counted.
pub async fn reload(
    store: &Store,
    holder: &Arc<PolicyHolder>,
    catalog: &Arc<Catalog>,
    clock: &dyn Clock,
    force: bool,
) {
    let now = clock.now();
    let (holder, catalog) = (Arc::clone(holder), Arc::clone(catalog));
    let outcome = tokio::task::spawn_blocking(move || {
        let outcome = holder.reload(&catalog, now, force);
        (outcome, holder.status())
    })
    .await;
    match outcome {
        Ok((Reload::Applied, status)) => {
            tracing::info!(
                digest = status.digest.as_deref().unwrap_or_default(),
                "policy reloaded"
            );
            metrics::counter!(crate::metrics::POLICY_RELOADS, "outcome" => "applied").increment(1);
            metrics::gauge!(crate::metrics::POLICY_RELOAD_FAILING).set(0.0);
            audit(
                store,
                now,
                Outcome::Success,
                status.digest.map(|d| format!("digest {d}")),
            )
            .await;
        }
        Ok((Reload::Failed(err), _)) => {
            tracing::warn!(error = %err, "the policy file does not load; the policy in force stays");
            metrics::counter!(crate::metrics::POLICY_RELOADS, "outcome" => "failed").increment(1);
            metrics::gauge!(crate::metrics::POLICY_RELOAD_FAILING).set(1.0);
            audit(store, now, Outcome::Failure, Some(err.to_string())).await;
        }
        Ok((Reload::Unchanged | Reload::NoFile, _)) => {}
        Err(err) => tracing::error!(error = %err, "the policy reload panicked"),
    }
}

/// A reload that changed something, or failed, in the audit trail: by
/// `system`, as `policy.reload`. A failed write is logged, not fatal.
async fn audit(
    store: &Store,
    at: chrono::DateTime<chrono::Utc>,
    outcome: Outcome,
    detail: Option<String>,
) {
    let mut record = AuditRecord::new(
        at,
        Some("system"),
        AuthKind::System,
        "policy.reload",
        outcome,
    );
    record.target_kind = Some("policy".to_owned());
    record.detail = detail;
    if let Err(err) = store.record_audit(&record).await {
        tracing::error!(error = %err, "could not record the policy reload in the audit trail");
        metrics::counter!(crate::metrics::AUDIT_WRITE_FAILURES).increment(1);
    }
}
