//! `serve`'s policy file flags (README: Guardrails): loaded and checked at
//! start-up, then reloaded on SIGHUP and when its content changes.

use std::path::PathBuf;
use std::sync::Arc;

use hubwright_state::Clock;
use hubwright_state::policy::PolicyHolder;
use hubwright_state::workflow::{Catalog, Dur};

/// Where the policy file is and how often to look at it.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// The policy file: limits per owner, group and for everyone, group
    /// members, and who may use which template and profile. Checked at
    /// start-up; reloaded on SIGHUP and when it changes. Without it: no
    /// limits, every template open.
    #[arg(long, env = "HUBWRIGHT_POLICY")]
    policy: Option<PathBuf>,
    /// How often the API looks for a changed policy file (0s: on SIGHUP only).
    #[arg(long, env = "HUBWRIGHT_POLICY_POLL_INTERVAL", default_value = "5s")]
    policy_poll_interval: Dur,
}

impl PolicyArgs {
    /// The policy in force at start-up; an error names the file, the place
    /// and the rule, and `serve` does not start.
    pub fn load(&self, catalog: &Catalog, clock: &dyn Clock) -> anyhow::Result<Arc<PolicyHolder>> {
        Ok(Arc::new(match &self.policy {
            Some(path) => {
                let holder = PolicyHolder::load(path, catalog, clock.now())?;
                tracing::info!(path = %path.display(), "policy loaded");
                holder
            }
            None => PolicyHolder::empty(),
        }))
    }

    /// How often to look for a changed policy file; `None`: on SIGHUP only.
    pub fn poll_interval(&self) -> Option<std::time::Duration> {
        self.policy_poll_interval.nonzero()
    }
}
