//! A step's starts and success as `/v1/runs/{id}/events` reads them, now
//! that the latest start and the success live on the step row and earlier
//! starts are stored when a later one replaces them (decision 0020, third
//! round): the same ids, kinds, actors, messages, data and times as when
//! every one of them was a stored event.

use chrono::{DateTime, Duration as Span, Utc};
use hubwright_state::model::{ErrorClass, StepFailure};
use hubwright_state::store::checkpoint::{Fence, StepSuccess};
use serde_json::Value;

use super::*;

/// One event as the API answers it, with its id and time apart.
type Line = (String, Option<i64>, String, String, Value);

/// The run's timeline through the API, page by page (two at a time, so
/// `?after=` resumes at synthesized and stored events alike).
async fn timeline(
    server: &ApiServer,
    token: &str,
    run: uuid::Uuid,
) -> Vec<(i64, DateTime<Utc>, Line)> {
    let mut read = Vec::new();
    let mut after = 0;
    loop {
        let page = server
            .get(&format!("/v1/runs/{run}/events?limit=2&after={after}"))
            .token(token)
            .send()
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:#}", page.body);
        let events = page.body["events"].as_array().unwrap().clone();
        if events.is_empty() {
            return read;
        }
        for e in events {
            let at: DateTime<Utc> = serde_json::from_value(e["at"].clone()).unwrap();
            read.push((
                e["id"].as_i64().unwrap(),
                at,
                (
                    e["kind"].as_str().unwrap().to_owned(),
                    e["step_idx"].as_i64(),
                    e["actor"].as_str().unwrap().to_owned(),
                    e["message"].as_str().unwrap().to_owned(),
                    e["data"].clone(),
                ),
            ));
        }
        after = page.body["next_after"].as_i64().unwrap();
    }
}

fn line(kind: &str, step: Option<i64>, actor: &str, message: &str, data: Value) -> Line {
    (
        kind.to_owned(),
        step,
        actor.to_owned(),
        message.to_owned(),
        data,
    )
}

#[tokio::test]
async fn a_step_retried_after_a_transient_failure_shows_both_starts_and_its_success_in_order() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let store = &db.store;
    // Whole seconds, so the times compare exactly after the database's
    // microseconds; a second apart, so each event's time is its own.
    let (run, t0) = factory::run_accepted_an_hour_ago(store).await;
    let at = |seconds: i64| t0 + Span::seconds(seconds);
    let lease = Span::seconds(30);

    let first = store.claim("worker-a", 1, lease, at(1)).await.unwrap();
    let fence = Fence {
        run_id: run,
        token: first[0].token,
        step_idx: 0,
    };
    let refused = StepFailure {
        class: ErrorClass::Retryable,
        message: "connection refused".to_owned(),
        detail: None,
    };
    store
        .commit_retry(fence, &refused, at(2), at(2))
        .await
        .unwrap();
    let second = store.claim("worker-b", 1, lease, at(3)).await.unwrap();
    assert_eq!(second[0].step.attempts, 2);
    let success = |step_idx| StepSuccess {
        run_id: run,
        token: second[0].token,
        step_idx,
        output: json!({}),
    };
    store.commit_successes(&[success(0)], at(4)).await.unwrap();
    store.commit_successes(&[success(1)], at(5)).await.unwrap();

    let read = timeline(&server, &ops, run).await;
    assert!(
        read.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "ids sort in the timeline's order: {read:?}"
    );
    let times: Vec<DateTime<Utc>> = read.iter().map(|(_, at, _)| *at).collect();
    assert_eq!(times, [t0, at(1), at(2), at(3), at(4), at(4), at(5), at(5)]);
    let attempt = |n: i64| json!({ "attempt": n });
    // What the stored events said before: the claim's start carries its
    // attempt in its data, the start by the checkpoint before does not.
    let expected = [
        line("run_created", None, "alice", "run accepted", Value::Null),
        line(
            "step_started",
            Some(0),
            "worker-a",
            "step first started (attempt 1)",
            attempt(1),
        ),
        // Stored as it always was; its wording is not this test's concern.
        line(
            "step_retry_scheduled",
            Some(0),
            "worker-a",
            &read[2].2.3,
            read[2].2.4.clone(),
        ),
        line(
            "step_started",
            Some(0),
            "worker-b",
            "step first started (attempt 2)",
            attempt(2),
        ),
        line(
            "step_succeeded",
            Some(0),
            "worker-b",
            "step first succeeded",
            Value::Null,
        ),
        line(
            "step_started",
            Some(1),
            "worker-b",
            "step second started (attempt 1)",
            Value::Null,
        ),
        line(
            "step_succeeded",
            Some(1),
            "worker-b",
            "step second succeeded",
            Value::Null,
        ),
        line(
            "run_succeeded",
            None,
            "worker-b",
            "run succeeded",
            Value::Null,
        ),
    ];
    let lines: Vec<Line> = read.iter().map(|(_, _, l)| l.clone()).collect();
    assert_eq!(lines, expected);

    // Only what a row could not hold is stored: the replaced start.
    let stored: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, kind FROM events WHERE run_id = $1 ORDER BY id")
            .bind(run)
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        stored,
        [
            (read[1].0, "step_started".to_owned()),
            (read[2].0, "step_retry_scheduled".to_owned())
        ]
    );
    drop(server);
    db.drop_now().await;
}
