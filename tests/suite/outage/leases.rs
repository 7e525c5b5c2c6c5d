//! Outages while runs are in flight: a commit is tried again while its lease
//! lasts, leases are refreshed as soon as the database is back, and runs
//! whose lease did run out resume at once rather than at the next rescue.

use std::time::Duration;

use hubwright_state::model::RunState;
use hubwright_testkit::harness::{catalog, start_many};
use hubwright_testkit::tcp_proxy::TcpProxy;
use hubwright_testkit::{TestDatabase, scratch_dir, wait};

use super::{WITHIN, all_inside_first_step, effect_counts, event_kinds, recording_workflow, serve};

/// A worker flag set: fast polls, a rescue round too rare to explain a
/// prompt resumption by itself.
const WORKER: [&str; 7] = [
    "--worker",
    "--poll-interval",
    "200ms",
    "--rescue-interval",
    "30s",
    "--shutdown-grace",
    "5s",
];

#[tokio::test]
async fn an_outage_shorter_than_the_lease_repeats_no_step() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("outage-short");
    let effects = dir.join("effects.log");
    let workflows = recording_workflow(&dir, &effects, "2s");
    let (proxy, url) = TcpProxy::for_database(&db.url).await;
    let mut args = WORKER.to_vec();
    args.extend(["--lease", "10s"]);
    let process = serve(&url, &workflows, &args, dir.join("worker.log"));
    let catalog = catalog(&db.store, &workflows).await;
    let runs = start_many(&db.store, &catalog, "outage", "provision", 6).await;

    // Step a ends a moment into the outage, and its commit fails until the
    // database is back: longer than the 2 s a commit used to be tried for,
    // well inside the 10 s lease.
    all_inside_first_step(runs.len(), &process).await;
    proxy.cut_for(Duration::from_secs(5)).await.unwrap();
    wait::runs_in_state(&db.store, RunState::Succeeded, 6, WITHIN).await;

    let counts = effect_counts(&effects);
    for run in &runs {
        for step in 0..3 {
            assert_eq!(
                counts.get(&(*run, step)),
                Some(&1),
                "run {run} step {step} executed once: {counts:?}"
            );
        }
        let kinds = event_kinds(&db.store, *run).await;
        assert!(
            !kinds.iter().any(|kind| kind == "lease_expired"),
            "run {run} kept its lease: {kinds:?}"
        );
    }
    let log = process.log_text();
    assert!(
        log.contains("commit failed; retrying"),
        "a commit met the outage:\n{log}"
    );
    // The heartbeat's next try after the outage may come after the runs have
    // finished (its backoff is longer than their last steps): wait for it.
    wait::until_some(
        "the heartbeat to refresh the leases after the outage",
        WITHIN,
        || async {
            process
                .log_text()
                .contains("database reachable again; leases refreshed")
                .then_some(())
        },
    )
    .await;
    drop(process);
    db.drop_now().await;
}

#[tokio::test]
async fn an_outage_longer_than_the_lease_repeats_only_the_expired_steps_and_they_resume_at_once() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("outage-long");
    let effects = dir.join("effects.log");
    let workflows = recording_workflow(&dir, &effects, "1s");
    let (proxy, url) = TcpProxy::for_database(&db.url).await;
    let mut args = WORKER.to_vec();
    args.extend(["--lease", "2s"]);
    let process = serve(&url, &workflows, &args, dir.join("worker.log"));
    let catalog = catalog(&db.store, &workflows).await;
    let runs = start_many(&db.store, &catalog, "outage", "provision", 4).await;

    all_inside_first_step(runs.len(), &process).await;
    proxy.cut_for(Duration::from_secs(5)).await.unwrap();
    let restored = tokio::time::Instant::now();
    // Claimed again: rescued and picked up after the outage. With a 30 s
    // rescue round, only the rescue the outage itself asked for explains it.
    let mut resumed_after = Duration::ZERO;
    for run in &runs {
        let claimed_again = wait::until_some("the run to be claimed again", WITHIN, || async {
            let run = db.store.run(*run).await.unwrap();
            (run.claims >= 2).then_some(())
        });
        claimed_again.await;
        resumed_after = resumed_after.max(restored.elapsed());
    }
    // Half the rescue round: far enough from it that a loaded machine's
    // slowness is not mistaken for waiting on the round.
    assert!(
        resumed_after < Duration::from_secs(15),
        "every run resumed {resumed_after:?} after the database came back, not at the next rescue round"
    );
    eprintln!("runs resumed within {resumed_after:?} of the database's return");
    wait::runs_in_state(&db.store, RunState::Succeeded, 4, WITHIN).await;

    let counts = effect_counts(&effects);
    for run in &runs {
        assert_eq!(
            counts.get(&(*run, 0)),
            Some(&2),
            "run {run}: step a, in flight when its lease ran out, ran again: {counts:?}"
        );
        for step in 1..3 {
            assert_eq!(
                counts.get(&(*run, step)),
                Some(&1),
                "run {run} step {step} executed once: {counts:?}"
            );
        }
        let kinds = event_kinds(&db.store, *run).await;
        assert!(
            kinds.iter().any(|kind| kind == "lease_expired"),
            "run {run} was rescued: {kinds:?}"
        );
    }
    drop(process);
    db.drop_now().await;
}
