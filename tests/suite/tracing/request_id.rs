//! `X-Request-Id` on every answer: the caller's own when it is plain and
//! short, a fresh one otherwise, on successes, refusals and unknown paths
//! alike.

use hubwright_testkit::server::{ApiServer, Reply, StatusCode};
use hubwright_testkit::{TestDatabase, scratch_dir};

fn request_id(reply: &Reply) -> &str {
    reply
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_plain_one_from_the_caller_is_kept() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;

    let mut seen = Vec::new();
    for (path, status) in [
        ("/readyz", StatusCode::OK),
        ("/v1/environments", StatusCode::UNAUTHORIZED),
        ("/no/such/path", StatusCode::NOT_FOUND),
    ] {
        let reply = server.get(path).send().await;
        assert_eq!(reply.status, status, "{path}");
        let id = request_id(&reply).to_owned();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{path}: a fresh id is a UUID, got {id:?}"
        );
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "each answer has its own id");

    let kept = server
        .get("/v1/environments")
        .header("x-request-id", "lb-7f3a.42:edge_1")
        .send()
        .await;
    assert_eq!(request_id(&kept), "lb-7f3a.42:edge_1");

    for unfit in ["two words", "{\"level\":\"ERROR\"}", &"x".repeat(129)] {
        let replaced = server
            .get("/readyz")
            .header("x-request-id", unfit)
            .send()
            .await;
        let id = request_id(&replaced);
        assert_ne!(id, unfit);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{unfit:?} became {id:?}");
    }
}
