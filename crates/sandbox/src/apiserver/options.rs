//! [`Options`]: the stand-in's knobs, with the defaults a real cluster suggests.

use std::time::Duration;

/// The environment variable that sets [`Options::namespace_termination_delay`]
/// for stand-ins started with [`Options::from_env`] (`250ms`, `3s`, `0`).
pub const TERMINATION_DELAY_VAR: &str = "HUBWRIGHT_STANDIN_TERMINATION_DELAY";

/// How long a deleted namespace stays `Terminating` by default: a real
/// cluster's namespace controller takes a few seconds (discovery, then a list
/// and a delete of every resource type), so code that waits for a namespace
/// to go must expect that.
pub const DEFAULT_TERMINATION_DELAY: Duration = Duration::from_secs(3);

/// A termination delay for tests that only need a namespace gone: none, so
/// the controller's next pass finishes it (the stand-in's pace before the
/// delay existed).
pub const QUICK_TERMINATION_DELAY: Duration = Duration::ZERO;

/// Knobs for [`super::KubeApiServer::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// How often the namespace controller (and the controllers that fill
    /// every namespace) run (default 100 ms).
    pub namespace_controller_interval: Duration,
    /// How long a deleted namespace stays `Terminating` at least, its content
    /// already gone (default [`DEFAULT_TERMINATION_DELAY`]). Tests that only
    /// need a namespace gone set a short one.
    pub namespace_termination_delay: Duration,
    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 1 s;
    /// the real server sends one about every minute, clients must accept any time).
    pub bookmark_interval: Duration,
    /// How many events are kept for watches that start from a resourceVersion
    /// (default 10 000); older starts get 410 Expired.
    pub history_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace_controller_interval: Duration::from_millis(100),
            namespace_termination_delay: DEFAULT_TERMINATION_DELAY,
            bookmark_interval: Duration::from_secs(1),
            history_limit: 10_000,
        }
    }
}

impl Options {
    /// The defaults, with the termination delay from
    /// [`TERMINATION_DELAY_VAR`] when it is set.
    pub fn from_env() -> std::io::Result<Self> {
        Self::from_env_or_delay(DEFAULT_TERMINATION_DELAY)
    }

    /// The defaults with the termination delay from [`TERMINATION_DELAY_VAR`]
    /// when it is set, else `delay`: tests that only need a namespace gone
    /// pass [`QUICK_TERMINATION_DELAY`], and the variable still lets a
    /// developer run them with a real cluster's pace.
    pub fn from_env_or_delay(delay: Duration) -> std::io::Result<Self> {
        let mut options = Options::default().with_termination_delay(delay);
        if let Ok(text) = std::env::var(TERMINATION_DELAY_VAR) {
            options.namespace_termination_delay = parse_delay(&text).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{TERMINATION_DELAY_VAR}={text:?}: expected a duration in ms or s, such as 250ms, 3s or 0"
                    ),
                )
            })?;
        }
        Ok(options)
    }

    /// These options with `delay` as the namespace termination delay.
    pub fn with_termination_delay(mut self, delay: Duration) -> Self {
        self.namespace_termination_delay = delay;
        self
    }
}

/// `250ms`, `3s`, `1.5s` or `0`.
fn parse_delay(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else {
        (text.strip_suffix('s')?, 1.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_read_in_milliseconds_or_seconds() {
        assert_eq!(parse_delay("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_delay("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_delay("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_delay("0"), Some(Duration::ZERO));
        assert_eq!(parse_delay("3"), None);
        assert_eq!(parse_delay("-1s"), None);
        assert_eq!(parse_delay("soon"), None);
    }

    #[test]
    fn the_default_termination_takes_seconds_as_on_a_real_cluster() {
        assert!(Options::default().namespace_termination_delay >= Duration::from_secs(2));
    }
}
