//! `noop` and `sleep`.

use chrono::Duration;
use hubwright_testkit::work::{WorkRun, work_step};
use hubwright_worker::Outcome;
use hubwright_worker::builtin::{Noop, Sleep};
use serde_json::json;

use super::{done, failed, setup, waiting};

#[tokio::test]
async fn noop_is_done_at_once_with_an_empty_output() {
    let (db, clock) = setup().await;
    let outcome = work_step(&db.store, &clock, &Noop, json!({})).await;
    assert_eq!(outcome, Outcome::Done(json!({})));
    db.drop_now().await;
}

#[tokio::test]
async fn parameters_a_kind_does_not_know_fail_permanently_and_name_the_field() {
    let (db, clock) = setup().await;
    let error = failed(work_step(&db.store, &clock, &Noop, json!({ "colour": "red" })).await);
    assert!(
        error
            .message
            .starts_with("parameters of step step do not fit kind `noop`: unknown field `colour`"),
        "{}",
        error.message
    );
    db.drop_now().await;
}

#[tokio::test]
async fn sleep_waits_until_its_first_start_plus_the_duration_then_is_done() {
    let (db, clock) = setup().await;
    let mut run = WorkRun::builder(&db.store, &clock)
        .step("pause")
        .start()
        .await;
    let params = json!({ "duration": "90s" });
    let wake_at = run.ctx().first_started_at + Duration::seconds(90);

    let (until, reason) = waiting(run.work(&Sleep, params.clone()).await);
    assert_eq!(until, wake_at);
    assert_eq!(reason, "sleeping 1m30s more");

    // A poll before the time is up waits for the same moment: the timer
    // counts from the first start, not from this execution.
    clock.advance(Duration::seconds(60));
    run.poll();
    let (until, reason) = waiting(run.work(&Sleep, params.clone()).await);
    assert_eq!(until, wake_at);
    assert_eq!(reason, "sleeping 30s more");

    clock.advance(Duration::seconds(30));
    run.poll();
    assert_eq!(
        done(run.work(&Sleep, params).await),
        json!({ "slept": "1m30s" })
    );
    db.drop_now().await;
}
