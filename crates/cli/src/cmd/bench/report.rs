//! `hubwright bench report`: the JSON lines of many rounds as
//! `docs/benchmarks.md`, each figure the median of its rounds beside its target.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// Targets: 1.5× the best Postgres queue measured on the same machine.
const TARGETS: &[(&str, &str, &str, f64, bool)] = &[
    ("w1", "drain_runs_per_s", "W1 drain (runs/s)", 4200.0, true),
    (
        "w1",
        "insert_runs_per_s",
        "W1 batch insert (runs/s)",
        80000.0,
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
        "w1",
        "worker_peak_anon_mib",
        "Worker peak anonymous memory, W1 (MiB)",
        0.0,
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
        "w2",
        "worker_peak_anon_mib",
        "Worker peak anonymous memory, W2 (MiB)",
        0.0,
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
        "streams",
        "idle_db_transactions_per_s",
        "200 open event streams on one run: database (transactions/s)",
        5.0,
        false,
    ),
    (
        "streams",
        "list_latency_ms_with_streams.p99",
        "Another user's list p99 meanwhile (ms)",
        50.0,
        false,
    ),
    (
        "streams",
        "list_latency_ms_without_streams.p99",
        "The same list p99 without streams (ms)",
        0.0,
        false,
    ),
    (
        "streams",
        "event_reached_all_within_ms",
        "One event reaches all 200 streams within (ms)",
        0.0,
        false,
    ),
    (
        "console",
        "latency_ms./environments.p95",
        "Console: operator's environment list, 10,000 environments, p95 (ms)",
        50.0,
        false,
    ),
    (
        "console",
        "latency_ms./environments?phase=ready&owner=user-7.p95",
        "Console: the same list filtered by phase and owner, p95 (ms)",
        50.0,
        false,
    ),
    (
        "console",
        "latency_ms./runs.p95",
        "Console: operator's run list, 50,000 runs, p95 (ms)",
        50.0,
        false,
    ),
    (
        "console",
        "latency_ms./runs?state=failed&owner=user-20.p95",
        "Console: the same list filtered by state and owner, p95 (ms)",
        50.0,
        false,
    ),
    (
        "api",
        "clients_16.creations_per_s",
        "API: environment creations, 16 clients (creations/s)",
        1500.0,
        true,
    ),
    (
        "api",
        "clients_16.create_latency_ms.p50",
        "API: create p50, 16 clients (ms)",
        0.0,
        false,
    ),
    (
        "api",
        "clients_16.create_latency_ms.p99",
        "API: create p99, 16 clients (ms)",
        25.0,
        false,
    ),
    (
        "api",
        "clients_16.list_latency_ms.p99",
        "API: list p99, 16 clients (ms)",
        0.0,
        false,
    ),
    (
        "api",
        "clients_16.read_latency_ms.p99",
        "API: read p99, 16 clients (ms)",
        0.0,
        false,
    ),
    (
        "api",
        "clients_16.api_cpu_s",
        "API: server CPU for the 16-client round (s)",
        0.0,
        false,
    ),
    (
        "api",
        "clients_64.creations_per_s",
        "API: environment creations, 64 clients (creations/s)",
        0.0,
        true,
    ),
    (
        "api",
        "clients_64.create_latency_ms.p50",
        "API: create p50, 64 clients (ms)",
        0.0,
        false,
    ),
    (
        "api",
        "clients_64.create_latency_ms.p99",
        "API: create p99, 64 clients (ms)",
        0.0,
        false,
    ),
    (
        "api",
        "clients_64.list_latency_ms.p99",
        "API: list p99, 64 clients (ms)",
        0.0,
        false,
    ),
    (
        "api",
        "clients_64.read_latency_ms.p99",
        "API: read p99, 64 clients (ms)",
        0.0,
        false,
    ),
    (
        "api",
        "clients_64.api_cpu_s",
        "API: server CPU for the 64-client round (s)",
        0.0,
        false,
    ),
    (
        "api",
        "api_peak_rss_mib",
        "API server peak RSS (MiB)",
        0.0,
        false,
    ),
    (
        "api",
        "api_peak_anon_mib",
        "API server peak anonymous memory (MiB)",
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
        16.0,
        false,
    ),
    (
        "w1",
        "bytes_per_run_after_drain",
        "Bytes per finished W1 run (database growth / runs)",
        430.0,
        false,
    ),
];

/// Renders `input` (JSON lines from the workloads) as Markdown, with `notes`
/// appended.
pub(super) fn report(input: &Path, notes: Option<&Path>) -> anyhow::Result<String> {
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
        } else if value.is_none() {
            // Not measured (a page this build does not have): neither met nor missed.
            (
                format!("{} {target}", if *higher_is_better { "≥" } else { "≤" }),
                String::new(),
            )
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
    for workload in ["w1", "w1b", "w2", "w3", "ttl", "streams", "api"] {
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
