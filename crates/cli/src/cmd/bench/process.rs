//! The `hubwright serve` child a workload measures, and the machine it runs on.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A `hubwright serve --worker` child.
pub(super) struct Child {
    child: tokio::process::Child,
    log: PathBuf,
    /// The largest anonymous resident set seen so far, in KiB.
    anon_peak_kib: Arc<AtomicU64>,
}

impl Child {
    /// `hubwright serve --worker` with `concurrency`, once it is up.
    pub(super) async fn start(url: &str, concurrency: usize) -> anyhow::Result<Self> {
        let concurrency = concurrency.to_string();
        Self::serve(
            url,
            &["--worker", "--concurrency", &concurrency],
            "worker started",
        )
        .await
    }

    /// `hubwright serve <role>` with the bench workflows, once `ready` is logged.
    pub(super) async fn serve(url: &str, role: &[&str], ready: &str) -> anyhow::Result<Self> {
        Self::serve_with(url, role, ready, &bench_workflows()?, &[]).await
    }

    /// `hubwright serve <role>` with `workflows` and `env` added to its
    /// environment, once `ready` is logged.
    pub(super) async fn serve_with(
        url: &str,
        role: &[&str],
        ready: &str,
        workflows: &std::path::Path,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<Self> {
        let log = workflows.with_file_name(format!("{}.log", role[0].trim_start_matches('-')));
        let out = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["--log-format", "json", "serve"])
            .args(role)
            .arg("--workflows")
            .arg(workflows)
            .envs(env.iter().copied())
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn,hubwright_worker=info,hubwright_api=info")
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
        let anon_peak_kib = Arc::new(AtomicU64::new(0));
        if let Some(pid) = child.id() {
            tokio::spawn(sample_anon_peak(pid, anon_peak_kib.clone()));
        }
        let this = Self {
            child,
            log,
            anon_peak_kib,
        };
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

    /// The child's log so far (JSON lines).
    pub(super) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The API child's base URL, from its `api listening` log line.
    pub(super) fn api_url(&self) -> anyhow::Result<String> {
        self.log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["message"] == "api listening")
            .and_then(|line| line["address"].as_str().map(|a| format!("http://{a}")))
            .context("the API child logged no address")
    }

    /// Peak resident set of the worker so far, in MiB (VmHWM).
    pub(super) fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// Peak anonymous resident set so far, in MiB, sampled every 10 ms: the
    /// memory the process itself allocated (heap, stacks). VmHWM also counts
    /// the pages of the binary's code the process has touched, which are
    /// shared and reclaimable, and move by a few MiB when the same code is
    /// laid out differently by another build.
    pub(super) fn peak_anon_mib(&self) -> Option<f64> {
        match self.anon_peak_kib.load(Ordering::Relaxed) {
            0 => None,
            kib => Some(kib as f64 / 1024.0),
        }
    }

    /// CPU seconds (user + system) the worker has used so far.
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
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

    /// SIGTERM, then waits for the child to exit.
    pub(super) async fn stop(mut self) -> anyhow::Result<()> {
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

/// Keeps the largest `RssAnon` of process `pid` in `peak` until the process
/// is gone.
async fn sample_anon_peak(pid: u32, peak: Arc<AtomicU64>) {
    let path = format!("/proc/{pid}/status");
    while let Ok(status) = tokio::fs::read_to_string(&path).await {
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(kib) = kib {
            peak.fetch_max(kib, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Busy CPU seconds of the whole machine so far (all processes, all cores).
pub(super) fn machine_busy_seconds() -> Option<f64> {
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
