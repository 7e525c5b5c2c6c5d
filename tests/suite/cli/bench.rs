//! `hubwright bench console` on a small database: the fixture it writes is
//! one the lists read as they read real environments, and a page the console
//! does not have is skipped rather than failing the bench.

use hubwright_testkit::TestDatabase;
use serde_json::Value;

use super::{hubwright, stderr, stdout};

#[tokio::test]
async fn bench_console_times_the_lists_over_its_fixture_and_skips_pages_the_console_lacks() {
    let db = TestDatabase::create().await;
    let out = hubwright(
        &db,
        "http://127.0.0.1:9",
        None,
        &[
            "bench",
            "console",
            "--environments",
            "200",
            "--runs",
            "1000",
            "--requests",
            "3",
            "--path",
            "/environments",
            "--path",
            "/environments?phase=ready&owner=user-7",
            "--path",
            "/no-such-page",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let figures: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    assert_eq!(figures["workload"], "console");
    assert_eq!(figures["environments"], 200);
    assert_eq!(figures["runs"], 1000);
    let all = &figures["latency_ms"]["/environments"];
    assert_eq!(all["requests"], 3);
    assert_eq!(all["rows"], 50, "a full first page: {figures}");
    assert!(all["p95"].as_f64().is_some_and(|ms| ms > 0.0), "{figures}");
    // user-7 owns env-7 and env-107 of 200; both are `ready` (n % 20 = 7).
    let filtered = &figures["latency_ms"]["/environments?phase=ready&owner=user-7"];
    assert_eq!(filtered["rows"], 2, "{figures}");
    assert_eq!(figures["skipped"], serde_json::json!(["/no-such-page"]));
}
