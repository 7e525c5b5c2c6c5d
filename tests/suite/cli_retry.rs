//! `hubwright run retry --from-step`: a step number (from 1) goes to the API as
//! a JSON number and a name as a string, and the answer and the refusals
//! number steps the same way.

use std::process::Output;
use std::time::Duration;

use hubwright_state::model::{Role, RunState};
use hubwright_testkit::server::{ApiServer, token};
use hubwright_testkit::{TestDatabase, factory, scratch_dir};

use crate::BIN;

async fn retry(server: &ApiServer, token: &str, run: uuid::Uuid, from: &str) -> Output {
    let command = tokio::process::Command::new(BIN)
        .args(["run", "retry", &run.to_string(), "--from-step", from])
        .env("HUBWRIGHT_URL", &server.url)
        .env("HUBWRIGHT_TOKEN", token)
        .output();
    tokio::time::timeout(Duration::from_secs(60), command)
        .await
        .expect("the CLI finished")
        .expect("run the CLI")
}

#[tokio::test]
async fn run_retry_takes_a_step_by_name_or_by_its_number_from_one() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("cli-retry"), &[]).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    // Two runs of the steps `first` and `second`, each failed at `first`.
    let by_name = factory::failed_run(&db.store, "alice", "boom").await;
    let by_number = factory::failed_run(&db.store, "alice", "boom").await;

    let refused = retry(&server, &ops, by_name, "3").await;
    assert_eq!(refused.status.code(), Some(3), "the API refused it");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(
            "from_step: must be a step name (first, second) or a number from 1 to 2 (got 3)"
        ),
        "{said}"
    );

    let named = retry(&server, &ops, by_name, "first").await;
    assert!(
        named.status.success(),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&named.stdout).trim(),
        format!("run {by_name} will resume at step 1 (first)")
    );
    let numbered = retry(&server, &ops, by_number, "1").await;
    assert!(
        numbered.status.success(),
        "{}",
        String::from_utf8_lossy(&numbered.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&numbered.stdout).trim(),
        format!("run {by_number} will resume at step 1 (first)")
    );
    for run in [by_name, by_number] {
        assert_eq!(db.store.run(run).await.unwrap().state, RunState::Pending);
    }
    drop(server);
    db.drop_now().await;
}
