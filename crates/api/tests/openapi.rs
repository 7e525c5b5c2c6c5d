//! The OpenAPI document: served open, generated from the code, and the committed
//! copy in docs/openapi.json matches it (`just openapi` regenerates it).

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hubwright_testkit::TestDatabase;
use serde_json::Value;
use tower::ServiceExt;

#[tokio::test]
async fn the_document_is_served_without_a_token_and_lists_every_endpoint() {
    let db = TestDatabase::create().await;
    let response = hubwright_api::router(db.store.clone(), Default::default())
        .oneshot(
            Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/environments",
            "/v1/environments/{id}",
            "/v1/environments/{id}/extend",
            "/v1/runs/{id}",
            "/v1/runs/{id}/cancel",
            "/v1/runs/{id}/events",
            "/v1/runs/{id}/retry",
        ]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Environment"].is_object());
    db.drop_now().await;
}

#[test]
fn the_committed_document_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .expect("docs/openapi.json exists (run `just openapi`)");
    assert!(
        committed.trim_end() == hubwright_api::openapi::document().trim_end(),
        "docs/openapi.json is stale: run `just openapi` and commit it"
    );
}
