//! The open endpoints of a real `hubwright serve --api` process: the probes a
//! process manager relies on, the OpenAPI document and the API reference page.

use hubwright_testkit::server::{ApiServer, StatusCode};
use hubwright_testkit::{TestDatabase, scratch_dir};
use serde_json::Value;

async fn serve(db: &TestDatabase) -> ApiServer {
    ApiServer::start(db, &scratch_dir("no-workflows"), &[]).await
}

#[tokio::test]
async fn readyz_is_ready_once_migrations_are_applied() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let ready = server.get("/readyz").send().await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
    let healthy = server.get("/healthz").send().await;
    assert_eq!(healthy.status, StatusCode::OK);
    assert_eq!(healthy.body["status"], "ok");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn readyz_says_what_to_do_when_migrations_are_pending() {
    let db = TestDatabase::create().await;
    // The server refuses to start on a stale schema; it goes stale afterwards.
    let server = serve(&db).await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(db.store.pool())
        .await
        .unwrap();
    let reply = server.get("/readyz").send().await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.body["reason"],
        "migrations pending: run `hubwright admin migrate`"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_unreachable_and_healthz_does_not() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    // Dropping the database under the running server cuts its connections
    // and refuses new ones.
    db.drop_now().await;
    let reply = server.get("/readyz").send().await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["reason"], "database unreachable");
    assert_eq!(
        server.get("/healthz").send().await.status,
        StatusCode::OK,
        "the process itself is fine"
    );
}

#[tokio::test]
async fn the_document_is_served_without_a_token_and_lists_every_endpoint() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let reply = server.get("/v1/openapi.json").send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/json");
    let doc = &reply.body;
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
            "/v1/approvals",
            "/v1/approvals/{id}",
            "/v1/approvals/{id}/approve",
            "/v1/approvals/{id}/deny",
            "/v1/audit",
            "/v1/audit/export",
            "/v1/environments",
            "/v1/environments/{id}",
            "/v1/environments/{id}/extend",
            "/v1/policy",
            "/v1/policy/me",
            "/v1/pools",
            "/v1/queue",
            "/v1/runs",
            "/v1/runs/{id}",
            "/v1/runs/{id}/cancel",
            "/v1/runs/{id}/events",
            "/v1/runs/{id}/retry",
            "/v1/templates",
            "/v1/templates/{name}",
            "/v1/tokens",
            "/v1/tokens/{id}",
        ]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Environment"].is_object());
    assert_eq!(
        serde_json::from_str::<Value>(&hubwright_api::openapi::document()).unwrap(),
        *doc,
        "the process serves the document the code generates"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn the_api_reference_page_is_served_without_a_token_and_needs_nothing_from_the_internet() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let reply = server.get("/docs").send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.content_type().starts_with("text/html"),
        "{}",
        reply.content_type()
    );
    let page = reply.text();
    assert!(page.contains("/v1/openapi.json"), "it reads the document");
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "no scripts or styles from elsewhere: clusters may have no internet"
    );
    let not_here = server.get("/docs/").send().await;
    not_here.assert_problem(StatusCode::NOT_FOUND, "not-found");
    drop(server);
    db.drop_now().await;
}
