//! Request rate limits: a token past its burst gets 429 with Retry-After and
//! others are not affected; a flood of wrong tokens from one address gets 429
//! after a few 401s; both are counted in the metrics. In-process with small
//! limits, and once against a real `hubwright serve` with the flags.

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir};

use crate::BIN;

/// A limit so slow that nothing refills during a test: a burst, then 429s.
const LIMITS: &[&str] = &[
    "--rate-limit",
    "0.01",
    "--rate-limit-burst",
    "3",
    "--auth-failure-rate-limit",
    "0.01",
    "--auth-failure-burst",
    "5",
];

#[track_caller]
fn assert_limited(reply: &Reply) {
    reply.assert_problem(StatusCode::TOO_MANY_REQUESTS, "too-many-requests");
    let seconds: u64 = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {:?}", reply.headers));
    assert!(seconds >= 1, "{seconds}");
}

/// The value of the metric line that starts with `series`, or 0.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_token_past_its_burst_gets_429_with_retry_after_and_another_token_does_not() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), LIMITS).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let bob = token(&db.store, "bob", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    for _ in 0..3 {
        let reply = server.get("/v1/environments").token(&alice).send().await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    }
    assert_limited(&server.get("/v1/environments").token(&alice).send().await);
    assert_limited(&server.get("/v1/runs").token(&alice).send().await);
    let bobs = server.get("/v1/environments").token(&bob).send().await;
    assert_eq!(bobs.status, StatusCode::OK, "bob has his own budget");
    // Open pages spend no one's budget.
    assert_eq!(server.get("/healthz").send().await.status, StatusCode::OK);

    let metrics = server.get("/metrics").token(&ops).send().await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metric(
            metrics.text(),
            "hubwright_http_rate_limited_total{limit=\"caller\"}"
        ),
        2.0,
        "{}",
        metrics.text()
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_flood_of_wrong_tokens_gets_429_after_a_few_401s_and_valid_tokens_still_work() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), LIMITS).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let call = server
                .get("/v1/environments")
                .token(&format!("hw_wrong{i:04}"));
            tokio::spawn(call.send())
        })
        .collect();
    let mut statuses = Vec::new();
    for reply in flood {
        statuses.push(reply.await.unwrap().status);
    }
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((unauthorized, limited), (5, 195), "{statuses:?}");
    assert_limited(&server.get("/v1/runs").send().await);

    let metrics = server.get("/metrics").token(&ops).send().await;
    assert_eq!(
        metrics.status,
        StatusCode::OK,
        "a valid token is not refused"
    );
    assert_eq!(
        metric(
            metrics.text(),
            "hubwright_http_rate_limited_total{limit=\"auth_failures\"}"
        ),
        196.0,
        "{}",
        metrics.text()
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_serve_process_with_the_rate_limit_flags_answers_429_past_the_burst() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start_process(BIN, &db, &scratch_dir("no-workflows"), LIMITS).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let bob = token(&db.store, "bob", Role::Developer).await;
    for _ in 0..3 {
        let reply = server.get("/v1/environments").token(&alice).send().await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    }
    assert_limited(&server.get("/v1/environments").token(&alice).send().await);
    let bobs = server.get("/v1/environments").token(&bob).send().await;
    assert_eq!(bobs.status, StatusCode::OK);
    let wrong: Vec<StatusCode> = {
        let mut out = Vec::new();
        for i in 0..8 {
            let reply = server
                .get("/v1/environments")
                .token(&format!("hw_wrong{i}"))
                .send()
                .await;
            out.push(reply.status);
        }
        out
    };
    assert_eq!(
        wrong,
        [
            [StatusCode::UNAUTHORIZED; 5].as_slice(),
            &[StatusCode::TOO_MANY_REQUESTS; 3]
        ]
        .concat()
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn serve_refuses_a_negative_rate() {
    let err = hubwright_cli::serve::parse_args(["--rate-limit=-1"]).unwrap_err();
    assert!(err.to_string().contains("--rate-limit"), "{err}");
}
