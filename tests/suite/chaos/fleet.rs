//! The worker processes of a chaos round, and the record of what was done to
//! them and to their database, with when: what the audit attributes each
//! lost lease to.
//!
//! A slot is filled by one process at a time; each process is an
//! incarnation with an id of its own (`w1.3`: slot 1, third process), so a
//! lease that a killed process lost is never confused with one its
//! replacement lost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubwright_testkit::process::Process;

use crate::BIN;

/// What can take a lease away from a worker, as the figures name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// SIGKILL.
    WorkerKilled,
    /// SIGSTOP past the lease, then SIGCONT.
    WorkerPaused,
    /// Every database connection reset through the proxy for a while.
    ConnectionCut,
    /// The database server restarted.
    PostgresRestart,
}

impl Cause {
    /// Its name in the figures.
    pub fn name(self) -> &'static str {
        match self {
            Cause::WorkerKilled => "worker killed",
            Cause::WorkerPaused => "worker paused",
            Cause::ConnectionCut => "connection cut",
            Cause::PostgresRestart => "postgres restart",
        }
    }
}

/// One thing done to a worker (`who`) or to every worker's database.
#[derive(Debug, Clone)]
pub struct Disruption {
    /// What was done.
    pub cause: Cause,
    /// The incarnation it was done to; None for the database.
    pub who: Option<String>,
    /// When it began.
    pub from: DateTime<Utc>,
    /// When it ended (a kill ends at once).
    pub to: DateTime<Utc>,
}

/// How each process is started.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// The database URL the workers use (the proxy's).
    pub url: String,
    /// The workflows directory.
    pub workflows: PathBuf,
    /// Where their logs go.
    pub logs: PathBuf,
    /// Their lease.
    pub lease: Duration,
    /// Runs each executes at once.
    pub concurrency: usize,
}

/// The workers.
#[derive(Debug)]
pub struct Fleet {
    args: WorkerArgs,
    slots: Vec<Incarnation>,
    started: usize,
    /// Everything done to the workers and the database, in order.
    pub disruptions: Vec<Disruption>,
}

#[derive(Debug)]
struct Incarnation {
    id: String,
    process: Process,
}

impl Fleet {
    /// Starts `workers` processes.
    pub fn start(args: WorkerArgs, workers: usize) -> Self {
        let mut fleet = Self {
            args,
            slots: Vec::new(),
            started: 0,
            disruptions: Vec::new(),
        };
        for slot in 0..workers {
            let incarnation = fleet.spawn(slot);
            fleet.slots.push(incarnation);
        }
        fleet
    }

    fn spawn(&mut self, slot: usize) -> Incarnation {
        self.started += 1;
        let id = format!("w{slot}.{}", self.started);
        let workflows = self.args.workflows.display().to_string();
        let lease = format!("{}ms", self.args.lease.as_millis());
        let concurrency = self.args.concurrency.to_string();
        let process = Process::start(
            Path::new(BIN),
            &self.args.url,
            &[
                "serve",
                "--worker",
                "--workflows",
                &workflows,
                "--worker-id",
                &id,
                "--lease",
                &lease,
                "--concurrency",
                &concurrency,
                "--rescue-interval",
                "500ms",
                "--poll-interval",
                "200ms",
                "--shutdown-grace",
                "5s",
            ],
            &self.args.logs.join(format!("{id}.log")),
        );
        Incarnation { id, process }
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The id of the process in `slot` now.
    pub fn id(&self, slot: usize) -> &str {
        &self.slots[slot].id
    }

    /// How many processes have been started in all.
    pub fn started(&self) -> usize {
        self.started
    }

    /// SIGKILLs the process in `slot` and starts its replacement at once.
    pub async fn kill_and_replace(&mut self, slot: usize) {
        let replacement = self.spawn(slot);
        let killed = std::mem::replace(&mut self.slots[slot], replacement);
        let at = Utc::now();
        killed.process.kill9().await;
        self.disruptions.push(Disruption {
            cause: Cause::WorkerKilled,
            who: Some(killed.id),
            from: at,
            to: at,
        });
    }

    /// SIGSTOPs the process in `slot`; [`Fleet::resume`] lets it go on.
    pub fn pause(&mut self, slot: usize) -> DateTime<Utc> {
        let at = Utc::now();
        self.slots[slot].process.signal("STOP");
        at
    }

    /// SIGCONTs the process in `slot`, paused since `since`.
    pub fn resume(&mut self, slot: usize, since: DateTime<Utc>) {
        let incarnation = &self.slots[slot];
        incarnation.process.signal("CONT");
        self.disruptions.push(Disruption {
            cause: Cause::WorkerPaused,
            who: Some(incarnation.id.clone()),
            from: since,
            to: Utc::now(),
        });
    }

    /// Records a disruption of every worker's database.
    pub fn database_disrupted(&mut self, cause: Cause, from: DateTime<Utc>) {
        self.disruptions.push(Disruption {
            cause,
            who: None,
            from,
            to: Utc::now(),
        });
    }

    /// The logs of every process that is running now, for a failure report.
    pub fn tail_of_logs(&self) -> String {
        self.slots
            .iter()
            .map(|incarnation| {
                let log = incarnation.process.log_text();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!(
                    "--- {} (last lines, newest first):\n{}",
                    incarnation.id,
                    tail.join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
