//! `hubwright bench console` and `bench api` on small databases: the
//! console's fixture is one the lists read as they read real environments,
//! and a page the console does not have is skipped rather than failing the
//! bench; the API bench's rounds are all measured and its audit passes.

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

/// `hubwright bench api` with tiny numbers: a real `serve --api` child
/// accepts every creation, re-sent keys get their first environment back,
/// and the audit finds one environment and one run per key.
#[tokio::test]
async fn bench_api_creates_lists_and_reads_through_a_served_api_and_passes_its_audit() {
    let db = TestDatabase::create().await;
    let out = hubwright(
        &db,
        "http://127.0.0.1:9",
        None,
        &["bench", "api", "--clients", "2,3", "--requests", "21"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let figures: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    assert_eq!(figures["workload"], "api");
    assert_eq!(figures["exactly_once"], true, "{figures}");
    assert_eq!(figures["idempotency_keys"], 42, "{figures}");
    assert_eq!(figures["environments"], 42, "{figures}");
    for round in ["clients_2", "clients_3"] {
        let round = &figures[round];
        assert_eq!(round["creations"], 21, "{figures}");
        // Indices 0, 10 and 20 are re-sent.
        assert_eq!(round["resent"], 3, "{figures}");
        assert_eq!(round["create_latency_ms"]["requests"], 21, "{figures}");
        assert_eq!(round["read_latency_ms"]["requests"], 21, "{figures}");
        assert!(
            round["list_latency_ms"]["requests"].as_u64() >= Some(1),
            "{figures}"
        );
        assert!(
            round["creations_per_s"].as_f64().is_some_and(|r| r > 0.0),
            "{figures}"
        );
        assert!(
            round["create_latency_ms"]["p99"]
                .as_f64()
                .is_some_and(|ms| ms > 0.0),
            "{figures}"
        );
    }
    assert!(
        figures["api_peak_rss_mib"]
            .as_f64()
            .is_some_and(|m| m > 0.0),
        "{figures}"
    );
}
