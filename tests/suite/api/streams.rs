//! Live event streams of a real `hubwright serve --api` process: woken by
//! the database's notifications (not polling), capped per token with 429
//! and `Retry-After`, and ended when their token is revoked.

use std::time::{Duration, Instant};

use hubwright_state::model::Role;
use hubwright_state::{Clock, SystemClock};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, factory, scratch_dir, wait};
use uuid::Uuid;

use crate::BIN;

const WITHIN: Duration = Duration::from_secs(20);

async fn serve(db: &TestDatabase, extra: &[&str]) -> ApiServer {
    ApiServer::start_process(BIN, db, &scratch_dir("no-workflows"), extra).await
}

/// Opens the live stream of `run` with `token` and returns once its head has
/// arrived; the body is left unread.
async fn open_stream(server: &ApiServer, run: Uuid, token: &str) -> reqwest::Response {
    hubwright_http::client()
        .get(format!("{}/v1/runs/{run}/events", server.url))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("open the stream")
}

/// Reads `response` until its text contains `needle`; the text so far.
async fn read_until(response: &mut reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    while !text.contains(needle) {
        match response.chunk().await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => panic!("the stream ended before `{needle}`: {text}"),
        }
    }
    text
}

#[tokio::test]
async fn a_token_past_its_stream_cap_gets_429_with_retry_after() {
    let db = TestDatabase::create().await;
    let server = serve(&db, &["--max-streams-per-token", "2"]).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let bob = token(&db.store, "bob", Role::Operator).await;
    let run = factory::pending_run(&db.store, "alice").await;

    let first = open_stream(&server, run, &alice).await;
    let second = open_stream(&server, run, &alice).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let third = server
        .get(&format!("/v1/runs/{run}/events"))
        .token(&alice)
        .header("accept", "text/event-stream")
        .send()
        .await;
    third.assert_problem(StatusCode::TOO_MANY_REQUESTS, "too-many-streams");
    assert_eq!(third.headers["retry-after"], "10");
    assert!(
        third.detail().contains("2 open event streams"),
        "{}",
        third.detail()
    );
    // Pages of JSON are not streams: not capped.
    let page = server
        .get(&format!("/v1/runs/{run}/events"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(page.status, StatusCode::OK);
    // The cap is per token: another caller still streams.
    assert_eq!(
        open_stream(&server, run, &bob).await.status(),
        StatusCode::OK
    );

    // A closed stream gives its place back.
    drop(first);
    wait::until(
        "alice's closed stream to free its place",
        WITHIN,
        || async { open_stream(&server, run, &alice).await.status() == StatusCode::OK },
    )
    .await;
    drop(second);
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn revoking_a_token_ends_its_open_stream_within_the_recheck_interval() {
    let db = TestDatabase::create().await;
    let server = serve(&db, &["--stream-recheck-interval", "500ms"]).await;
    let issued = db
        .store
        .create_token("alice", Role::Developer, SystemClock.now())
        .await
        .unwrap();
    let run = factory::pending_run(&db.store, "alice").await;
    let mut stream = open_stream(&server, run, &issued.secret).await;
    assert_eq!(stream.status(), StatusCode::OK);
    read_until(&mut stream, "event: run_created").await;

    db.store
        .revoke_token(issued.id, SystemClock.now())
        .await
        .unwrap();
    let revoked_at = Instant::now();
    let rest = tokio::time::timeout(WITHIN, stream.bytes())
        .await
        .expect("the stream of a revoked token ends");
    let took = revoked_at.elapsed();
    assert!(rest.is_ok(), "the stream ends cleanly: {rest:?}");
    assert!(
        took < Duration::from_secs(5),
        "ended {took:?} after revocation"
    );
    // The run itself is still live: the token ended the stream, not the run.
    let run = db.store.run(run).await.unwrap();
    assert!(!run.state.is_terminal(), "{:?}", run.state);
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_stream_gets_new_events_by_notification_without_polling() {
    let db = TestDatabase::create().await;
    // A fallback read an hour away: only a notification can wake the stream.
    let server = serve(&db, &["--stream-fallback-interval", "1h"]).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::pending_run(&db.store, "alice").await;
    let mut stream = open_stream(&server, run, &ops).await;
    read_until(&mut stream, "event: run_created").await;

    db.store
        .cancel_run(run, "ops", SystemClock.now())
        .await
        .unwrap();
    let cancelled = tokio::time::timeout(WITHIN, read_until(&mut stream, "event: run_cancelled"))
        .await
        .expect("the cancellation arrives live");
    assert!(
        !cancelled.contains("event: run_created"),
        "each event once: {cancelled}"
    );
    // The run has ended: so does its stream.
    let rest = tokio::time::timeout(WITHIN, stream.bytes())
        .await
        .expect("the stream ends with its run");
    assert!(rest.is_ok());
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn an_open_stream_does_not_hold_up_a_graceful_stop() {
    let db = TestDatabase::create().await;
    let mut server = serve(&db, &[]).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::pending_run(&db.store, "alice").await;
    let mut stream = open_stream(&server, run, &ops).await;
    read_until(&mut stream, "event: run_created").await;

    server.process().signal("TERM");
    let code = server.process_mut().wait_exit(WITHIN).await;
    assert_eq!(code, Some(0));
    drop(server);
    db.drop_now().await;
}
