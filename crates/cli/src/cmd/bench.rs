//! `hubwright bench <workload>`: one benchmark workload against a fresh database,
//! printed as one JSON line. `just bench` runs them all and writes
//! `docs/benchmarks.md` with `hubwright bench report`.
//!
//! The worker under test is a real `hubwright serve --worker` child process, so
//! its peak RSS is the worker's alone; throughput comes from the timestamps the
//! worker committed (first step start to last step finish), so process start-up
//! is not counted.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hubwright_state::model::RunState;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::workflow::{Dur, RetryPolicy, Snapshot, StepDef};
use hubwright_state::{Clock, Store, SystemClock};
use serde_json::{Value, json};

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

pub async fn run(url: &str, args: Args) -> anyhow::Result<ExitCode> {
    let figures = match args.workload {
        Workload::W1(load) => w1(url, load.jobs.unwrap_or(20_000), load.concurrency).await?,
        Workload::W1b(load) => w1b(url, load.jobs.unwrap_or(2_000)).await?,
        Workload::W2(load) => w2(url, load.jobs.unwrap_or(1_000), load.concurrency).await?,
        Workload::W3(load) => w3(url, load.jobs.unwrap_or(200), load.concurrency).await?,
        Workload::Ttl(load) => ttl(url, load.jobs.unwrap_or(10_000)).await?,
        Workload::Report { input, notes } => {
            print!("{}", report(&input, notes.as_deref())?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    println!("{figures}");
    let exactly_once = figures["exactly_once"].as_bool().unwrap_or(false);
    Ok(if exactly_once {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn prepare(url: &str, steps: usize) -> anyhow::Result<(Store, Snapshot, i64)> {
    let store = super::connect(url, 8).await?;
    store.migrate().await?;
    let existing = total_runs(&store).await?;
    if existing > 0 {
        bail!("DATABASE_URL must point at a fresh database (found {existing} runs)");
    }
    let snapshot = Snapshot {
        template: "bench".into(),
        workflow: format!("noop-{steps}"),
        steps: (0..steps)
            .map(|i| StepDef {
                name: format!("step-{i}"),
                kind: "noop".into(),
                params: json!({}),
                retry: RetryPolicy::default(),
                timeout: Dur::from_secs(60),
            })
            .collect(),
    };
    let id = store.register_definition(&snapshot).await?;
    Ok((store, snapshot, id))
}

async fn total_runs(store: &Store) -> anyhow::Result<i64> {
    let total = store
        .count_runs_by_state()
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum();
    Ok(total)
}

async fn insert_batch(
    store: &Store,
    snapshot: &Snapshot,
    definition_id: i64,
    count: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut left = count;
    while left > 0 {
        let now = SystemClock.now();
        let batch: Vec<NewRun<'_>> = (0..left.min(1000))
            .map(|_| NewRun::new(definition_id, snapshot, json!({}), "bench", now))
            .collect();
        store.enqueue_many(&batch, now).await?;
        left -= batch.len();
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// A `hubwright serve --worker` child.
struct Child {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Child {
    async fn start(url: &str, concurrency: usize) -> anyhow::Result<Self> {
        let concurrency = concurrency.to_string();
        Self::serve(
            url,
            &["--worker", "--concurrency", &concurrency],
            "worker started",
        )
        .await
    }

    /// `hubwright serve <role>` with the bench workflows, once `ready` is logged.
    async fn serve(url: &str, role: &[&str], ready: &str) -> anyhow::Result<Self> {
        let workflows = bench_workflows()?;
        let log = workflows.with_file_name(format!("{}.log", role[0].trim_start_matches('-')));
        let out = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["--log-format", "json", "serve"])
            .args(role)
            .arg("--workflows")
            .arg(&workflows)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn,hubwright_worker=info")
            // The scheduler needs no key; the worker seals nothing here.
            .env(
                hubwright_state::secrets::KEY_VARIABLE,
                std::env::var(hubwright_state::secrets::KEY_VARIABLE)
                    .unwrap_or_else(|_| "0".repeat(64)),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .context("starting the worker process")?;
        let this = Self { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&this.log)
            .unwrap_or_default()
            .contains(ready)
        {
            if Instant::now() > deadline {
                bail!(
                    "`serve {}` did not start; its log:\n{}",
                    role.join(" "),
                    std::fs::read_to_string(&this.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(this)
    }

    /// Peak resident set of the worker so far, in MiB (VmHWM).
    fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// CPU seconds (user + system) the worker has used so far.
    fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are the
        // 12th and 13th of them, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()?;
        }
        tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await??;
        Ok(())
    }
}

async fn wait_all_succeeded(store: &Store, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let counts = store.count_runs_by_state().await?;
        let done = counts
            .iter()
            .find(|(s, _)| *s == RunState::Succeeded)
            .map_or(0, |(_, n)| *n);
        if usize::try_from(done).unwrap_or(0) >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {done} of {count} runs succeeded within 10 minutes: {counts:?}");
        }
        // Throughput comes from committed timestamps, so polling slowly costs
        // no accuracy and leaves the CPU to the worker and Postgres.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Busy CPU seconds of the whole machine so far (all processes, all cores).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?;
    let ticks: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(busy / 100.0)
}

/// Checks every run and step executed exactly once.
async fn exactly_once(store: &Store, runs: usize, steps_per_run: usize) -> anyhow::Result<Value> {
    let violations = store.audit_exactly_once().await?;
    let steps = store.count_succeeded_steps().await?;
    let expected = i64::try_from(runs * steps_per_run)?;
    let ok = violations.is_empty() && steps == expected;
    Ok(json!({
        "exactly_once": ok,
        "steps_committed": steps,
        "steps_expected": expected,
        "violations": violations.iter().take(5).collect::<Vec<_>>(),
    }))
}

async fn drain_rate(store: &Store, count: usize) -> anyhow::Result<f64> {
    let (first, last) = store.step_time_span().await?.context("no step ran")?;
    let seconds = (last - first).num_microseconds().unwrap_or(1) as f64 / 1e6;
    Ok(count as f64 / seconds.max(1e-6))
}

async fn w1(url: &str, jobs: usize, concurrency: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 1).await?;
    let insert_rate = insert_batch(&store, &snapshot, definition_id, jobs).await?;
    let size_before = store.database_size_bytes().await?;
    let worker = Child::start(url, concurrency).await?;
    let wall = Instant::now();
    let busy_before = machine_busy_seconds();
    wait_all_succeeded(&store, jobs).await?;
    let wall = wall.elapsed().as_secs_f64();
    let machine_busy = machine_busy_seconds()
        .zip(busy_before)
        .map(|(after, before)| after - before);
    let worker_cpu = worker.cpu_seconds();
    let rss = worker.peak_rss_mib();
    worker.stop().await?;
    let mut figures = json!({
        "workload": "w1",
        "runs": jobs,
        "concurrency": concurrency,
        "insert_runs_per_s": round(insert_rate),
        "drain_runs_per_s": round(drain_rate(&store, jobs).await?),
        "drain_wall_s": round(wall),
        "drain_worker_cpu_s": worker_cpu.map(round),
        "drain_machine_busy_cpu_s": machine_busy.map(round),
        "worker_peak_rss_mib": rss.map(round),
        "db_size_after_insert_mib": round(size_before as f64 / 1_048_576.0),
        "db_size_after_drain_mib": round(store.database_size_bytes().await? as f64 / 1_048_576.0),
    });
    merge(&mut figures, exactly_once(&store, jobs, 1).await?);
    Ok(figures)
}

async fn w1b(url: &str, jobs: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 1).await?;
    let started = Instant::now();
    for _ in 0..jobs {
        let now = SystemClock.now();
        let run = NewRun::new(definition_id, &snapshot, json!({}), "bench", now);
        store.enqueue(&run, now).await?;
    }
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    let pending = store
        .count_runs_by_state()
        .await?
        .iter()
        .find(|(s, _)| *s == RunState::Pending)
        .map_or(0, |(_, n)| *n);
    Ok(json!({
        "workload": "w1b",
        "runs": jobs,
        "enqueue_runs_per_s": round(rate),
        "exactly_once": usize::try_from(pending).unwrap_or(0) == jobs,
        "runs_pending": pending,
    }))
}

async fn w2(url: &str, jobs: usize, concurrency: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 4).await?;
    insert_batch(&store, &snapshot, definition_id, jobs).await?;
    let worker = Child::start(url, concurrency).await?;
    wait_all_succeeded(&store, jobs).await?;
    let rss = worker.peak_rss_mib();
    worker.stop().await?;
    let workflows = drain_rate(&store, jobs).await?;
    let mut figures = json!({
        "workload": "w2",
        "runs": jobs,
        "steps_per_run": 4,
        "concurrency": concurrency,
        "workflows_per_s": round(workflows),
        "steps_per_s": round(workflows * 4.0),
        "worker_peak_rss_mib": rss.map(round),
    });
    merge(&mut figures, exactly_once(&store, jobs, 4).await?);
    Ok(figures)
}

async fn w3(url: &str, jobs: usize, concurrency: usize) -> anyhow::Result<Value> {
    let (store, snapshot, definition_id) = prepare(url, 1).await?;
    let worker = Child::start(url, concurrency).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..jobs {
        tick.tick().await;
        let now = SystemClock.now();
        let run = NewRun::new(definition_id, &snapshot, json!({}), "bench", now);
        store.enqueue(&run, now).await?;
    }
    wait_all_succeeded(&store, jobs).await?;
    let rss = worker.peak_rss_mib();
    worker.stop().await?;
    let latencies = store.start_latencies_ms().await?;
    let mut figures = json!({
        "workload": "w3",
        "runs": jobs,
        "interval_ms": 20,
        "start_latency_ms": {
            "p50": round(percentile(&latencies, 0.50)),
            "p95": round(percentile(&latencies, 0.95)),
            "p99": round(percentile(&latencies, 0.99)),
            "max": round(percentile(&latencies, 1.0)),
        },
        "worker_peak_rss_mib": rss.map(round),
    });
    merge(&mut figures, exactly_once(&store, jobs, 1).await?);
    Ok(figures)
}

/// The bench's workflow directory: one template, `bench`, whose teardown is a
/// no-op (what `serve --scheduler` starts for expired environments).
fn bench_workflows() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hubwright-bench-{}", std::process::id()));
    let workflows = dir.join("workflows");
    std::fs::create_dir_all(&workflows)?;
    std::fs::write(
        workflows.join("bench.yaml"),
        "name: bench\nworkflows:\n  provision:\n    steps:\n      - { name: a, kind: noop }\n  teardown:\n    steps:\n      - { name: remove, kind: noop }\n",
    )?;
    Ok(workflows)
}

/// TTL: `environments` ready environments all expire at one moment, five
/// seconds after a `serve --scheduler` child is up (no warnings, the default
/// one-minute sweep). Measured: from the expiry until every one has its
/// teardown run, and each teardown's lag behind its expiry; audited: exactly
/// one teardown run per environment.
async fn ttl(url: &str, environments: usize) -> anyhow::Result<Value> {
    let (store, _, _) = prepare(url, 1).await?;
    let scheduler = Child::serve(
        url,
        &["--scheduler", "--expiry-warnings", ""],
        "scheduler started",
    )
    .await?;
    let now = SystemClock.now();
    let expires_at = now + chrono::Duration::seconds(5);
    let count = i64::try_from(environments)?;
    store
        .insert_expiring_environments("bench", count, expires_at, now)
        .await?;
    store.notify_expiry().await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let all_started = loop {
        let started = store
            .teardown_run_counts()
            .await?
            .iter()
            .filter(|(_, n)| *n > 0)
            .count();
        if started >= environments {
            break SystemClock.now();
        }
        if Instant::now() > deadline {
            bail!("only {started} of {environments} teardowns started within 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu = scheduler.cpu_seconds();
    let rss = scheduler.peak_rss_mib();
    scheduler.stop().await?;
    let lags = store.teardown_lags_ms().await?;
    let counts = store.teardown_run_counts().await?;
    let not_one = counts.iter().filter(|(_, n)| *n != 1).count();
    // The teardown runs' own timestamps say when the last one started; the
    // poll above only bounds it.
    let last_ms = lags.last().copied().unwrap_or(f64::NAN);
    Ok(json!({
        "workload": "ttl",
        "environments": environments,
        "all_in_teardown_after_s": round(last_ms / 1000.0),
        "observed_after_s": round((all_started - expires_at).num_milliseconds() as f64 / 1000.0),
        "teardown_lag_ms": {
            "p50": round(percentile(&lags, 0.50)),
            "p99": round(percentile(&lags, 0.99)),
            "max": round(last_ms),
        },
        "scheduler_cpu_s": cpu.map(round),
        "scheduler_peak_rss_mib": rss.map(round),
        "exactly_once": not_one == 0 && counts.len() == environments,
        "environments_without_exactly_one_teardown": not_one,
    }))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// Targets: 1.5× the best Postgres queue measured on the same machine.
const TARGETS: &[(&str, &str, &str, f64, bool)] = &[
    ("w1", "drain_runs_per_s", "W1 drain (runs/s)", 4200.0, true),
    (
        "w1",
        "insert_runs_per_s",
        "W1 batch insert (runs/s)",
        0.0,
        true,
    ),
    (
        "w1b",
        "enqueue_runs_per_s",
        "W1b single enqueue (runs/s)",
        2000.0,
        true,
    ),
    (
        "w2",
        "workflows_per_s",
        "W2 4-step workflows (workflows/s)",
        350.0,
        true,
    ),
    ("w2", "steps_per_s", "W2 steps (steps/s)", 0.0, true),
    (
        "w3",
        "start_latency_ms.p50",
        "W3 start latency p50 (ms)",
        3.0,
        false,
    ),
    (
        "w3",
        "start_latency_ms.p95",
        "W3 start latency p95 (ms)",
        0.0,
        false,
    ),
    (
        "w3",
        "start_latency_ms.p99",
        "W3 start latency p99 (ms)",
        15.0,
        false,
    ),
    (
        "w3",
        "start_latency_ms.max",
        "W3 start latency max (ms)",
        0.0,
        false,
    ),
    (
        "w1",
        "worker_peak_rss_mib",
        "Worker peak RSS, W1 (MiB)",
        32.0,
        false,
    ),
    (
        "w2",
        "worker_peak_rss_mib",
        "Worker peak RSS, W2 (MiB)",
        32.0,
        false,
    ),
    (
        "ttl",
        "all_in_teardown_after_s",
        "TTL: 10,000 expiries, all in teardown after (s)",
        60.0,
        false,
    ),
    (
        "ttl",
        "teardown_lag_ms.p50",
        "TTL teardown lag p50 (ms)",
        0.0,
        false,
    ),
    (
        "w1",
        "db_size_after_insert_mib",
        "Database after W1 insert (MiB)",
        0.0,
        false,
    ),
    (
        "w1",
        "db_size_after_drain_mib",
        "Database after W1 drain (MiB)",
        0.0,
        false,
    ),
];

fn report(input: &Path, notes: Option<&Path>) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("--input: cannot read {}", input.display()))?;
    let results: Vec<Value> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("--input: not JSON lines from `hubwright bench`")?;
    // Each workload may have run several times; the median resists the noise
    // of a shared machine.
    let find = |workload: &str, path: &str| -> Option<f64> {
        let mut values: Vec<f64> = results
            .iter()
            .filter(|r| r["workload"] == workload)
            .filter_map(|r| path.split('.').try_fold(r, |v, key| v.get(key))?.as_f64())
            .collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    let mut out = String::from(
        "# Benchmarks\n\nGenerated by `just bench` (`hubwright bench`); do not edit the table by hand.\n\n",
    );
    out.push_str(&format!(
        "Machine: {} cores, PostgreSQL on 127.0.0.1 with default settings (fsync on, synchronous_commit on).\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    out.push_str(
        "Each figure is the median of the workload's runs (each on a fresh database); all runs are listed under Raw figures.\n\n",
    );
    out.push_str("| figure | result | target | met |\n|---|---:|---:|:---:|\n");
    for (workload, path, label, target, higher_is_better) in TARGETS {
        let value = find(workload, path);
        let shown = value.map_or("—".to_owned(), |v| format!("{v}"));
        let (target_shown, met) = if *target == 0.0 {
            ("—".to_owned(), String::new())
        } else {
            let met = value.is_some_and(|v| {
                if *higher_is_better {
                    v >= *target
                } else {
                    v <= *target
                }
            });
            (
                format!("{} {target}", if *higher_is_better { "≥" } else { "≤" }),
                if met {
                    "yes".to_owned()
                } else {
                    "no".to_owned()
                },
            )
        };
        out.push_str(&format!("| {label} | {shown} | {target_shown} | {met} |\n"));
    }
    out.push_str(
        "\nExactly-once check (each run and step committed once, audited from the events):\n\n",
    );
    for workload in ["w1", "w1b", "w2", "w3", "ttl"] {
        let runs: Vec<&Value> = results
            .iter()
            .filter(|r| r["workload"] == workload)
            .collect();
        let passed = runs.iter().filter(|r| r["exactly_once"] == true).count();
        out.push_str(&format!(
            "- {workload}: passed in {passed} of {} runs\n",
            runs.len()
        ));
    }
    out.push_str("\nRaw figures:\n\n```json\n");
    for result in &results {
        out.push_str(&format!("{result}\n"));
    }
    out.push_str("```\n");
    if let Some(notes) = notes {
        out.push('\n');
        out.push_str(
            &std::fs::read_to_string(notes)
                .with_context(|| format!("--notes: cannot read {}", notes.display()))?,
        );
    }
    Ok(out)
}
