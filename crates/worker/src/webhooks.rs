//! Webhooks: each expiry warning and each expiry POSTed as JSON to the
//! configured endpoint, in order, at least once, so a portal or chat bot can
//! tell the owner before their environment goes (`serve --webhook-url`).
//!
//! The events come from the timeline behind a cursor in Postgres
//! ([`hubwright_state::store::webhooks`]); the scheduler replica holding the
//! cursor delivers and moves it only past what the endpoint answered 2xx to.
//! A refusal or an unreachable endpoint is retried with backoff, up to a
//! minute apart, with nothing skipped. Receivers deduplicate by the event's
//! `id` (also in `X-Hubwright-Delivery`). With a secret, each body is signed:
//! `X-Hubwright-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use hubwright_state::secrets::SecretString;
use hubwright_state::store::webhooks::WebhookEvent;
use hubwright_state::{Clock, Store};
use serde_json::json;
use sha2::Sha256;

/// The cursor's name: one endpoint per deployment.
const CURSOR: &str = "default";
/// Events per locked batch.
const BATCH: i64 = 50;
/// The longest wait between attempts at a failing endpoint.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The endpoint (`http` or `https`).
    pub url: reqwest::Url,
    /// Signs each body when set.
    pub secret: Option<SecretString>,
    /// How often to look for new events.
    pub interval: Duration,
    /// Events younger than this wait (see the state module's docs).
    pub settle: Duration,
}

impl WebhookConfig {
    /// A config for `url`, checked: an absolute `http(s)` URL.
    pub fn new(url: &str, secret: Option<SecretString>) -> Result<Self, crate::ConfigError> {
        let invalid = |rule: &str| crate::ConfigError {
            setting: "--webhook-url",
            rule: rule.to_owned(),
        };
        let url = reqwest::Url::parse(url).map_err(|err| invalid(&format!("not a URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must be an http or https URL"));
        }
        Ok(Self {
            url,
            secret,
            interval: Duration::from_secs(1),
            settle: Duration::from_secs(5),
        })
    }
}

/// Why a delivery round stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The endpoint refused or could not be reached; nothing after the event
    /// was sent.
    #[error("webhook for event {event} not delivered: {why}")]
    Endpoint {
        /// The event that was not delivered.
        event: i64,
        /// What the endpoint said, or why it could not be reached.
        why: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] hubwright_state::Error),
}

/// Delivers lifecycle events to one endpoint.
#[derive(Debug)]
pub struct Notifier {
    store: Store,
    config: WebhookConfig,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// The cursor row exists: created once, not on every round.
    cursor_created: AtomicBool,
}

impl Notifier {
    /// A notifier for `config`.
    pub fn new(store: Store, config: WebhookConfig, clock: Arc<dyn Clock>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            store,
            config,
            clock,
            http,
            cursor_created: AtomicBool::new(false),
        }
    }

    /// One round: delivers what is pending, in order, until the endpoint
    /// fails; how many were delivered. Another replica holding the cursor
    /// makes it 0.
    pub async fn deliver_pending(&self) -> Result<usize, DeliveryError> {
        let now = self.clock.now();
        if !self.cursor_created.load(Ordering::Relaxed) {
            self.store.create_webhook_cursor(CURSOR, now).await?;
            self.cursor_created.store(true, Ordering::Relaxed);
        }
        let Some(mut cursor) = self.store.lock_webhook_cursor(CURSOR).await? else {
            return Ok(0);
        };
        let settle = chrono::Duration::from_std(self.config.settle).unwrap_or_default();
        let events = cursor.pending(BATCH, now - settle).await?;
        let mut count: usize = 0;
        let mut failure = None;
        for event in &events {
            if let Err(why) = self.post(event).await {
                failure = Some(DeliveryError::Endpoint {
                    event: event.id,
                    why,
                });
                break;
            }
            count += 1;
        }
        // Events are delivered in order: the first `count` went through.
        match count.checked_sub(1).and_then(|i| events.get(i)) {
            Some(last) => cursor.advance(last.id, now).await?,
            None => cursor.release().await?,
        }
        if count > 0 {
            metrics::counter!("hubwright_webhook_deliveries_total", "outcome" => "delivered")
                .increment(count as u64);
        }
        match failure {
            Some(err) => {
                metrics::counter!("hubwright_webhook_deliveries_total", "outcome" => "failed")
                    .increment(1);
                Err(err)
            }
            None => Ok(count),
        }
    }

    async fn post(&self, event: &WebhookEvent) -> Result<(), String> {
        let body = serde_json::to_vec(&payload(event)).map_err(|err| err.to_string())?;
        let mut request = self
            .http
            .post(self.config.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hubwright-Event", &event.kind)
            .header("X-Hubwright-Delivery", event.id.to_string());
        if let Some(secret) = &self.config.secret {
            request = request.header("X-Hubwright-Signature", signature(secret, &body));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| format!("POST {}: {err}", self.config.url))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "POST {} answered {}",
                self.config.url,
                response.status()
            ))
        }
    }

    /// Delivers until `shutdown` resolves, backing off while the endpoint fails.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tracing::info!(url = %self.config.url, signed = self.config.secret.is_some(), "webhooks started");
        tokio::pin!(shutdown);
        let mut backoff = self.config.interval;
        loop {
            let pause = match self.deliver_pending().await {
                // A full batch: more may be waiting.
                Ok(n) if i64::try_from(n).is_ok_and(|n| n == BATCH) => Duration::ZERO,
                Ok(_) => {
                    backoff = self.config.interval;
                    self.config.interval
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "webhook delivery failed");
                    let pause = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    pause
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("webhooks stopped");
    }
}

/// The JSON a receiver gets.
fn payload(event: &WebhookEvent) -> serde_json::Value {
    json!({
        "id": event.id,
        "kind": event.kind,
        "at": event.at,
        "message": event.message,
        "data": event.data,
        "environment": {
            "id": event.environment_id,
            "name": event.name,
            "owner": event.owner,
            "template": event.template,
            "expires_at": event.expires_at,
            "url": event.url,
        },
    })
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &SecretString, body: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        let secret = SecretString::new("Jefe");
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_http_urls_are_endpoints() {
        assert!(WebhookConfig::new("https://chat.example.org/hooks/1", None).is_ok());
        let err = WebhookConfig::new("ftp://example.org", None).unwrap_err();
        assert_eq!(err.setting, "--webhook-url");
        assert!(WebhookConfig::new("not a url", None).is_err());
    }
}
