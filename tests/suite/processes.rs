//! Crash, pause and scale: real `hubwright` processes against one real
//! Postgres, killed with SIGKILL, paused with SIGSTOP, stopped with SIGTERM.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hubwright_state::model::{RunState, StepState};
use hubwright_testkit::harness::{catalog, effects, start, start_many};
use hubwright_testkit::process::Process;
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use uuid::Uuid;

use crate::BIN;
const WITHIN: Duration = Duration::from_secs(60);

/// `hubwright serve --worker` with a two-second lease and fast rescue.
fn serve(db: &TestDatabase, workflows: &Path, id: &str, log: PathBuf) -> Process {
    let workflows = workflows.display().to_string();
    Process::start(
        Path::new(BIN),
        &db.url,
        &[
            "serve",
            "--worker",
            "--workflows",
            &workflows,
            "--worker-id",
            id,
            "--lease",
            "2s",
            "--rescue-interval",
            "200ms",
            "--poll-interval",
            "200ms",
            "--shutdown-grace",
            "10s",
        ],
        &log,
    )
}

fn record_workflow(dir: &Path, log: &Path, block: &str) -> PathBuf {
    write_workflow(
        &dir.join("workflows"),
        "crash",
        &format!(
            r#"
name: crash
workflows:
  provision:
    steps:
      - {{ name: a, kind: test-record, with: {{ path: "{log}" }} }}
      - {{ name: b, kind: test-block, with: {{ duration: {block}, record: "{log}" }} }}
      - {{ name: c, kind: test-record, with: {{ path: "{log}" }} }}
      - {{ name: d, kind: test-record, with: {{ path: "{log}" }} }}
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

#[tokio::test]
async fn a_sigkilled_worker_loses_no_step_and_repeats_none() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("sigkill");
    let log = dir.join("effects.log");
    let workflows = record_workflow(&dir, &log, "3s");
    let catalog = catalog(&db.store, &workflows).await;
    let runs = start_many(&db.store, &catalog, "crash", "provision", 5).await;

    let first = serve(&db, &workflows, "doomed", dir.join("doomed.log"));
    // Every run has committed step a and is inside step b when the worker dies.
    // (A step whose effect happened but whose checkpoint did not is executed
    // again: that is at-least-once for the step in flight, and not what this
    // test is about.)
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let mut inside_b = 0;
        for run in &runs {
            let steps = db.store.steps(*run).await.unwrap();
            if steps[0].state == StepState::Succeeded && steps[1].state == StepState::Running {
                inside_b += 1;
            }
        }
        if inside_b == runs.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runs never all reached step b:\n{}",
            first.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9().await;

    let second = serve(&db, &workflows, "survivor", dir.join("survivor.log"));
    wait::runs_in_state(&db.store, RunState::Succeeded, 5, WITHIN).await;
    drop(second);

    let counts = effect_counts(&log);
    for run in &runs {
        for step in 0..4 {
            assert_eq!(
                counts.get(&(*run, step)),
                Some(&1),
                "run {run} step {step}: {counts:?}"
            );
        }
        let kinds: Vec<String> = db
            .store
            .events(*run, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert!(
            kinds.contains(&"lease_expired".to_owned()),
            "run {run} was rescued: {kinds:?}"
        );
    }
    assert!(db.store.audit_exactly_once().await.unwrap().is_empty());
    db.drop_now().await;
}

#[tokio::test]
async fn two_workers_commit_every_step_of_200_runs_exactly_once() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("two-workers");
    let log = dir.join("effects.log");
    let workflows = record_workflow(&dir, &log, "1ms");
    let catalog = catalog(&db.store, &workflows).await;
    let first = serve(&db, &workflows, "left", dir.join("left.log"));
    let second = serve(&db, &workflows, "right", dir.join("right.log"));
    first.wait_for_log("worker started", WITHIN).await;
    second.wait_for_log("worker started", WITHIN).await;

    let runs = start_many(&db.store, &catalog, "crash", "provision", 200).await;
    wait::runs_in_state(&db.store, RunState::Succeeded, 200, WITHIN).await;
    drop((first, second));

    let all = effects(&log);
    assert_eq!(all.len(), 800, "every step of every run took effect once");
    let counts = effect_counts(&log);
    assert_eq!(counts.len(), 800);
    assert!(counts.values().all(|n| *n == 1));
    let expected: HashSet<Uuid> = runs.into_iter().collect();
    assert_eq!(
        counts.keys().map(|(run, _)| *run).collect::<HashSet<_>>(),
        expected
    );
    let workers: HashSet<&str> = all
        .iter()
        .map(|(_, _, _, worker)| worker.as_str())
        .collect();
    assert_eq!(
        workers,
        HashSet::from(["left", "right"]),
        "both workers took part"
    );
    assert!(db.store.audit_exactly_once().await.unwrap().is_empty());
    db.drop_now().await;
}

#[tokio::test]
async fn a_paused_worker_loses_its_lease_and_its_late_write_is_refused() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("sigstop");
    let workflows = write_workflow(
        &dir.join("workflows"),
        "pause",
        r#"
name: pause
workflows:
  provision:
    steps:
      - { name: long, kind: test-block, with: { duration: 1500ms } }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let paused = serve(&db, &workflows, "paused", dir.join("paused.log"));
    paused.wait_for_log("worker started", WITHIN).await;
    let run_id = start(&db.store, &catalog, "pause", "provision").await;
    paused.wait_for_log(r#""step":"long""#, WITHIN).await;
    paused.signal("STOP");

    let other = serve(&db, &workflows, "other", dir.join("other.log"));
    let run = wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        run.claims, 2,
        "claimed by the paused worker, then by the other"
    );
    let steps = db.store.steps(run_id).await.unwrap();
    assert_eq!(steps[0].output.as_ref().unwrap()["worker"], "other");

    paused.signal("CONT");
    paused
        .wait_for_log(
            "lease lost; checkpoint refused by the fencing token",
            WITHIN,
        )
        .await;
    drop((paused, other));

    let steps = db.store.steps(run_id).await.unwrap();
    assert_eq!(
        steps[0].output.as_ref().unwrap()["worker"],
        "other",
        "the late write changed nothing"
    );
    let succeeded = db
        .store
        .events(run_id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "step_succeeded")
        .count();
    assert_eq!(succeeded, 1);
    db.drop_now().await;
}

#[tokio::test]
async fn an_accepted_run_survives_the_process_dying_right_after_the_commit() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("accept");
    let workflows = write_workflow(
        &dir.join("workflows"),
        "accept",
        r#"
name: accept
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
"#,
    );
    let out = tokio::process::Command::new(BIN)
        .args(["admin", "run", "accept", "--workflows"])
        .arg(&workflows)
        .env("DATABASE_URL", &db.url)
        .env("HUBWRIGHT_TESTKIT_CRASH", "after-enqueue-commit")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "the process died");
    assert!(
        out.stdout.is_empty(),
        "it died before it could even print the run id"
    );
    let counts = db.store.count_runs_by_state().await.unwrap();
    assert_eq!(counts, [(RunState::Pending, 1)]);

    let worker = serve(&db, &workflows, "after", dir.join("after.log"));
    wait::runs_in_state(&db.store, RunState::Succeeded, 1, WITHIN).await;
    drop(worker);
    db.drop_now().await;
}

#[tokio::test]
async fn sigterm_lets_the_step_in_flight_finish_and_hands_the_rest_over() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("sigterm");
    let log = dir.join("effects.log");
    let workflows = record_workflow(&dir, &log, "1s");
    let catalog = catalog(&db.store, &workflows).await;
    let mut stopping = serve(&db, &workflows, "stopping", dir.join("stopping.log"));
    let run_id = start(&db.store, &catalog, "crash", "provision").await;
    stopping.wait_for_log(r#""step":"b""#, WITHIN).await;

    stopping.signal("TERM");
    assert_eq!(stopping.wait_exit(Duration::from_secs(15)).await, Some(0));
    let run = db.store.run(run_id).await.unwrap();
    assert_eq!(
        (run.state, run.current_step),
        (RunState::Pending, 2),
        "b finished, c was handed back"
    );

    let next = serve(&db, &workflows, "next", dir.join("next.log"));
    wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    drop(next);
    let counts = effect_counts(&log);
    assert!(
        (0..4).all(|step| counts.get(&(run_id, step)) == Some(&1)),
        "{counts:?}"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn a_bad_workflow_file_stops_start_up_with_a_clear_message() {
    let dir = write_workflow(
        &scratch_dir("bad-start"),
        "bad",
        r#"
name: bad
workflows:
  provision:
    steps:
      - { name: one, kind: noop }
      - { name: two, kind: nope }
"#,
    );
    let out = tokio::process::Command::new(BIN)
        .args(["serve", "--worker", "--workflows"])
        .arg(&dir)
        .env("DATABASE_URL", "postgres://root@127.0.0.1:1/unused")
        .env("HUBWRIGHT_SECRET_KEY", hubwright_testkit::TEST_SECRET_KEY)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "error: {}: workflows.provision.steps[1] (two).kind: unknown step kind `nope`",
        dir.join("bad.yaml").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
