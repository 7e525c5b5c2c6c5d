//! Database outages: real `hubwright serve` processes whose database
//! connections go through the testkit's TCP proxy, which the test cuts and
//! restores. The test itself reads the database directly, past the proxy.

mod leases;
mod startup;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hubwright_state::Store;
use hubwright_testkit::harness::effects;
use hubwright_testkit::process::Process;
use hubwright_testkit::{wait, write_workflow};
use uuid::Uuid;

use crate::BIN;

/// Deadline for what takes seconds when all is well.
const WITHIN: Duration = Duration::from_secs(60);

/// `hubwright serve <args…>` against `url` (the proxy's), logging to `log`.
fn serve(url: &str, workflows: &Path, args: &[&str], log: PathBuf) -> Process {
    let workflows = workflows.display().to_string();
    let mut all = vec!["serve", "--workflows", &workflows];
    all.extend_from_slice(args);
    Process::start(Path::new(BIN), url, &all, &log)
}

/// Three steps: `a` holds the worker for `block` and then records its
/// effect; `b` and `c` record theirs. Every execution is a line in `log`.
fn recording_workflow(dir: &Path, log: &Path, block: &str) -> PathBuf {
    write_workflow(
        &dir.join("workflows"),
        "outage",
        &format!(
            r#"
name: outage
workflows:
  provision:
    steps:
      - {{ name: a, kind: test-block, with: {{ duration: {block}, record: "{log}" }} }}
      - {{ name: b, kind: test-record, with: {{ path: "{log}" }} }}
      - {{ name: c, kind: test-record, with: {{ path: "{log}" }} }}
"#,
            log = log.display()
        ),
    )
}

/// (run, step) → how many times its effect happened.
fn effect_counts(log: &Path) -> HashMap<(Uuid, i32), usize> {
    let mut counts = HashMap::new();
    for (run, step, _, _) in effects(log) {
        *counts.entry((run, step)).or_insert(0) += 1;
    }
    counts
}

/// Waits until the worker is executing the first step of every run: the
/// step's row says running from the claim on, but the worker starts it only
/// once it has read the run's definition, so the test reads the worker's log.
async fn all_inside_first_step(runs: usize, process: &Process) {
    wait::until("every run's first step to start", WITHIN, || {
        let started = process
            .log_text()
            .lines()
            .filter(|line| line.contains(r#""message":"step started","step":"a""#))
            .count();
        async move { started >= runs }
    })
    .await;
}

/// The kinds of the run's events, oldest first.
async fn event_kinds(store: &Store, run: Uuid) -> Vec<String> {
    store
        .events(run, 0, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect()
}
