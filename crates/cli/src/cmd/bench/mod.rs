//! `hubwright bench <workload>`: one benchmark workload against a fresh database,
//! printed as one JSON line. `just bench` runs them all and writes
//! `docs/benchmarks.md` with `hubwright bench report`.
//!
//! The worker under test is a real `hubwright serve --worker` child process, so
//! its peak RSS is the worker's alone; throughput comes from the timestamps the
//! worker committed (first step start to last step finish), so process start-up
//! is not counted.
//!
//! - [`workloads`]: the five workloads, each returning its figures;
//! - [`streams`]: what open event streams cost the database and other users;
//! - [`api`]: the REST API's own path: clients creating, listing and reading
//!   environments through a `serve --api` child;
//! - [`console`]: the web console's lists rendered over a database of
//!   10,000 environments and 50,000 runs;
//! - [`pool`]: request to `ready` for a warm-pool hit and a cold JupyterHub
//!   in the sandbox;
//! - [`fixture`]: what they share: a fresh database, runs inserted in
//!   batches, waiting for them, and the exactly-once audit;
//! - [`process`]: the `hubwright serve` child under test and what it costs;
//! - [`report`]: the JSON lines of many rounds rendered as `docs/benchmarks.md`.

mod api;
mod console;
mod fixture;
#[cfg(feature = "sandbox")]
mod pool;
mod process;
mod report;
mod streams;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

/// `hubwright bench`'s arguments: the workload or the report.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Debug, clap::Subcommand)]
enum Workload {
    /// Drain: batch-insert single-step no-op runs, then one worker drains them.
    W1(Load),
    /// Enqueue: runs accepted one awaited call at a time, no worker.
    W1b(Load),
    /// Durable workflows: 4-step no-op runs, each step committed before the next.
    W2(Load),
    /// Latency: an idle worker; runs enqueued 20 ms apart.
    W3(Load),
    /// TTL: environments expiring at the same moment; one `serve --scheduler`
    /// starts every teardown.
    Ttl(Load),
    /// Event streams: open SSE streams on one idle run (ten tokens); the
    /// database's transactions/s meanwhile and another user's list latency.
    Streams {
        /// Open streams.
        #[arg(long, default_value_t = 200)]
        streams: usize,
    },
    /// API: environment creations (with idempotency keys, some re-sent),
    /// lists and reads through a `serve --api` child, at each client count.
    Api {
        /// Concurrent clients, one round each (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [16, 64])]
        clients: Vec<usize>,
        /// Environment creations per round.
        #[arg(long, default_value_t = 4000)]
        requests: usize,
    },
    /// Console lists: 10,000 environments and 50,000 runs in the database; an
    /// operator's session asks for each page `--requests` times, in-process.
    Console {
        /// A console page to time (repeatable); default: the first and a
        /// filtered page of /environments and /runs. Pages the console does
        /// not have (404) are skipped with a warning.
        #[arg(long = "path")]
        paths: Vec<String>,
        /// Timed requests per page.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Environments in the database.
        #[arg(long, default_value_t = 10_000)]
        environments: usize,
        /// Runs in the database (at least one per environment).
        #[arg(long, default_value_t = 50_000)]
        runs: usize,
    },
    /// Warm pool: request to `ready` for pool hits and cold JupyterHubs in
    /// the sandbox (stand-in, oidc-provider, helm, real hubs), one at a time.
    #[cfg(feature = "sandbox")]
    Pool {
        /// Timed requests of each kind.
        #[arg(long, default_value_t = 20)]
        requests: usize,
        /// The workflows directory holding jupyterhub.yaml.
        #[arg(long, default_value = "workflows")]
        workflows: PathBuf,
    },
    /// Render JSON lines from the workloads as docs/benchmarks.md.
    Report {
        /// The JSON lines.
        #[arg(long)]
        input: PathBuf,
        /// Hand-written notes appended after the table.
        #[arg(long)]
        notes: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct Load {
    /// Runs (default per workload: 20000, 2000, 1000, 200; environments for ttl: 10000).
    #[arg(long)]
    jobs: Option<usize>,
    /// Worker concurrency.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// Runs one workload and prints its figures as one JSON line (failing when
/// its exactly-once audit does, or it measured nothing), or prints the report.
pub async fn run(url: &str, args: Args) -> anyhow::Result<ExitCode> {
    let figures = match args.workload {
        Workload::W1(load) => {
            workloads::w1(url, load.jobs.unwrap_or(20_000), load.concurrency).await?
        }
        Workload::W1b(load) => workloads::w1b(url, load.jobs.unwrap_or(2_000)).await?,
        Workload::W2(load) => {
            workloads::w2(url, load.jobs.unwrap_or(1_000), load.concurrency).await?
        }
        Workload::W3(load) => {
            workloads::w3(url, load.jobs.unwrap_or(200), load.concurrency).await?
        }
        Workload::Ttl(load) => workloads::ttl(url, load.jobs.unwrap_or(10_000)).await?,
        Workload::Streams { streams } => streams::streams(url, streams).await?,
        Workload::Api { clients, requests } => api::api(url, &clients, requests).await?,
        Workload::Console {
            paths,
            requests,
            environments,
            runs,
        } => {
            let paths = if paths.is_empty() {
                console::DEFAULT_PATHS
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect()
            } else {
                paths
            };
            let sizes = console::Sizes {
                environments,
                runs,
                requests,
            };
            console::console(url, sizes, &paths).await?
        }
        #[cfg(feature = "sandbox")]
        Workload::Pool {
            requests,
            workflows,
        } => pool::pool(url, &workflows, requests).await?,
        Workload::Report { input, notes } => {
            print!("{}", report::report(&input, notes.as_deref())?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    println!("{figures}");
    // Workloads that run nothing have no exactly-once audit; `ok` says they measured.
    let passed = figures["exactly_once"]
        .as_bool()
        .or_else(|| figures["ok"].as_bool())
        .unwrap_or(false);
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
