//! Commits successful steps in batches.
//!
//! Many runs finish steps at nearly the same time. Each waits for its own
//! commit (the step's outcome is durable before the next step starts), but the
//! commits that queue up while one statement is in flight go out together in
//! the next one. An idle worker pays no delay: a lone success is sent at once.

use std::sync::Arc;

use hubwright_state::store::checkpoint::{Advanced, StepSuccess};
use hubwright_state::{Clock, Store};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Most successes in one statement.
const MAX_BATCH: usize = 256;

/// Batch statements executing at once.
const IN_FLIGHT: usize = 2;

type Reply = oneshot::Sender<Result<Option<Advanced>, String>>;

/// Sends successes to the batching task.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    queue: mpsc::Sender<(StepSuccess, Reply)>,
}

impl Committer {
    /// Starts the batching task.
    pub(crate) fn start(store: Store, clock: Arc<dyn Clock>) -> Self {
        let (queue, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(store, clock, receiver));
        Self { queue }
    }

    /// Commits one success. `Ok(None)`: the lease was lost and nothing was
    /// written. `Err`: the database failed; the commit may be retried.
    pub(crate) async fn commit(&self, success: StepSuccess) -> Result<Option<Advanced>, String> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((success, reply))
            .await
            .map_err(|_| "committer stopped".to_owned())?;
        answer.await.map_err(|_| "committer stopped".to_owned())?
    }
}

async fn run(
    store: Store,
    clock: Arc<dyn Clock>,
    mut receiver: mpsc::Receiver<(StepSuccess, Reply)>,
) {
    // Two statements in flight: while one waits for its commit to reach disk,
    // the next batch is already executing, and Postgres flushes both together.
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = receiver.recv().await {
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let store = store.clone();
        let now = clock.now();
        tokio::spawn(async move {
            flush(&store, batch, now).await;
            drop(permit);
        });
    }
}

async fn flush(
    store: &Store,
    batch: Vec<(StepSuccess, Reply)>,
    now: chrono::DateTime<chrono::Utc>,
) {
    let successes: Vec<StepSuccess> = batch.iter().map(|(s, _)| s.clone()).collect();
    match store.commit_successes(&successes, now).await {
        Ok(advanced) => {
            for (success, reply) in batch {
                let outcome = advanced
                    .iter()
                    .find(|a| a.run_id == success.run_id)
                    .copied();
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(err) => {
            let message = err.to_string();
            for (_, reply) in batch {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}
