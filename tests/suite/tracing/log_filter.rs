//! `serve --log-filter-file`: the filter changes on SIGHUP without a
//! restart; a file that does not parse leaves the filter in force, an empty
//! one puts `RUST_LOG`'s back, and one that does not parse at start-up
//! stops `serve` naming the flag.

use std::path::Path;
use std::time::Duration;

use hubwright_testkit::process::Process;
use hubwright_testkit::server::ApiServer;
use hubwright_testkit::{TestDatabase, scratch_dir};
use serde_json::Value;

use crate::BIN;

const WITHIN: Duration = Duration::from_secs(30);

/// Whether the log has the debug line of the request with `id`.
fn answered(log: &str, id: &str) -> bool {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .any(|line| line["message"] == "request answered" && line["request_id"] == id)
}

async fn request(server: &ApiServer, id: &str) {
    let reply = server
        .get("/readyz")
        .header("x-request-id", id)
        .send()
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
}

#[tokio::test]
async fn the_log_filter_changes_on_sighup_without_a_restart() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("log-filter");
    let file = dir.join("log-filter");
    std::fs::write(&file, "info\n").unwrap();
    let path = file.display().to_string();
    let server = ApiServer::start_process(
        BIN,
        &db,
        &dir,
        &[
            "--log-filter-file",
            &path,
            "--log-filter-poll-interval",
            "0s",
        ],
    )
    .await;
    let process = server.process();
    request(&server, "before-the-change").await;
    assert!(!answered(&process.log_text(), "before-the-change"));

    std::fs::write(&file, "# requests too\ninfo\nhubwright_api=debug\n").unwrap();
    process.signal("HUP");
    process
        .wait_for_log(r#""filter":"info,hubwright_api=debug""#, WITHIN)
        .await;
    request(&server, "after-the-change").await;
    assert!(
        answered(&process.log_text(), "after-the-change"),
        "{}",
        process.log_text()
    );

    std::fs::write(&file, "hubwright_api=loudly\n").unwrap();
    process.signal("HUP");
    process
        .wait_for_log("the filter in force stays", WITHIN)
        .await;
    request(&server, "still-debug").await;
    assert!(answered(&process.log_text(), "still-debug"));

    // Empty: back to RUST_LOG (`info,hubwright_worker=debug` in the testkit).
    std::fs::write(&file, "").unwrap();
    process.signal("HUP");
    process
        .wait_for_log(r#""filter":"info,hubwright_worker=debug""#, WITHIN)
        .await;
    request(&server, "back-to-rust-log").await;
    assert!(!answered(&process.log_text(), "back-to-rust-log"));
}

#[tokio::test]
async fn a_log_filter_file_that_does_not_parse_stops_serve_at_start_up() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("log-filter-bad");
    let file = dir.join("log-filter");
    std::fs::write(&file, "hubwright_api=loudly\n").unwrap();
    let path = file.display().to_string();
    let workflows = dir.display().to_string();
    let mut process = Process::start(
        Path::new(BIN),
        &db.url,
        &[
            "serve",
            "--api",
            "--listen",
            "127.0.0.1:0",
            "--workflows",
            &workflows,
            "--log-filter-file",
            &path,
        ],
        &dir.join("serve.log"),
    );
    assert_eq!(process.wait_exit(WITHIN).await, Some(1));
    let log = process.log_text();
    assert!(
        log.contains("--log-filter-file") && log.contains(&path),
        "{log}"
    );
}
