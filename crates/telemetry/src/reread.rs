//! When a process reads its files again without a restart: at once on
//! SIGHUP, and whenever a poll comes round. The log filter file, the
//! templates and the policy file all follow these two triggers.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Interval, MissedTickBehavior};

/// SIGHUP for this process; `None` where it cannot be listened for (the
/// warning says that `what` is then read on its poll only).
pub fn hangups(what: &str) -> Option<Signal> {
    signal(SignalKind::hangup())
        .map_err(|err| {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; {what} is read on its poll only");
        })
        .ok()
}

/// The next SIGHUP; never, without a listener.
pub async fn hung_up(hangups: &mut Option<Signal>) -> Option<()> {
    match hangups {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// A poll every `every`, or none; a late poll is not made up for.
pub fn polls(every: Option<Duration>) -> Option<Interval> {
    every.map(|every| {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    })
}

/// The next poll; never, without one.
pub async fn polled(polls: &mut Option<Interval>) {
    match polls {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}
