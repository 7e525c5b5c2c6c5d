//! Webhooks announce pending approvals to whoever decides them.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use hubwright_state::SystemClock;
use hubwright_worker::{Notifier, WebhookConfig};

use super::*;

#[tokio::test]
async fn webhooks_announce_a_pending_approval() {
    let lab = Lab::new().await;
    let seen: Arc<Mutex<Vec<(HeaderMap, Value)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = Arc::clone(&seen);
            move |headers: HeaderMap, body: axum::body::Bytes| {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock().unwrap().push((headers, body));
                async { axum::http::StatusCode::NO_CONTENT }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = WebhookConfig::new(&url, None).unwrap();
    config.settle = Duration::ZERO;
    let notifier = Notifier::new(lab.db.store.clone(), config, Arc::new(SystemClock));
    // The cursor starts at the newest event: made before the approval.
    notifier.deliver_pending().await.unwrap();

    let env = lab.create(&lab.alice, "gated", json!({})).await;
    let approval = lab.pending(&lab.bob, &env).await;
    let (headers, body) = wait::until_some("the approval_pending webhook", WITHIN, || async {
        notifier.deliver_pending().await.unwrap();
        seen.lock()
            .unwrap()
            .iter()
            .find(|(_, body)| body["kind"] == "approval_pending")
            .cloned()
    })
    .await;
    assert_eq!(headers["x-hubwright-event"], "approval_pending");
    assert_eq!(body["data"]["approval_id"], approval["id"], "{body:#}");
    assert_eq!(body["data"]["approvers"]["role"], "operator");
    assert_eq!(body["environment"]["id"], env.as_str());
    assert_eq!(body["environment"]["owner"], "alice");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("approval by operator"), "{message}");
}
