//! What the scheduler does for the templates in force: expire with their
//! `teardown` workflows and keep their pools at size. Worked out again when
//! the templates are reloaded (decision 0029), once per set.

use std::sync::{Arc, PoisonError};

use hubwright_state::Store;
use hubwright_state::pools::PoolPlan;
use hubwright_state::store::expiry::ExpiryTeardown;
use hubwright_state::workflow::Catalog;

use super::Scheduler;
use crate::Result;

/// What the scheduler does for one set of templates.
#[derive(Debug)]
pub(super) struct Plans {
    pub(super) catalog: Arc<Catalog>,
    /// Every warm pool on every cluster it names, kept at size each pass.
    pub(super) pools: Vec<PoolPlan>,
}

impl Plans {
    /// The `teardown` workflow of every template that has one.
    pub(super) fn teardowns(&self) -> Vec<ExpiryTeardown<'_>> {
        self.catalog
            .names()
            .into_iter()
            .filter_map(|template| {
                let (snapshot, definition_id) = self.catalog.definition(template, "teardown")?;
                Some(ExpiryTeardown {
                    template,
                    snapshot,
                    definition_id,
                })
            })
            .collect()
    }
}

impl Scheduler {
    /// The templates in force and their pools, worked out once per set of
    /// templates rather than at every pass.
    pub(super) fn plans(&self) -> Arc<Plans> {
        let catalog = self.templates.current();
        let mut cached = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(plans) = cached.as_ref()
            && Arc::ptr_eq(&plans.catalog, &catalog)
        {
            return Arc::clone(plans);
        }
        for name in catalog.names() {
            if catalog.definition(name, "teardown").is_none() {
                tracing::warn!(
                    template = name,
                    "template has no `teardown` workflow; its environments never expire"
                );
            }
        }
        let plans = Arc::new(Plans {
            pools: PoolPlan::all(&catalog),
            catalog,
        });
        *cached = Some(Arc::clone(&plans));
        plans
    }
}

/// Brings one pool to size and logs what changed.
pub(super) async fn fill_pool(
    store: &Store,
    plan: &PoolPlan,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let fill = plan.fill(store, now).await?;
    if !fill.started.is_empty() || !fill.recycled.is_empty() {
        tracing::info!(
            pool = plan.template(),
            cluster = plan.cluster(),
            started = fill.started.len(),
            recycled = fill.recycled.len(),
            "pool refilled"
        );
    }
    if let Some(until) = fill.paused_until
        && !fill.recycled.is_empty()
    {
        tracing::warn!(
            pool = plan.template(),
            cluster = plan.cluster(),
            until = %until,
            "pool members keep failing; the next one waits"
        );
    }
    Ok(())
}

/// Sets the pool's gauges (`hubwright_pool_*`, labelled by template and cluster).
pub(super) async fn report_pool(
    store: &Store,
    plan: &PoolPlan,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let stats = plan.stats(store, now).await?;
    let labels = [
        ("template", stats.template.clone()),
        ("cluster", stats.cluster.clone()),
    ];
    metrics::gauge!("hubwright_pool_size", &labels).set(f64::from(stats.size));
    metrics::gauge!("hubwright_pool_ready", &labels).set(stats.ready as f64);
    metrics::gauge!("hubwright_pool_provisioning", &labels).set(stats.provisioning as f64);
    metrics::gauge!("hubwright_pool_claims", &labels).set(stats.claims as f64);
    metrics::gauge!("hubwright_pool_misses", &labels).set(stats.misses as f64);
    metrics::gauge!("hubwright_pool_average_age_seconds", &labels).set(stats.average_age_seconds);
    Ok(())
}
