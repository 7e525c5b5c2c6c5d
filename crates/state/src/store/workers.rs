//! The worker processes that said they are alive: each inserts its row at
//! start, touches it every heartbeat and marks it stopped on a clean
//! shutdown. Leases say which runs a worker holds; this says which workers
//! exist, holding something or not.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{Result, Store};

/// A worker whose last heartbeat is this many heartbeats old is `silent`.
const SILENT_AFTER_BEATS: i32 = 3;

/// How long a silent or stopped worker's row is kept.
const FORGOTTEN_AFTER: Duration = Duration::days(1);

/// The most worker processes listed.
pub const MAX_PROCESSES: i64 = 200;

/// What a worker says of itself when it starts.
#[derive(Debug, Clone)]
pub struct WorkerStart<'a> {
    /// Its id: lease owner and event actor.
    pub id: &'a str,
    /// The host it runs on.
    pub host: &'a str,
    /// Its process id.
    pub pid: u32,
    /// hubwright's version.
    pub version: &'a str,
    /// Runs it executes at once.
    pub concurrency: usize,
    /// How often it will touch its row.
    pub heartbeat: std::time::Duration,
}

/// Whether a worker is heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Heard from within three heartbeats.
    Running,
    /// Not heard from for three heartbeats or more, and not stopped: it
    /// died, hangs, or cannot reach the database; its leases run out.
    Silent,
    /// Shut down cleanly.
    Stopped,
}

/// One worker process as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerProcess {
    /// Its id (the lease owner in runs and events).
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: i32,
    /// hubwright's version.
    pub version: String,
    /// Runs it executes at once.
    pub concurrency: i32,
    /// Runs it holds leases on now.
    pub runs: i64,
    /// Whether it is heard from.
    pub liveness: Liveness,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its latest heartbeat.
    pub last_seen_at: DateTime<Utc>,
    /// When it shut down cleanly.
    pub stopped_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Records a worker's start, and forgets workers silent or stopped for
    /// a day (a fleet's restarts would otherwise pile up).
    pub async fn worker_started(&self, worker: &WorkerStart<'_>, now: DateTime<Utc>) -> Result<()> {
        let heartbeat = i32::try_from(worker.heartbeat.as_secs().max(1)).unwrap_or(i32::MAX);
        sqlx::query!(
            r#"WITH forgotten AS (
                   DELETE FROM workers WHERE last_seen_at < $8
               )
               INSERT INTO workers (id, host, pid, version, concurrency, heartbeat_seconds,
                                    started_at, last_seen_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
               ON CONFLICT (id) DO UPDATE
               SET last_seen_at = excluded.last_seen_at, stopped_at = NULL"#,
            worker.id,
            worker.host,
            i32::try_from(worker.pid).unwrap_or(i32::MAX),
            worker.version,
            i32::try_from(worker.concurrency).unwrap_or(i32::MAX),
            heartbeat,
            now,
            now - FORGOTTEN_AFTER,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A worker's heartbeat. Returns false when its row is gone (forgotten
    /// while the worker could not reach the database), so it registers again.
    pub async fn worker_seen(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let touched = sqlx::query!(
            "UPDATE workers SET last_seen_at = $2 WHERE id = $1",
            id,
            now
        )
        .execute(&self.pool)
        .await?;
        Ok(touched.rows_affected() == 1)
    }

    /// A worker's clean shutdown.
    pub async fn worker_stopped(&self, id: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query!(
            "UPDATE workers SET stopped_at = $2, last_seen_at = $2 WHERE id = $1",
            id,
            now
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every known worker with the runs it holds now: running ones first,
    /// then silent, then stopped; newest start first within each.
    pub(crate) async fn worker_processes(
        conn: &mut sqlx::PgConnection,
        now: DateTime<Utc>,
    ) -> Result<Vec<WorkerProcess>> {
        let rows = sqlx::query!(
            r#"
            SELECT w.id, w.host, w.pid, w.version, w.concurrency, w.started_at,
                   w.last_seen_at, w.stopped_at,
                   w.last_seen_at + make_interval(secs => w.heartbeat_seconds * $2) > $1 AS "heard!",
                   (SELECT count(*) FROM runs r
                    WHERE r.state = 'running' AND r.lease_owner = w.id) AS "runs!"
            FROM workers w
            ORDER BY (w.stopped_at IS NOT NULL), w.started_at DESC, w.id
            LIMIT $3
            "#,
            now,
            SILENT_AFTER_BEATS,
            MAX_PROCESSES,
        )
        .fetch_all(conn)
        .await?;
        let mut processes: Vec<WorkerProcess> = rows
            .into_iter()
            .map(|row| WorkerProcess {
                liveness: match (row.stopped_at, row.heard) {
                    (Some(_), _) => Liveness::Stopped,
                    (None, true) => Liveness::Running,
                    (None, false) => Liveness::Silent,
                },
                id: row.id,
                host: row.host,
                pid: row.pid,
                version: row.version,
                concurrency: row.concurrency,
                runs: row.runs,
                started_at: row.started_at,
                last_seen_at: row.last_seen_at,
                stopped_at: row.stopped_at,
            })
            .collect();
        // Running, then silent (what needs a look), then stopped.
        processes.sort_by_key(|p| match p.liveness {
            Liveness::Running => 0,
            Liveness::Silent => 1,
            Liveness::Stopped => 2,
        });
        Ok(processes)
    }
}
