//! Scaling out: three `hubwright serve` processes (API, worker and scheduler
//! each) against one Postgres share 300 provisioning requests made through
//! their APIs; every run completes with each step's effect exactly once, all
//! three do work, and one stopped with SIGTERM mid-run loses nothing.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use hubwright_state::model::{Role, RunState};
use hubwright_testkit::harness::effects;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use serde_json::json;
use uuid::Uuid;

use crate::BIN;
const WITHIN: Duration = Duration::from_secs(45);
const REQUESTS: usize = 300;
/// test-record steps per run: the effects file gets this many lines per run.
const EFFECTS_PER_RUN: usize = 3;

fn template(log: &Path) -> String {
    format!(
        r#"
name: scale
workflows:
  provision:
    steps:
      - {{ name: a, kind: test-record, with: {{ path: "{log}" }} }}
      - {{ name: b, kind: test-block, with: {{ duration: 400ms, record: "{log}" }} }}
      - {{ name: c, kind: test-record, with: {{ path: "{log}" }} }}
  teardown:
    steps:
      - {{ name: remove, kind: noop }}
"#,
        log = log.display()
    )
}

/// `hubwright serve` with all three roles, a short lease and fast rescue.
async fn replica(db: &TestDatabase, workflows: &Path, id: &str) -> ApiServer {
    let args = [
        "--worker",
        "--scheduler",
        "--worker-id",
        id,
        "--concurrency",
        "16",
        "--lease",
        "2s",
        "--rescue-interval",
        "200ms",
        "--poll-interval",
        "200ms",
        "--shutdown-grace",
        "10s",
    ];
    ApiServer::start_process(BIN, db, workflows, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_300_requests_and_a_sigtermed_one_loses_nothing() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("scale-out");
    let log = dir.join("effects.log");
    let workflows = dir.join("workflows");
    write_workflow(&workflows, "scale", &template(&log));
    let ids = ["one", "two", "three"];
    let mut replicas = Vec::new();
    for id in ids {
        replicas.push(replica(&db, &workflows, id).await);
    }
    for replica in &replicas {
        replica
            .process()
            .wait_for_log("worker started", WITHIN)
            .await;
    }

    // Requests go round-robin to the three APIs, 30 at a time.
    let secret = token(&db.store, "alice", Role::Developer).await;
    let mut runs: Vec<Uuid> = Vec::new();
    for chunk in (0..REQUESTS).collect::<Vec<_>>().chunks(30) {
        let calls: Vec<_> = chunk
            .iter()
            .map(|i| {
                replicas[i % 3]
                    .post("/v1/environments")
                    .token(&secret)
                    .json(&json!({ "name": format!("lab-{i}"), "template": "scale" }))
                    .send()
            })
            .map(tokio::spawn)
            .collect();
        for call in calls {
            let reply = call.await.unwrap();
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
            runs.push(reply.body["run_id"].as_str().unwrap().parse().unwrap());
        }
    }

    // Mid-way, the third replica is told to stop, like a pod being drained.
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !db
        .store
        .count_runs_by_state()
        .await
        .unwrap()
        .iter()
        .any(|(state, n)| *state == RunState::Succeeded && *n >= 60)
    {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut stopped = replicas.pop().unwrap();
    let before: HashSet<String> = effects(&log).into_iter().map(|e| e.3).collect();
    assert!(
        before.contains("three"),
        "it was working when stopped: {before:?}"
    );
    stopped.process().signal("TERM");
    assert_eq!(
        stopped
            .process_mut()
            .wait_exit(Duration::from_secs(15))
            .await,
        Some(0),
        "{}",
        stopped.process().log_text()
    );

    wait::runs_in_state(&db.store, RunState::Succeeded, REQUESTS as i64, WITHIN).await;
    drop(replicas);

    let all = effects(&log);
    assert_eq!(
        all.len(),
        REQUESTS * EFFECTS_PER_RUN,
        "no effect lost or repeated"
    );
    let mut counts: HashMap<(Uuid, i32), usize> = HashMap::new();
    let mut per_worker: HashMap<&str, usize> = HashMap::new();
    for (run, step, _, worker) in &all {
        *counts.entry((*run, *step)).or_default() += 1;
        *per_worker.entry(worker.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert_eq!(
        counts.keys().map(|(run, _)| *run).collect::<HashSet<_>>(),
        runs.iter().copied().collect::<HashSet<_>>(),
        "every requested run, and only those"
    );
    assert_eq!(
        per_worker.keys().copied().collect::<HashSet<_>>(),
        HashSet::from(ids),
        "all three took part: {per_worker:?}"
    );
    assert!(db.store.audit_exactly_once().await.unwrap().is_empty());
    db.drop_now().await;
}
