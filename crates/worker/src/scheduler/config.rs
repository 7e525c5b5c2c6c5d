//! How a scheduler behaves, and the checks of its settings.

use std::time::Duration;

use crate::Result;
use crate::config::ConfigError;

/// How a scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The sweep that catches missed expiries runs at least this often.
    pub sweep_interval: Duration,
    /// Warn this long before an environment expires (once per lead and expiry).
    pub warnings: Vec<Duration>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(60),
            warnings: vec![Duration::from_secs(3600), Duration::from_secs(600)],
        }
    }
}

impl SchedulerConfig {
    /// Checks every rule; the error names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sweep_interval < Duration::from_millis(10) {
            return Err(ConfigError {
                setting: "--expiry-sweep-interval",
                rule: format!("must be at least 10ms (got {:?})", self.sweep_interval),
            });
        }
        if let Some(zero) = self.warnings.iter().find(|w| w.as_secs() == 0) {
            return Err(ConfigError {
                setting: "--expiry-warnings",
                rule: format!("each lead time must be at least 1s (got {zero:?})"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_lead_names_the_flag() {
        let config = SchedulerConfig {
            warnings: vec![Duration::ZERO],
            ..SchedulerConfig::default()
        };
        assert_eq!(
            config.validate().map_err(|e| e.setting),
            Err("--expiry-warnings")
        );
    }
}
