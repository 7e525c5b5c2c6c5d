//! `env list --watch`: the list once, then a line per change, until stopped.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Served, json};
use crate::BIN;

#[tokio::test]
async fn a_watched_list_prints_each_environment_as_it_appears_and_changes() {
    let served = Served::start().await;
    let mut watch = tokio::process::Command::new(BIN)
        .args([
            "env",
            "list",
            "--watch",
            "--interval",
            "100ms",
            "-o",
            "jsonl",
        ])
        .env("HUBWRIGHT_URL", &served.serve.url)
        .env("HUBWRIGHT_TOKEN", &served.alice)
        .env("HUBWRIGHT_CONFIG", "/nonexistent/hubwright/config.yaml")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the watch");
    let mut lines = BufReader::new(watch.stdout.take().expect("its stdout")).lines();

    served
        .ok(
            &served.alice,
            &["env", "create", "lab-1", "--template", "lab"],
        )
        .await;
    // Each line is one environment as it was when the watch saw it change;
    // the last one it prints for lab-1 says ready.
    let mut phases = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while phases.last().map(String::as_str) != Some("ready") {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("lab-1 never showed ready; saw {phases:?}"))
            .expect("read the watch")
            .expect("the watch is still running");
        let env = json(&line);
        assert_eq!(env["name"], "lab-1", "{line}");
        phases.push(env["phase"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        watch.try_wait().expect("ask the watch").is_none(),
        "the watch keeps running until stopped"
    );
    watch.kill().await.expect("stop the watch");
    served.db.drop_now().await;
}
