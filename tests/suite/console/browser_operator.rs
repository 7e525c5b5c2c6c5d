//! In Chromium: an operator retries a failed run from its page and watches
//! it succeed.

use std::time::Duration;

use hubwright_state::model::{Role, RunState};
use hubwright_testkit::server::token;
use hubwright_testkit::wait;
use serde_json::json;

use super::browser_setup::Console;

#[tokio::test]
async fn an_operator_retries_a_failed_step_from_the_run_page_and_watches_it_succeed() {
    let Some(console) = Console::start().await else {
        return;
    };
    let erin = token(&console.db.store, "erin", Role::Developer).await;
    let requested = console
        .server
        .post("/v1/environments")
        .token(&erin)
        .json(&json!({"name": "broken", "template": "repair"}))
        .send()
        .await;
    assert!(requested.status.is_success(), "{:?}", requested.body);
    let run_id: uuid::Uuid = requested.body["links"]["run"]
        .as_str()
        .and_then(|link| link.rsplit('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let store = &console.db.store;
    wait::until(
        "the run fails at configure",
        Duration::from_secs(30),
        || async { store.run(run_id).await.unwrap().state == RunState::Failed },
    )
    .await;
    // The operator has fixed the cause; the retry will find it fixed.
    std::fs::write(&console.fixed, "fixed").unwrap();

    console
        .script("console-operator")
        .env("HUBWRIGHT_RUN_ID", run_id.to_string())
        .run()
        .await;

    let run = store.run(run_id).await.unwrap();
    assert_eq!(run.state, RunState::Succeeded);
    let retried_by: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM events WHERE run_id = $1 AND kind = 'run_retried'")
            .bind(run_id)
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        retried_by,
        ["olga"],
        "the retry is the operator's, from the console"
    );
}
