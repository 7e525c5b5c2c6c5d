//! When a background loop last went round, for readiness probes: a worker
//! whose claim loop has stopped going round (stuck on a lock, a runtime
//! starved) is not ready, even though its process answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Stored instead of a time before the first beat.
const NEVER: u64 = u64::MAX;

/// A loop's pulse: the loop beats it each time round; a probe asks whether
/// it has been silent for longer than the loop ever should be.
#[derive(Debug, Clone)]
pub struct Pulse {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    max_silence: Duration,
    origin: Instant,
    /// Milliseconds from `origin` to the last beat, or [`NEVER`].
    last: AtomicU64,
}

impl Pulse {
    /// The pulse of loop `name`, which goes round at least every
    /// `max_silence` while healthy.
    pub fn new(name: &'static str, max_silence: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                max_silence,
                origin: Instant::now(),
                last: AtomicU64::new(NEVER),
            }),
        }
    }

    /// Records that the loop went round.
    pub fn beat(&self) {
        let since = u64::try_from(self.inner.origin.elapsed().as_millis()).unwrap_or(NEVER - 1);
        self.inner.last.store(since, Ordering::Relaxed);
    }

    /// The loop's name, e.g. `worker`.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// How long since the last beat; `None` before the first.
    pub fn silent_for(&self) -> Option<Duration> {
        match self.inner.last.load(Ordering::Relaxed) {
            NEVER => None,
            last => Some(
                self.inner
                    .origin
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last)),
            ),
        }
    }

    /// `Ok` while the loop goes round; otherwise what a probe reports.
    pub fn check(&self) -> Result<(), String> {
        self.judge(self.silent_for())
    }

    fn judge(&self, silent: Option<Duration>) -> Result<(), String> {
        let name = self.inner.name;
        match silent {
            None => Err(format!("the {name} loop has not started")),
            Some(silent) if silent > self.inner.max_silence => Err(format!(
                "the {name} loop has not gone round for {silent:.0?} (at most {:.0?} expected)",
                self.inner.max_silence
            )),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pulse_is_unready_until_its_first_beat_and_after_a_long_silence() {
        let pulse = Pulse::new("worker", Duration::from_millis(50));
        assert_eq!(
            pulse.check(),
            Err("the worker loop has not started".to_owned())
        );
        pulse.beat();
        assert_eq!(pulse.check(), Ok(()));
        assert_eq!(
            pulse.judge(Some(Duration::from_secs(90))),
            Err("the worker loop has not gone round for 90s (at most 50ms expected)".to_owned())
        );
    }
}
