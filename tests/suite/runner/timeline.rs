//! A run's timeline as stored and as read: its creation and success are its
//! row, the commonest messages are composed on read (decision 0020).

use hubwright_state::model::RunState;
use hubwright_testkit::harness::{catalog, fast_config, spawn_worker, start};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};

use super::WITHIN;

#[tokio::test]
async fn a_one_step_run_reads_four_events_in_order_but_stores_two_without_messages() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(
        &scratch_dir("timeline"),
        "timeline",
        r#"
name: timeline
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
"#,
    );
    let catalog = catalog(&db.store, &workflows).await;
    let worker = spawn_worker(&db.store, fast_config("w1"));
    let run_id = start(&db.store, &catalog, "timeline", "provision").await;
    wait::run_state(&db.store, run_id, RunState::Succeeded, WITHIN).await;
    worker.shutdown().await.unwrap();

    let events = db.store.events(run_id, 0, 100).await.unwrap();
    let read: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            ("run_created", "run accepted"),
            ("step_started", "step only started (attempt 1)"),
            ("step_succeeded", "step only succeeded"),
            ("run_succeeded", "run succeeded"),
        ]
    );
    assert!(
        events.windows(2).all(|pair| pair[0].id < pair[1].id),
        "ids sort in the timeline's order: {events:?}"
    );
    assert_eq!(
        events[3].actor, events[2].actor,
        "the run succeeded by the worker that finished its last step"
    );
    let resumed = db.store.events(run_id, events[0].id, 100).await.unwrap();
    assert_eq!(
        resumed.iter().map(|e| e.id).collect::<Vec<_>>(),
        events[1..].iter().map(|e| e.id).collect::<Vec<_>>(),
        "a cursor at the creation resumes after it"
    );

    let stored: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, message FROM events WHERE run_id = $1 ORDER BY id")
            .bind(run_id)
            .fetch_all(db.store.pool())
            .await
            .unwrap();
    assert_eq!(
        stored,
        [
            ("step_started".to_owned(), None),
            ("step_succeeded".to_owned(), None)
        ]
    );
    db.drop_now().await;
}
