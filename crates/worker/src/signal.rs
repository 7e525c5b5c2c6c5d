//! Moments of a background loop that tests can wait for instead of sleeping,
//! as River's `testsignal` does: a loop bumps a counter when it reaches the
//! moment (the scheduler parks until its next wake-up, the worker finishes a
//! claim round and goes idle), and a test waits for the count it needs.
//! Production pays one uncontended atomic store per moment.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// A counter a loop bumps each time it reaches one moment.
#[derive(Debug, Clone)]
pub struct Moment {
    count: Arc<watch::Sender<u64>>,
}

impl Default for Moment {
    fn default() -> Self {
        Self {
            count: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Moment {
    /// Records that the loop reached the moment once more.
    pub(crate) fn reached(&self) {
        self.count.send_modify(|count| *count += 1);
    }

    /// A handle that waits for the moment to come.
    pub fn watch(&self) -> MomentWatch {
        MomentWatch {
            count: self.count.subscribe(),
        }
    }
}

/// Waits for a [`Moment`].
#[derive(Debug, Clone)]
pub struct MomentWatch {
    count: watch::Receiver<u64>,
}

impl MomentWatch {
    /// How often the moment has come so far.
    pub fn count(&self) -> u64 {
        *self.count.borrow()
    }

    /// Waits until the moment has come `times` times in all, at most
    /// `within`; the error says how many times it came.
    pub async fn until(&mut self, times: u64, within: Duration) -> Result<u64, String> {
        let waited = tokio::time::timeout(within, self.count.wait_for(|count| *count >= times))
            .await
            .map(|reached| reached.map(|count| *count));
        match waited {
            Ok(Ok(count)) => Ok(count),
            Ok(Err(_)) => Err(format!(
                "the loop stopped after {} of {times}",
                self.count()
            )),
            Err(_) => Err(format!(
                "only {} of {times} within {within:?}",
                self.count()
            )),
        }
    }

    /// Waits until the moment comes `more` more times than it had when
    /// called, at most `within`.
    pub async fn next(&mut self, more: u64, within: Duration) -> Result<u64, String> {
        let target = self.count() + more;
        self.until(target, within).await
    }
}
