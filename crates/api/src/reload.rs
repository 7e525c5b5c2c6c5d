//! Reloading the templates and the policy file without a restart (decision
//! 0029): both on SIGHUP, the templates first, and each whenever its poll
//! finds its files changed. What does not load, or would not fit what stays
//! in force, leaves what is in force alone; the error is logged, counted
//! (`hubwright_{template,policy}_reloads_total{outcome="failed"}`, the
//! `..._reload_failing` gauges), audited and shown as `last_reload_error` by
//! `GET /v1/templates` (operators) and `GET /v1/policy`.
//!
//! Every API and scheduler process reloads on its own; definitions are
//! registered by digest, so replicas that read the same files agree.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::policy::{PolicyHolder, Reload};
use hubwright_state::store::audit::{AuditRecord, AuthKind, Outcome};
use hubwright_state::workflow::{Catalog, CatalogHolder, Read};
use hubwright_state::{Clock, Store};
use hubwright_telemetry::reread::{hangups, hung_up, polled, polls};

/// What a process reloads and how often it looks.
#[derive(Debug)]
pub struct Reloader {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub templates: Arc<CatalogHolder>,
    /// `None` when the process serves no API (a scheduler).
    pub policy: Option<Arc<PolicyHolder>>,
    /// How often to look for changed template files (`None`: on SIGHUP only).
    pub templates_poll: Option<Duration>,
    /// How often to look for a changed policy file (`None`: on SIGHUP only).
    pub policy_poll: Option<Duration>,
}

/// Why a template reload was refused.
enum Refusal {
    /// The files, or what they would do, are wrong: reported once, until
    /// the files change again.
    Final(String),
    /// The database could not be asked: read again at the next poll.
    Transient(String),
}

impl Reloader {
    /// Reloads on SIGHUP and at each poll until `shutdown` resolves.
    pub async fn watch(self, shutdown: impl Future<Output = ()>) {
        let has_policy_file = self
            .policy
            .as_ref()
            .is_some_and(|policy| policy.path().is_some());
        if self.templates.dir().is_none() && !has_policy_file {
            return shutdown.await;
        }
        let mut hangup = hangups("the templates and the policy file");
        let mut template_ticks = polls(self.templates_poll);
        let mut policy_ticks = polls(has_policy_file.then_some(self.policy_poll).flatten());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                Some(()) = hung_up(&mut hangup) => {
                    self.reload_templates(true).await;
                    self.reload_policy(true).await;
                }
                () = polled(&mut template_ticks) => {
                    // A policy file refused for naming a template that was
                    // not there yet is tried again once it is.
                    if self.reload_templates(false).await && self.policy_failing() {
                        self.reload_policy(true).await;
                    }
                }
                () = polled(&mut policy_ticks) => self.reload_policy(false).await,
            }
        }
    }

    fn policy_failing(&self) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|policy| policy.status().last_reload_error.is_some())
    }

    /// Reads the template directory again (every file, with `force`) and puts
    /// its templates in force if they load, register and fit: the policy in
    /// force names none that would go, and none that would go (or lose its
    /// `teardown`) still has environments. True when new templates are in force.
    pub async fn reload_templates(&self, force: bool) -> bool {
        let now = self.clock.now();
        let holder = Arc::clone(&self.templates);
        let read = match tokio::task::spawn_blocking(move || holder.read(now, force)).await {
            Ok(read) => read,
            Err(err) => {
                tracing::error!(error = %err, "the template reload panicked");
                return false;
            }
        };
        let (catalog, digest) = match read {
            Read::NoDirectory | Read::Unchanged => return false,
            Read::Settling => {
                tracing::debug!(
                    "the template files do not load; reading them again at the next poll before reporting it"
                );
                return false;
            }
            Read::Failed(err) => {
                self.template_reload_failed(&err.to_string(), now).await;
                return false;
            }
            Read::Loaded { catalog, digest } => (catalog, digest),
        };
        let catalog = match self.admit(catalog).await {
            Ok(catalog) => catalog,
            Err(Refusal::Final(why)) => {
                self.templates.refuse(&why);
                self.template_reload_failed(&why, now).await;
                return false;
            }
            Err(Refusal::Transient(why)) => {
                self.templates.retry(&why);
                tracing::warn!(error = %why, "could not reload the templates; trying again at the next poll");
                return false;
            }
        };
        let names = catalog.names().join(", ");
        self.templates.put(catalog, digest.clone(), now);
        tracing::info!(digest, templates = names, "templates reloaded");
        let detail = format!("digest {digest}; templates: {names}");
        self.counted(&TEMPLATES, Outcome::Success, Some(detail), now)
            .await;
        true
    }

    /// Registers `catalog`'s definitions and checks it against what stays:
    /// the policy in force and the environments of the templates in force.
    async fn admit(&self, mut catalog: Catalog) -> Result<Catalog, Refusal> {
        let source = self
            .templates
            .dir()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default();
        if let Some(policy) = &self.policy
            && let Err((place, rule)) = policy.current().check(&catalog)
        {
            let file = policy
                .path()
                .map_or_else(|| "the policy".to_owned(), |p| p.display().to_string());
            return Err(Refusal::Final(format!(
                "{source}: the policy in force does not fit these templates: {file}: {place}: {rule}"
            )));
        }
        let in_force = self.templates.current();
        let losing: Vec<String> = in_force
            .names()
            .into_iter()
            .filter(|name| {
                in_force.definition(name, "teardown").is_some()
                    && !catalog.has_workflow(name, "teardown")
            })
            .map(str::to_owned)
            .collect();
        if !losing.is_empty() {
            let live = self
                .store
                .live_environments_of(&losing)
                .await
                .map_err(|err| Refusal::Transient(err.to_string()))?;
            if let Some((template, count)) = live.first() {
                return Err(Refusal::Final(format!(
                    "{source}: template `{template}` or its `teardown` workflow is gone, but {count} of its environments are not deleted yet and need it to be torn down; delete them first"
                )));
            }
        }
        catalog
            .register(&self.store)
            .await
            .map_err(|err| Refusal::Transient(err.to_string()))?;
        Ok(catalog)
    }

    async fn template_reload_failed(&self, why: &str, now: chrono::DateTime<chrono::Utc>) {
        tracing::warn!(error = %why, "the template files do not load; the templates in force stay");
        self.counted(&TEMPLATES, Outcome::Failure, Some(why.to_owned()), now)
            .await;
    }

    /// Reads the policy file again (off the async threads) and puts it in
    /// force if it loads and fits the templates in force.
    pub async fn reload_policy(&self, force: bool) {
        let Some(holder) = &self.policy else {
            return;
        };
        let now = self.clock.now();
        let (holder, catalog) = (Arc::clone(holder), self.templates.current());
        let outcome = tokio::task::spawn_blocking(move || {
            let outcome = holder.reload(&catalog, now, force);
            (outcome, holder.status())
        })
        .await;
        match outcome {
            Ok((Reload::Applied, status)) => {
                tracing::info!(
                    digest = status.digest.as_deref().unwrap_or_default(),
                    "policy reloaded"
                );
                let detail = status.digest.map(|d| format!("digest {d}"));
                self.counted(&POLICY, Outcome::Success, detail, now).await;
            }
            Ok((Reload::Failed(err), _)) => {
                tracing::warn!(error = %err, "the policy file does not load; the policy in force stays");
                let detail = Some(err.to_string());
                self.counted(&POLICY, Outcome::Failure, detail, now).await;
            }
            Ok((Reload::Unchanged | Reload::NoFile | Reload::Settling, _)) => {}
            Err(err) => tracing::error!(error = %err, "the policy reload panicked"),
        }
    }
}

/// What is reloaded, as its metrics and the audit trail name it.
struct Reloaded {
    /// `templates` or `policy`: the audit entry is `<what>.reload`.
    what: &'static str,
    /// Counter of reloads by `outcome` (`applied`, `failed`).
    reloads: &'static str,
    /// Gauge: 1 while the files on disk cannot be applied.
    failing: &'static str,
}

const TEMPLATES: Reloaded = Reloaded {
    what: "templates",
    reloads: crate::metrics::TEMPLATE_RELOADS,
    failing: crate::metrics::TEMPLATE_RELOAD_FAILING,
};

const POLICY: Reloaded = Reloaded {
    what: "policy",
    reloads: crate::metrics::POLICY_RELOADS,
    failing: crate::metrics::POLICY_RELOAD_FAILING,
};

impl Reloader {
    /// A reload that changed something, or failed: counted, its gauge set,
    /// and in the audit trail by `system` as `<what>.reload`. A failed audit
    /// write is logged, not fatal.
    async fn counted(
        &self,
        of: &Reloaded,
        outcome: Outcome,
        detail: Option<String>,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let failed = outcome == Outcome::Failure;
        let label = if failed { "failed" } else { "applied" };
        metrics::counter!(of.reloads, "outcome" => label).increment(1);
        metrics::gauge!(of.failing).set(if failed { 1.0 } else { 0.0 });
        let action = format!("{}.reload", of.what);
        let mut record = AuditRecord::new(at, Some("system"), AuthKind::System, &action, outcome);
        record.target_kind = Some(of.what.to_owned());
        record.detail = detail;
        if let Err(err) = self.store.record_audit(&record).await {
            tracing::error!(error = %err, action, "could not record the reload in the audit trail");
            metrics::counter!(crate::metrics::AUDIT_WRITE_FAILURES).increment(1);
        }
    }
}
