//! In Chromium: a developer requests, watches, extends and deletes an
//! environment, and cannot open another developer's.

use std::time::Duration;

use hubwright_state::model::{EnvironmentPhase, Role};
use hubwright_testkit::server::token;
use hubwright_testkit::wait;
use serde_json::json;

use super::browser_setup::Console;

#[tokio::test]
async fn a_developer_requests_watches_extends_and_deletes_an_environment() {
    let Some(console) = Console::start().await else {
        return;
    };
    let erin = token(&console.db.store, "erin", Role::Developer).await;
    let theirs = console
        .server
        .post("/v1/environments")
        .token(&erin)
        .json(&json!({"name": "erins", "template": "demo"}))
        .send()
        .await;
    assert!(theirs.status.is_success(), "{:?}", theirs.body);
    let other = theirs.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    console
        .script("console-developer")
        .env("HUBWRIGHT_OTHER_ENVIRONMENT", &other)
        .run()
        .await;

    // What the browser did happened: dana's environment was extended, then
    // deleted through its teardown.
    let store = &console.db.store;
    let dana = wait::until_some(
        "dana's environment torn down",
        Duration::from_secs(30),
        || async {
            let rows: Vec<(String, EnvironmentPhase, i64)> = sqlx::query_as(
                "SELECT owner, phase, extract(epoch FROM expires_at - created_at)::bigint \
             FROM environments WHERE name = 'notebook'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            rows.into_iter()
                .find(|(_, phase, _)| *phase == EnvironmentPhase::Deleted)
        },
    )
    .await;
    assert_eq!(dana.0, "dana");
    assert!(
        dana.2 > 7200 - 60,
        "extended to about 2h from when it was extended: {}s",
        dana.2
    );
}
