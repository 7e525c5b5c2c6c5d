//! How the launchers wait for what they started: until a deadline that a busy
//! machine can stretch, and, when it passes or the child dies first, an error
//! that says what was awaited, for how long, how the child ended, and what it
//! printed.

use std::path::Path;
use std::time::Duration;

use tokio::process::Child;

/// Stretches every launcher's deadline, in seconds: a loaded two-core CI
/// machine can take minutes to start Node or Python.
pub const START_TIMEOUT_VARIABLE: &str = "HUBWRIGHT_START_TIMEOUT_SECS";

/// `HUBWRIGHT_START_TIMEOUT_SECS` when set to a number of seconds, else
/// `default`.
pub(crate) fn start_timeout(default: Duration) -> Duration {
    std::env::var(START_TIMEOUT_VARIABLE)
        .ok()
        .and_then(|secs| secs.trim().parse::<u64>().ok())
        .map_or(default, Duration::from_secs)
}

/// The error for `program` not reaching `awaited` within `within`: whether it
/// exited (and how) or is still running, then its output from `log`.
pub(crate) fn not_ready(
    program: &str,
    awaited: &str,
    within: Duration,
    child: &mut Child,
    log: &Path,
) -> std::io::Error {
    let state = match child.try_wait() {
        Ok(Some(status)) => format!("it exited ({status})"),
        Ok(None) => {
            format!("it is still running (raise {START_TIMEOUT_VARIABLE} on a slow machine)")
        }
        Err(err) => format!("its state is unknown ({err})"),
    };
    let output = std::fs::read_to_string(log).unwrap_or_default();
    let output = if output.trim().is_empty() {
        "(it printed nothing)".to_owned()
    } else {
        output
    };
    std::io::Error::other(format!(
        "{program} did not {awaited} within {}s: {state}; its output ({}):\n{output}",
        within.as_secs(),
        log.display()
    ))
}
