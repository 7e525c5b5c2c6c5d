//! Webhooks: each expiry warning, each expiry and each pending approval
//! (`approval_pending`, for the approvers) POSTed as JSON to the configured
//! endpoint, in order, at least once, so a portal or chat bot can tell the
//! owner before their environment goes, or the approvers that a request waits
//! for them (`serve --webhook-url`).
//!
//! The events come from the timeline behind a cursor in Postgres
//! ([`hubwright_state::store::webhooks`]); the scheduler replica holding the
//! cursor delivers and moves it only past what the endpoint answered 2xx to.
//! A refusal or an unreachable endpoint is retried with exponential backoff
//! and jitter (replicas and restarts do not retry in step), with nothing
//! skipped.
//!
//! Deliveries follow Standard Webhooks ([`signing`]): `webhook-id` is the
//! event's `id`, the same on every attempt, so receivers deduplicate by it;
//! `webhook-timestamp` is the attempt's time; with a secret,
//! `webhook-signature` signs id, timestamp and body together.

mod signing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use hubwright_state::secrets::SecretString;
use hubwright_state::store::webhooks::WebhookEvent;
use hubwright_state::{Clock, Store};
use hubwright_telemetry::TraceParent;
use serde_json::json;
use tracing::Instrument;

pub use signing::{ID_HEADER, SECRET_PREFIX, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSecret};

/// The cursor's name: one endpoint per deployment.
const CURSOR: &str = "default";
/// Events per locked batch.
const BATCH: i64 = 50;
/// The longest wait between attempts at a failing endpoint, before jitter
/// (which adds up to as much again).
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The endpoint (`http` or `https`).
    pub url: reqwest::Url,
    /// Signs each delivery when set.
    pub secret: Option<WebhookSecret>,
    /// How often to look for new events.
    pub interval: Duration,
    /// Events younger than this wait (see the state module's docs).
    pub settle: Duration,
}

impl WebhookConfig {
    /// A config for `url`, checked: an absolute `http(s)` URL, and a secret
    /// of the form `whsec_<base64>` ([`WebhookSecret::parse`]).
    pub fn new(url: &str, secret: Option<SecretString>) -> Result<Self, crate::ConfigError> {
        let invalid = |rule: &str| crate::ConfigError {
            setting: "--webhook-url",
            rule: rule.to_owned(),
        };
        let url = reqwest::Url::parse(url).map_err(|err| invalid(&format!("not a URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must be an http or https URL"));
        }
        let secret = secret
            .map(|secret| WebhookSecret::parse(secret.expose()))
            .transpose()
            .map_err(|rule| crate::ConfigError {
                setting: "--webhook-secret",
                rule,
            })?;
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
        let http = hubwright_http::client_builder()
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
            metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "outcome" => "delivered")
                .increment(count as u64);
        }
        match failure {
            Some(err) => {
                metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "outcome" => "failed")
                    .increment(1);
                Err(err)
            }
            None => Ok(count),
        }
    }

    async fn post(&self, event: &WebhookEvent) -> Result<(), String> {
        let body = serde_json::to_vec(&payload(event)).map_err(|err| err.to_string())?;
        // Stable across attempts: the receiver's deduplication key.
        let id = event.id.to_string();
        // Fresh on every attempt: what the receiver's replay tolerance checks.
        let timestamp = self.clock.now().timestamp();
        let mut request = self
            .http
            .post(self.config.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hubwright-Event", &event.kind)
            .header(ID_HEADER, &id)
            .header(TIMESTAMP_HEADER, timestamp.to_string());
        if let Some(secret) = &self.config.secret {
            request = request.header(SIGNATURE_HEADER, secret.sign(&id, timestamp, &body));
        }
        let endpoint = endpoint(&self.config.url);
        // An approval's delivery joins the trace of the run that waits for it.
        let delivery = tracing::info_span!("webhook", event = event.id, kind = %event.kind);
        if let Some(parent) = event.traceparent.as_deref().and_then(TraceParent::parse) {
            hubwright_telemetry::context::set_parent(&delivery, &parent);
        }
        let response =
            hubwright_telemetry::client::send(request.body(body), "webhook", &event.kind)
                .instrument(delivery)
                .await
                // Without the URL: its path or query may hold a token.
                .map_err(|err| format!("POST {endpoint}: {}", err.without_url()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("POST {endpoint} answered {}", response.status()))
        }
    }

    /// Delivers until `shutdown` resolves, backing off while the endpoint fails.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tracing::info!(
            endpoint = %endpoint(&self.config.url),
            signed = self.config.secret.is_some(),
            "webhooks started"
        );
        tokio::pin!(shutdown);
        let mut backoff = retry_delays(self.config.interval);
        loop {
            let pause = match self.deliver_pending().await {
                // A full batch: more may be waiting.
                Ok(n) if i64::try_from(n).is_ok_and(|n| n == BATCH) => Duration::ZERO,
                Ok(_) => {
                    backoff = retry_delays(self.config.interval);
                    self.config.interval
                }
                Err(err) => {
                    let pause = backoff.next().unwrap_or(MAX_BACKOFF);
                    tracing::warn!(error = %err, retry_in = ?pause, "webhook delivery failed");
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

/// The waits between attempts at a failing endpoint: from `interval`,
/// doubling up to [`MAX_BACKOFF`], each plus a random jitter of up to as much
/// again, so replicas and restarted schedulers do not retry in step.
fn retry_delays(interval: Duration) -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::default()
        .with_min_delay(interval)
        .with_max_delay(MAX_BACKOFF.max(interval))
        .with_jitter()
        .without_max_times()
        .build()
}

/// What of `url` may be logged: scheme, host and port. Chat services put the
/// credential in the path (`/hooks/T000/B000/XXXX`) or the query.
fn endpoint(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_twice_the_cap() {
        let second = Duration::from_secs(1);
        let delays: Vec<Duration> = retry_delays(second).take(12).collect();
        assert_eq!(delays.len(), 12, "never gives up");
        for (n, delay) in delays.iter().enumerate() {
            let base = (second * 2u32.pow(n as u32)).min(MAX_BACKOFF);
            assert!(
                *delay >= base && *delay < base * 2,
                "attempt {n}: {delay:?} not in [{base:?}, {:?})",
                base * 2
            );
        }
        let again: Vec<Duration> = retry_delays(second).take(12).collect();
        assert_ne!(delays, again, "jitter: two schedules differ");
    }

    #[test]
    fn only_the_origin_of_an_endpoint_is_logged() {
        let url = reqwest::Url::parse("https://hooks.example.org:8443/hooks/T0/B0/s3cr3t?token=x")
            .unwrap();
        assert_eq!(endpoint(&url), "https://hooks.example.org:8443");
    }

    #[test]
    fn a_secret_not_in_the_standard_webhooks_form_is_refused_at_start_up() {
        let err = WebhookConfig::new(
            "https://chat.example.org/hooks/1",
            Some(SecretString::new("shared-with-the-receiver")),
        )
        .unwrap_err();
        assert_eq!(err.setting, "--webhook-secret");
        assert!(err.rule.contains("whsec_"), "{}", err.rule);
        assert!(
            !err.rule.contains("shared-with-the-receiver"),
            "{}",
            err.rule
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
