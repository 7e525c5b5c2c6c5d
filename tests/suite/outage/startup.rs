//! `serve` started while the database is away waits for it instead of
//! exiting, says so in its log and on `/readyz`, and gives up only when told.

use std::time::Duration;

use hubwright_state::model::RunState;
use hubwright_testkit::harness::{catalog, start};
use hubwright_testkit::process::Process;
use hubwright_testkit::tcp_proxy::TcpProxy;
use hubwright_testkit::{TestDatabase, scratch_dir, wait};
use reqwest::StatusCode;
use serde_json::Value;

use super::{WITHIN, recording_workflow, serve};

/// The address the API's port was opened on while waiting, from its log.
async fn waiting_api_address(process: &Process) -> String {
    wait::until_some("the API's port to open while waiting", WITHIN, || async {
        process
            .log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["message"] == "api answering probes until it starts")
            .and_then(|line| line["address"].as_str().map(str::to_owned))
    })
    .await
}

#[tokio::test]
async fn a_server_started_while_the_database_is_away_waits_for_it_and_then_runs_work() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("outage-start");
    let effects = dir.join("effects.log");
    let workflows = recording_workflow(&dir, &effects, "10ms");
    // A password the log must never show (trust authentication ignores it).
    let with_password = db.url.replacen("://root@", "://root:s3cret-pw@", 1);
    let (proxy, url) = TcpProxy::for_database(&with_password).await;
    let address = proxy.addr().to_string();
    proxy.cut();

    // No role flag: the API, the worker and the scheduler all wait.
    let mut process = serve(
        &url,
        &workflows,
        &["--listen", "127.0.0.1:0", "--lease", "2s"],
        dir.join("serve.log"),
    );
    let waiting = format!("waiting for the database at {address}");
    let attempt_logged = format!(r#""message":"{waiting}: "#);
    wait::until("three attempts to reach the database", WITHIN, || {
        let attempts = process.log_text().matches(&attempt_logged).count();
        async move { attempts >= 3 }
    })
    .await;
    assert!(proxy.refused() >= 3, "the proxy saw the attempts");
    assert!(
        !process.has_exited(),
        "serve exited instead of waiting:\n{}",
        process.log_text()
    );

    let api = format!("http://{}", waiting_api_address(&process).await);
    let client = hubwright_http::client();
    let ready = client.get(format!("{api}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["reason"], waiting.as_str());
    let alive = client.get(format!("{api}/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK, "alive while waiting");

    proxy.restore();
    let catalog = catalog(&db.store, &workflows).await;
    let run = start(&db.store, &catalog, "outage", "provision").await;
    wait::run_state(&db.store, run, RunState::Succeeded, WITHIN).await;
    wait::until("/readyz to answer 200", WITHIN, || {
        let ready = client.get(format!("{api}/readyz")).send();
        async move {
            ready
                .await
                .is_ok_and(|reply| reply.status() == StatusCode::OK)
        }
    })
    .await;

    let log = process.log_text();
    assert!(
        log.contains(&format!("the database at {address} answers; starting")),
        "{log}"
    );
    assert!(!log.contains("s3cret-pw"), "the password reached the log");
    drop(process);
    db.drop_now().await;
}

#[tokio::test]
async fn a_server_gives_up_after_its_database_wait_with_status_1_naming_the_database() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("outage-give-up");
    let workflows = recording_workflow(&dir, &dir.join("effects.log"), "10ms");
    let (proxy, url) = TcpProxy::for_database(&db.url).await;
    proxy.cut();

    let mut process = serve(
        &url,
        &workflows,
        &["--worker", "--database-wait", "1s"],
        dir.join("serve.log"),
    );
    assert_eq!(process.wait_exit(WITHIN).await, Some(1));
    let log = process.log_text();
    assert!(
        log.contains(&format!(
            "gave up waiting for the database at {}",
            proxy.addr()
        )),
        "{log}"
    );
    assert!(log.contains("(--database-wait 1s)"), "{log}");
    db.drop_now().await;
}

#[tokio::test]
async fn sigterm_ends_the_wait_for_the_database_with_status_0() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("outage-sigterm");
    let workflows = recording_workflow(&dir, &dir.join("effects.log"), "10ms");
    let (proxy, url) = TcpProxy::for_database(&db.url).await;
    proxy.cut();

    let mut process = serve(&url, &workflows, &["--worker"], dir.join("serve.log"));
    process
        .wait_for_log("waiting for the database", Duration::from_secs(30))
        .await;
    process.signal("TERM");
    assert_eq!(process.wait_exit(WITHIN).await, Some(0));
    assert!(
        process
            .log_text()
            .contains("stopped while waiting for the database")
    );
    db.drop_now().await;
}
