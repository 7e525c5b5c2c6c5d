//! `serve`'s flags for the audit trail's retention (docs/operations.md,
//! "Audit trail"), and the task that enforces it under `--scheduler`.

use std::sync::Arc;

use hubwright_state::workflow::Dur;
use hubwright_state::{Clock, Store};
use hubwright_worker::AuditRetention;

/// How long audit entries are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Keep audit entries this long (e.g. 90d); the scheduler deletes older
    /// ones. At least 1h.
    #[arg(long, env = "HUBWRIGHT_AUDIT_RETENTION", default_value = "365d")]
    audit_retention: Dur,
    /// How often the scheduler deletes audit entries past their retention.
    #[arg(long, env = "HUBWRIGHT_AUDIT_PRUNE_INTERVAL", default_value = "1h")]
    audit_prune_interval: Dur,
}

impl AuditArgs {
    /// Checks the flags; the error names the flag and the rule.
    pub fn validate(&self) -> anyhow::Result<()> {
        AuditRetention::validate(self.audit_retention.0)?;
        if self.audit_prune_interval.0 < std::time::Duration::from_secs(1) {
            anyhow::bail!(
                "--audit-prune-interval: must be at least 1s (got {})",
                self.audit_prune_interval
            );
        }
        Ok(())
    }

    /// The retention task (under `--scheduler`).
    pub fn retention(&self, store: Store, clock: Arc<dyn Clock>) -> anyhow::Result<AuditRetention> {
        Ok(AuditRetention::new(
            store,
            clock,
            self.audit_retention.0,
            self.audit_prune_interval.0,
        )?)
    }
}
