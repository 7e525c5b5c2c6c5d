//! Every query hubwright makes, grouped by who calls it.
//!
//! - [`attention`]: pending approvals and environments past expiry, for alerts.
//! - [`audit`]: the audit trail: recording, listing and pruning it.
//! - [`approvals`]: approval steps' rows: opened, decided, expired.
//! - [`admission`]: limits counted and the new environment inserted under one lock per owner.
//! - [`database`]: creating the database itself when it is missing.
//! - [`definitions`]: immutable workflow snapshots, stored once per digest.
//! - [`effects`]: which steps called out beyond hubwright, for teardown.
//! - [`enqueue`]: accepting runs (one statement: run, steps, event, wake-up).
//! - [`environments`]: requesting, extending and tearing down environments.
//! - [`event_feed`]: what live event streams read: notifications, new events, token checks.
//! - [`environment_reads`]: one environment or a page of them, with their conditions.
//! - [`expiry`]: time-to-live: expiring environments, warnings, the next due time.
//! - [`expiry_labels`]: namespaces whose expiry label lags an extension.
//! - [`lease`]: what workers do to own runs: claim, heartbeat, rescue, release.
//! - [`checkpoint`]: committing a step's outcome under the fencing token.
//! - [`operator`]: retry (from a step named or numbered as people do) and cancel.
//! - [`queue_health`]: the queue for operators: depth, oldest due run, leases, rescues.
//! - `step_teardown`: a step that ends its run asks for its environment's teardown.
//! - `stop`: stopping an environment's runs, the transition teardown and expiry share.
//! - [`pools`]: warm pools: a request takes a ready member, or provisions cold.
//! - [`pool_fill`]: keeping each pool at size, recycling what is stale; its figures.
//! - [`read`]: runs, steps, events and counts for the API, CLI and benchmarks.
//! - [`run_list`]: pages of runs, newest first, with filters.
//! - [`retention`]: finished runs past their retention deleted in batches.
//! - [`tokens`]: API tokens, stored as hashes.

pub mod admission;
pub mod approvals;
pub mod attention;
pub mod audit;
pub mod checkpoint;
pub mod console;
pub mod database;
pub mod definitions;
pub mod effects;
pub mod enqueue;
pub mod environment_reads;
pub mod environments;
pub mod event_feed;
pub mod expiry;
pub mod expiry_labels;
pub mod idempotency_audit;
pub mod lease;
pub mod list_fixture;
pub mod names;
pub mod operator;
pub mod pool_fill;
pub mod pools;
pub mod queue_health;
pub mod read;
pub mod retention;
pub mod run_list;
pub mod secrets;
pub mod tokens;
pub mod webhooks;
pub mod workers;

mod audit_insert;
mod cold_request;
mod environment_insert;
mod environment_requests;
mod step_teardown;
mod stop;
mod wakeups;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::Result;

/// The Postgres channel a worker listens on to learn that runs became due.
pub const WAKE_CHANNEL: &str = "hubwright_runs";

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// Wake-ups sent after commits, shared by the clones.
    wakeups: std::sync::Arc<wakeups::Wakeups>,
}

impl Store {
    /// Connects with at most `max_connections` pooled connections.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        // Statement logging at INFO would drown the worker's own logs.
        let options = options
            .log_statements(tracing::log::LevelFilter::Trace)
            // Our statements are prepared once per connection. Left to itself,
            // Postgres re-plans the multi-CTE ones on every execution (custom
            // plans look cheaper on paper), which costs more than running them;
            // their generic plans are index-driven and just as good.
            .options([("plan_cache_mode", "force_generic_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // The default pings every connection before handing it out: one
            // extra round trip per query, a third of an enqueue's cost. A dead
            // connection surfaces as an error on use instead, which callers
            // already retry (worker commits) or report (the API).
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            wakeups: std::sync::Arc::default(),
        }
    }

    /// The underlying pool, for tests and the API's readiness check.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies every migration in `migrations/` that has not been applied yet.
    /// Safe to call from several processes at once: sqlx takes an advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("../../migrations").run(&self.pool).await?;
        Ok(())
    }

    /// A short digest of every migration this binary knows (versions and
    /// checksums): builds with the same fingerprint create the same schema,
    /// so a migrated copy can stand in for migrating again (the tests'
    /// template database).
    pub fn schema_fingerprint() -> String {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for migration in sqlx::migrate!("../../migrations").iter() {
            hasher.update(migration.version.to_le_bytes());
            hasher.update(&migration.checksum);
        }
        crate::digest::hex(&hasher.finalize()[..8])
    }

    /// Whether every migration this binary knows has been applied.
    pub async fn migrations_current(&self) -> Result<bool> {
        let migrator = sqlx::migrate!("../../migrations");
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(applied) => applied,
                // 42P01 undefined_table: nothing was ever migrated.
                Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P01") => {
                    Vec::new()
                }
                Err(err) => return Err(err.into()),
            };
        Ok(migrator.iter().all(|m| applied.contains(&m.version)))
    }

    /// Subscribes to wake-ups: one is sent whenever runs become due.
    pub async fn wake_listener(&self) -> Result<WakeListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(WAKE_CHANNEL).await?;
        Ok(WakeListener { listener })
    }
}

/// Receives wake-ups sent by `NOTIFY` when runs become due.
#[derive(Debug)]
pub struct WakeListener {
    listener: PgListener,
}

impl WakeListener {
    /// Waits for the next wake-up. After a lost connection it reconnects and
    /// returns at once, since notifications sent meanwhile are lost.
    pub async fn recv(&mut self) -> Result<()> {
        self.listener.recv().await?;
        Ok(())
    }
}
