//! The testkit's own kinds, which the runner's tests lean on: each does
//! exactly what its parameters say.

use std::time::Duration;

use hubwright_testkit::harness::effects;
use hubwright_testkit::scratch_dir;
use hubwright_testkit::steps::{Block, Fail, Flaky, Polls, Record};
use hubwright_testkit::work::{WORKER, WorkRun};
use serde_json::json;

use super::{done, failed, retried, setup, waiting};

#[tokio::test]
async fn test_flaky_fails_its_first_attempts_retryably_then_succeeds() {
    let (db, clock) = setup().await;
    let mut run = WorkRun::builder(&db.store, &clock).start().await;
    let params = json!({ "failures": 2 });

    let error = retried(run.work(&Flaky, params.clone()).await);
    assert_eq!(error.message, "transient failure 1 of 2");
    assert_eq!(error.detail, Some(json!({ "status": 503 })));
    assert_eq!(error.retry_after, None);

    run.next_attempt();
    assert_eq!(
        retried(run.work(&Flaky, params.clone()).await).message,
        "transient failure 2 of 2"
    );
    run.next_attempt();
    assert_eq!(
        done(run.work(&Flaky, params).await),
        json!({ "attempt": 3 })
    );
    db.drop_now().await;
}

#[tokio::test]
async fn test_flaky_with_retry_after_asks_the_runner_to_wait_that_long() {
    let (db, clock) = setup().await;
    let run = WorkRun::builder(&db.store, &clock).start().await;
    let error = retried(
        run.work(&Flaky, json!({ "failures": 1, "retry_after": "45s" }))
            .await,
    );
    assert_eq!(error.retry_after, Some(Duration::from_secs(45)));
    db.drop_now().await;
}

#[tokio::test]
async fn test_fail_fails_permanently_verbatim_until_its_file_exists() {
    let (db, clock) = setup().await;
    let run = WorkRun::builder(&db.store, &clock).start().await;
    let fixed = scratch_dir("fail").join("fixed");
    let params = json!({ "message": "quota exceeded in project x", "until_exists": fixed });

    let error = failed(run.work(&Fail, params.clone()).await);
    assert_eq!(error.message, "quota exceeded in project x");
    assert_eq!(error.detail, Some(json!({ "status": 403 })));

    std::fs::write(&fixed, "").unwrap();
    assert_eq!(done(run.work(&Fail, params).await), json!({ "attempt": 1 }));
    db.drop_now().await;
}

#[tokio::test]
async fn test_record_appends_one_line_per_execution_naming_run_step_attempt_and_worker() {
    let (db, clock) = setup().await;
    let mut run = WorkRun::builder(&db.store, &clock)
        .output("before", json!({}))
        .start()
        .await;
    let log = scratch_dir("record").join("effects");
    let params = json!({ "path": log });

    assert_eq!(
        done(run.work(&Record, params.clone()).await),
        json!({ "worker": WORKER, "attempt": 1 })
    );
    run.next_attempt();
    run.work(&Record, params).await;
    let id = run.run_id();
    assert_eq!(
        effects(&log),
        [(id, 1, 1, WORKER.to_owned()), (id, 1, 2, WORKER.to_owned())]
    );
    db.drop_now().await;
}

#[tokio::test]
async fn test_record_that_cannot_write_its_log_is_retried() {
    let (db, clock) = setup().await;
    let run = WorkRun::builder(&db.store, &clock).start().await;
    let missing = scratch_dir("record").join("no-such-dir").join("effects");
    let error = retried(run.work(&Record, json!({ "path": missing })).await);
    assert!(
        error
            .message
            .starts_with(&format!("cannot record effect in {}", missing.display())),
        "{}",
        error.message
    );
    db.drop_now().await;
}

#[tokio::test]
async fn test_polls_waits_its_interval_for_each_poll_then_is_done() {
    let (db, clock) = setup().await;
    let mut run = WorkRun::builder(&db.store, &clock).start().await;
    let params = json!({ "polls": 2, "interval": "5s" });

    for polled in 0..2 {
        let (until, reason) = waiting(run.work(&Polls, params.clone()).await);
        assert_eq!(until, clock_now(&run) + chrono::Duration::seconds(5));
        assert_eq!(reason, format!("not ready yet ({polled} of 2 polls)"));
        clock.advance(chrono::Duration::seconds(5));
        run.poll();
    }
    assert_eq!(
        done(run.work(&Polls, params).await),
        json!({ "polls": 2, "attempt": 1 })
    );
    db.drop_now().await;
}

#[tokio::test]
async fn test_block_holds_the_worker_then_is_done() {
    let (db, clock) = setup().await;
    let run = WorkRun::builder(&db.store, &clock).start().await;
    assert_eq!(
        done(run.work(&Block, json!({ "duration": "1ms" })).await),
        json!({ "worker": WORKER, "attempt": 1 })
    );
    db.drop_now().await;
}

fn clock_now(run: &WorkRun) -> chrono::DateTime<chrono::Utc> {
    hubwright_state::Clock::now(run.clock())
}
