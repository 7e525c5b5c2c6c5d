//! Webhooks: expiry warnings and expiries POSTed in order, at least once,
//! signed the Standard Webhooks way and checked here by a verifier written
//! from the spec, not by hubwright's signer.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use hubwright_state::secrets::SecretString;
use hubwright_state::{Clock, ManualClock, SystemClock};
use hubwright_worker::webhooks::DeliveryError;
use hubwright_worker::{Notifier, WebhookConfig};
use sha2::Sha256;

use super::{Ttl, WITHIN};

/// The receiver's secret: `whsec_` and the base64 of 32 random bytes.
const SECRET: &str = "whsec_C2FQrDXFSnPqJTFePwr1mjyv3vdXZ9YaBjIi9NTd0Ms=";
/// The reference libraries' replay tolerance.
const TOLERANCE_SECONDS: i64 = 5 * 60;

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Delivery {
    fn header(&self, name: &str) -> &str {
        self.headers[name].to_str().unwrap()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook endpoint that records what it is sent and answers `status`.
async fn receiver(status: Arc<AtomicU16>) -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = Arc::clone(&seen);
            move |headers: HeaderMap, body: axum::body::Bytes| {
                seen.lock().unwrap().push(Delivery {
                    headers,
                    body: body.to_vec(),
                });
                let status = status.load(Ordering::SeqCst);
                async move { axum::http::StatusCode::from_u16(status).unwrap() }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Standard Webhooks verification as a receiver would write it from the
/// spec: the timestamp within the tolerance of `now`, then any `v1`
/// signature equal to the HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
/// base64-decoded secret.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {name} header"))
    };
    let (id, timestamp, signatures) = (
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    );
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| format!("timestamp {timestamp:?} is not unix seconds"))?;
    if (now - sent).abs() > TOLERANCE_SECONDS {
        return Err(format!(
            "timestamp {sent} is outside the tolerance of {now}"
        ));
    }
    let key = STANDARD
        .decode(
            secret
                .strip_prefix("whsec_")
                .ok_or("secret without whsec_")?,
        )
        .map_err(|err| format!("secret: {err}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if matches {
        Ok(())
    } else {
        Err(format!("no signature in {signatures:?} matches"))
    }
}

/// A notifier for `url` signing with [`SECRET`], sending without settle time.
fn notifier(ttl: &Ttl, url: &str, clock: &ManualClock) -> (Notifier, WebhookConfig) {
    let mut config = WebhookConfig::new(url, Some(SecretString::new(SECRET))).unwrap();
    config.settle = std::time::Duration::ZERO;
    let notifier = Notifier::new(ttl.store().clone(), config.clone(), Arc::new(clock.clone()));
    (notifier, config)
}

#[tokio::test]
async fn warnings_and_expiries_reach_the_webhook_in_order_signed_and_retried_until_accepted() {
    let ttl = Ttl::new().await;
    let status = Arc::new(AtomicU16::new(503));
    let (url, seen) = receiver(Arc::clone(&status)).await;
    let clock = ManualClock::new(SystemClock.now());
    let start = clock.now();
    let (notifier, config) = notifier(&ttl, &url, &clock);
    // The cursor starts at the newest event: the past is not sent.
    let before = ttl
        .request("lab", start + chrono::Duration::minutes(30), start)
        .await;
    ttl.scheduler(Arc::new(clock.clone()), WITHIN)
        .pass(true)
        .await
        .unwrap();
    assert_eq!(ttl.events(before, "expiry_warning").await.len(), 1);
    assert_eq!(notifier.deliver_pending().await.unwrap(), 0);
    assert!(seen.lock().unwrap().is_empty(), "history is not sent");

    let env = ttl
        .request("lab", start + chrono::Duration::hours(2), start)
        .await;
    let scheduler = ttl.scheduler(Arc::new(clock.clone()), WITHIN);
    for minutes in [61, 111, 121] {
        clock.set(start + chrono::Duration::minutes(minutes));
        scheduler.pass(true).await.unwrap();
    }

    // The endpoint is down: nothing moves past the first event.
    let failed = notifier.deliver_pending().await.unwrap_err();
    assert!(
        matches!(&failed, DeliveryError::Endpoint { why, .. } if why.contains("503")),
        "{failed}"
    );
    let refused = seen.lock().unwrap().clone();
    assert_eq!(refused.len(), 1, "stopped at the first refusal");
    let refused_at = clock.now().timestamp();

    // The retry, a minute later, is accepted.
    clock.set(clock.now() + chrono::Duration::minutes(1));
    let now = clock.now().timestamp();
    status.store(204, Ordering::SeqCst);
    let delivered = notifier.deliver_pending().await.unwrap();
    let accepted: Vec<Delivery> = seen.lock().unwrap()[1..].to_vec();
    assert_eq!(delivered, accepted.len());
    for delivery in &accepted {
        verify(SECRET, &delivery.headers, &delivery.body, now)
            .unwrap_or_else(|err| panic!("{err}: {delivery:?}"));
        assert_eq!(delivery.header("webhook-timestamp"), now.to_string());
        assert_eq!(
            delivery.header("webhook-id"),
            delivery.json()["id"].to_string(),
            "the id is the event's"
        );
    }
    // The retried delivery is the same message: same id and body, a new
    // timestamp and so a new signature.
    let (first, retried) = (&refused[0], &accepted[0]);
    assert_eq!(first.header("webhook-id"), retried.header("webhook-id"));
    assert_eq!(first.body, retried.body);
    assert_eq!(first.header("webhook-timestamp"), refused_at.to_string());
    verify(SECRET, &first.headers, &first.body, refused_at).unwrap();
    assert_ne!(
        first.header("webhook-signature"),
        retried.header("webhook-signature")
    );

    let bodies: Vec<serde_json::Value> = accepted.iter().map(Delivery::json).collect();
    let about_env: Vec<(&str, &str)> = bodies
        .iter()
        .filter(|b| b["environment"]["id"] == env.to_string())
        .map(|b| {
            (
                b["kind"].as_str().unwrap(),
                b["environment"]["owner"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        about_env,
        [
            ("expiry_warning", "alice"),
            ("expiry_warning", "alice"),
            ("environment_expired", "alice")
        ],
        "{bodies:#?}"
    );
    let ids: Vec<i64> = bodies.iter().map(|b| b["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");

    // Delivered once: neither this notifier nor a restarted one sends again.
    let sent = seen.lock().unwrap().len();
    assert_eq!(notifier.deliver_pending().await.unwrap(), 0);
    let restarted = Notifier::new(ttl.store().clone(), config, Arc::new(clock.clone()));
    assert_eq!(restarted.deliver_pending().await.unwrap(), 0);
    assert_eq!(seen.lock().unwrap().len(), sent);
}

#[tokio::test]
async fn a_captured_delivery_cannot_be_replayed_with_a_new_timestamp_or_after_the_tolerance() {
    let ttl = Ttl::new().await;
    let (url, seen) = receiver(Arc::new(AtomicU16::new(204))).await;
    let clock = ManualClock::new(SystemClock.now());
    let start = clock.now();
    let (notifier, _) = notifier(&ttl, &url, &clock);
    assert_eq!(notifier.deliver_pending().await.unwrap(), 0, "cursor made");
    ttl.request("lab", start + chrono::Duration::minutes(30), start)
        .await;
    ttl.scheduler(Arc::new(clock.clone()), WITHIN)
        .pass(true)
        .await
        .unwrap();
    assert_eq!(notifier.deliver_pending().await.unwrap(), 1);
    let captured = seen.lock().unwrap()[0].clone();
    let sent = start.timestamp();
    verify(SECRET, &captured.headers, &captured.body, sent).unwrap();

    // Replayed as captured once the tolerance has passed: refused.
    let later = sent + TOLERANCE_SECONDS + 1;
    let err = verify(SECRET, &captured.headers, &captured.body, later).unwrap_err();
    assert!(err.contains("outside the tolerance"), "{err}");
    // Replayed with a fresh timestamp: the signature no longer matches.
    let mut fresh = captured.headers.clone();
    fresh.insert("webhook-timestamp", later.to_string().parse().unwrap());
    let err = verify(SECRET, &fresh, &captured.body, later).unwrap_err();
    assert!(err.contains("no signature"), "{err}");
    // A changed body, or another secret, fails too.
    let mut body = captured.body.clone();
    body.extend_from_slice(b" ");
    assert!(verify(SECRET, &captured.headers, &body, sent).is_err());
    let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert!(verify(other, &captured.headers, &captured.body, sent).is_err());
}
