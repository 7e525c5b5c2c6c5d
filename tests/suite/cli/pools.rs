//! `hubwright pool list|show` as an operator runs them, over a pool the
//! in-process scheduler has filled.

use std::time::Duration;

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};

use super::{hubwright, json, stderr, stdout};

#[tokio::test]
async fn pool_list_and_show_report_the_filled_pool() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("cli-pools");
    write_workflow(&dir, "warm", crate::pools::WARM);
    let server = ApiServer::start(
        &db,
        &dir,
        &[
            "--worker",
            "--scheduler",
            "--expiry-sweep-interval",
            "200ms",
        ],
    )
    .await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    wait::until("the pool ready", Duration::from_secs(30), || async {
        let out = hubwright(
            &db,
            &server.url,
            Some(&ops),
            &["pool", "list", "-o", "json"],
        )
        .await;
        json(&stdout(&out))[0]["ready"] == 2
    })
    .await;

    let shown = hubwright(&db, &server.url, Some(&ops), &["pool", "show", "warm"]).await;
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains("TEMPLATE"), "{text}");
    let row = text.lines().nth(1).unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..4], ["warm", "default", "2", "2"], "{text}");

    let missing = hubwright(&db, &server.url, Some(&ops), &["pool", "show", "cold"]).await;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("`cold` keeps no warm pool"),
        "{}",
        stderr(&missing)
    );

    let alice = token(&db.store, "alice", Role::Developer).await;
    let refused = hubwright(&db, &server.url, Some(&alice), &["pool", "list"]).await;
    assert!(!refused.status.success(), "{}", stdout(&refused));
}
