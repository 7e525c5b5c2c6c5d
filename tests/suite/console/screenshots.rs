//! `just screenshots`: the console's main pages as PNGs in `docs/console/`,
//! from a real browser over real data. Not a check (it asserts only that the
//! pages could be drawn), so it runs only when asked.

use std::time::Duration;

use hubwright_state::model::{Role, RunState};
use hubwright_testkit::server::token;
use hubwright_testkit::wait;
use serde_json::json;

use super::browser_setup::Console;

/// The run a `POST /v1/environments` answer links to.
fn run_of(answer: &serde_json::Value) -> uuid::Uuid {
    answer["links"]["run"]
        .as_str()
        .and_then(|link| link.rsplit('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no run in {answer}"))
}

#[tokio::test]
#[ignore = "writes docs/console/*.png; run by `just screenshots`"]
async fn screenshots_of_the_main_pages() {
    let dir = std::env::var("HUBWRIGHT_SCREENSHOTS_DIR")
        .expect("HUBWRIGHT_SCREENSHOTS_DIR: where the screenshots go (`just screenshots` sets it)");
    let Some(console) = Console::start().await else {
        return;
    };
    let store = &console.db.store;
    let (mut ready, mut failed) = (None, None);
    for (owner, name, template) in [
        ("olga", "course-2026", "demo"),
        ("olga", "thesis", "demo"),
        ("erin", "physics-lab", "demo"),
        ("erin", "quota-check", "repair"),
    ] {
        let token = token(store, owner, Role::Developer).await;
        let answer = console
            .server
            .post("/v1/environments")
            .token(&token)
            .json(&json!({"name": name, "template": template}))
            .send()
            .await;
        assert!(answer.status.is_success(), "{:?}", answer.body);
        let run = run_of(&answer.body);
        let want = if template == "repair" {
            RunState::Failed
        } else {
            RunState::Succeeded
        };
        wait::until(
            &format!("{name} settles"),
            Duration::from_secs(60),
            || async { store.run(run).await.unwrap().state == want },
        )
        .await;
        if name == "course-2026" {
            ready = Some(
                answer.body["environment"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        if template == "repair" {
            failed = Some(run.to_string());
        }
    }
    std::fs::create_dir_all(&dir).unwrap();
    console
        .script("console-screenshots")
        .env("HUBWRIGHT_SCREENSHOTS_DIR", &dir)
        .env("HUBWRIGHT_READY_ENVIRONMENT", ready.unwrap())
        .env("HUBWRIGHT_FAILED_RUN", failed.unwrap())
        .run()
        .await;
}
