//! Wake-ups sent after a commit instead of inside it, coalesced.
//!
//! A transaction that calls `pg_notify` takes one lock for the whole
//! database cluster when it commits and holds it until its commit record is
//! on disk, so notifying transactions commit one at a time, each waiting for
//! its own flush: no group commit. Under sixteen clients creating
//! environments, twelve of the API's connections were found waiting on that
//! lock at any moment. A creation therefore commits without notifying, and
//! this sends the workers' and the schedulers' wake-ups right after, from one
//! task, as one statement whose commit does not wait for the disk (a lost
//! wake-up costs nothing: the listeners' connections would be gone too).
//! Requests that arrive while a wake-up is being sent share the next one.
//!
//! A wake-up that cannot be sent (the database is down) is not retried: the
//! workers poll for due runs every `--poll-interval` and the schedulers at
//! their next expiry, so it only delays them
//! (docs/decisions/0027-a-creation-is-one-statement.md).

use std::sync::{Arc, OnceLock};

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The coalescing sender; one per [`super::Store`] and its clones.
#[derive(Debug, Default)]
pub(super) struct Wakeups {
    wanted: Arc<Notify>,
    /// The sending task, started with the first request.
    sender: OnceLock<JoinHandle<()>>,
}

impl Wakeups {
    /// Asks for a wake-up of the workers and the schedulers soon; returns at
    /// once.
    pub(super) fn request(&self, pool: &PgPool) {
        self.sender.get_or_init(|| {
            let (wanted, pool) = (self.wanted.clone(), pool.clone());
            tokio::spawn(send_when_wanted(wanted, pool))
        });
        // One stored permit at most: every request made while a wake-up is
        // on its way is answered by the one after it.
        self.wanted.notify_one();
    }
}

impl Drop for Wakeups {
    /// The last clone of the store is gone: so is its sender, and with it
    /// its hold on the pool.
    fn drop(&mut self) {
        if let Some(task) = self.sender.get() {
            task.abort();
        }
    }
}

async fn send_when_wanted(wanted: Arc<Notify>, pool: PgPool) {
    loop {
        wanted.notified().await;
        if pool.is_closed() {
            return;
        }
        let sent = sqlx::query!(
            r#"SELECT set_config('synchronous_commit', 'off', true) AS async_commit,
                      pg_notify('hubwright_runs', '') AS runs,
                      pg_notify('hubwright_expiry', '') AS schedulers"#
        )
        .fetch_one(&pool)
        .await;
        if let Err(err) = sent {
            tracing::debug!(error = %err, "wake-up not sent; workers and schedulers poll");
        }
    }
}
