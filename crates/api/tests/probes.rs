//! The probes a process manager relies on, against a real database.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hubwright_state::Store;
use hubwright_testkit::TestDatabase;
use tower::ServiceExt;

async fn get(store: &Store, path: &str) -> (StatusCode, serde_json::Value) {
    let response = hubwright_api::router(store.clone(), Default::default())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn readyz_is_ready_once_migrations_are_applied() {
    let db = TestDatabase::create().await;
    let (status, body) = get(&db.store, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    let (status, _) = get(&db.store, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    db.drop_now().await;
}

#[tokio::test]
async fn readyz_says_what_to_do_when_migrations_are_pending() {
    let db = TestDatabase::create().await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(db.store.pool())
        .await
        .unwrap();
    let (status, body) = get(&db.store, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["reason"],
        "migrations pending: run `hubwright migrate`"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_unreachable() {
    // Port 1 on loopback refuses connections at once.
    let store = Store::from_pool(
        sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(2))
            .connect_lazy("postgres://root@127.0.0.1:1/none")
            .unwrap(),
    );
    let (status, body) = get(&store, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reason"], "database unreachable");
}
