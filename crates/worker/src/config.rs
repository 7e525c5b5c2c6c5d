//! The worker's typed configuration, validated before anything starts.

use std::time::Duration;

/// A configuration value that breaks a rule: names the setting and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {rule}")]
pub struct ConfigError {
    /// The setting, as the CLI spells it.
    pub setting: &'static str,
    /// What is wrong and what would be right.
    pub rule: String,
}

/// How a worker process behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique per process; recorded as lease owner and event actor.
    pub id: String,
    /// Runs executed at once.
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat. A worker that is paused or
    /// partitioned for longer loses its runs to others.
    pub lease: Duration,
    /// Fallback poll when no wake-up arrives (LISTEN/NOTIFY is the fast path).
    pub poll_interval: Duration,
    /// How often to look for runs whose lease expired.
    pub rescue_interval: Duration,
    /// Most runs claimed by one statement.
    pub claim_batch: usize,
    /// On shutdown, how long in-flight steps may take to finish before their
    /// runs are released to other workers.
    pub shutdown_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            id: default_worker_id(),
            concurrency: 16,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            rescue_interval: Duration::from_secs(10),
            claim_batch: 32,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl WorkerConfig {
    /// Checks every rule; the error names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, rule: String| Err(ConfigError { setting, rule });
        if self.id.is_empty() || self.id.len() > 200 {
            return fail("--worker-id", "must be 1 to 200 characters".into());
        }
        if !(1..=1024).contains(&self.concurrency) {
            return fail(
                "--concurrency",
                format!("must be between 1 and 1024 (got {})", self.concurrency),
            );
        }
        if self.lease < Duration::from_secs(1) {
            return fail(
                "--lease",
                format!("must be at least 1s (got {:?})", self.lease),
            );
        }
        if self.poll_interval < Duration::from_millis(10) {
            return fail(
                "--poll-interval",
                format!("must be at least 10ms (got {:?})", self.poll_interval),
            );
        }
        if self.rescue_interval.is_zero() {
            return fail("--rescue-interval", "must be above zero".into());
        }
        if !(1..=1000).contains(&self.claim_batch) {
            return fail(
                "--claim-batch",
                format!("must be between 1 and 1000 (got {})", self.claim_batch),
            );
        }
        Ok(())
    }

    /// How often leases are extended: a third of the lease, so two heartbeats
    /// may fail before it runs out.
    pub fn heartbeat_interval(&self) -> Duration {
        self.lease / 3
    }
}

/// The host this process runs on (a pod's name on Kubernetes).
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

/// `host-pid-xxxx`: readable in events, unique across restarts.
pub fn default_worker_id() -> String {
    let host = host_name();
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &suffix[suffix.len() - 4..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_concurrency_names_the_flag() {
        let config = WorkerConfig {
            concurrency: 0,
            ..WorkerConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "--concurrency: must be between 1 and 1024 (got 0)"
        );
    }

    #[test]
    fn a_short_lease_is_refused() {
        let config = WorkerConfig {
            lease: Duration::from_millis(500),
            ..WorkerConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().setting, "--lease");
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(WorkerConfig::default().validate(), Ok(()));
    }
}
