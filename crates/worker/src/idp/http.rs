//! What the identity-provider drivers share about HTTP: reading a provider's
//! refusal and classing it.
//!
//! Unreachable, 429 and 5xx are transient; any other refusal is permanent.
//! A refusal's message quotes only the provider's own error fields, never a
//! body whole: answers of these APIs carry client secrets and tokens. A
//! transient refusal with `Retry-After` carries it to the runner.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;

use crate::step::StepError;

/// An error body as providers write it: OAuth's `error` and
/// `error_description` (RFC 6749 §5.2, RFC 7591 §3.2.2) and the Keycloak admin
/// API's `errorMessage` (its `ErrorRepresentation`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
}

impl ErrorBody {
    /// The body of `response`; empty when it is not such a JSON object.
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        response.json().await.unwrap_or_default()
    }

    /// What the provider said, verbatim: `error: error_description`, then
    /// `errorMessage`; the status's reason when it said nothing.
    pub(crate) fn said(&self, status: StatusCode) -> String {
        let oauth = match (&self.error, &self.error_description) {
            (Some(error), Some(description)) => Some(format!("{error}: {description}")),
            (Some(error), None) => Some(error.clone()),
            (None, Some(description)) => Some(description.clone()),
            (None, None) => None,
        };
        match (oauth, &self.error_message) {
            (Some(oauth), Some(message)) => format!("{oauth} ({message})"),
            (Some(oauth), None) => oauth,
            (None, Some(message)) => message.clone(),
            (None, None) => status.canonical_reason().unwrap_or("no reason").to_owned(),
        }
    }
}

/// Whether a refusal with `status` may go away by itself: 429 and 5xx.
pub(crate) fn transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The step error for a refusal with `status`: retryable when
/// [`transient`], then no sooner than the answer's `Retry-After` says;
/// permanent otherwise.
pub(crate) fn refusal(status: StatusCode, headers: &HeaderMap, message: String) -> StepError {
    if !transient(status) {
        return StepError::permanent(message);
    }
    let error = StepError::retryable(message);
    match retry_after(headers, Utc::now()) {
        Some(after) => error.with_retry_after(after),
        None => error,
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date, which is
/// read against `now` (the server's clock and ours are all there is to go on).
/// A date already past, or a value neither form, asks for nothing.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    (at - now).to_std().ok().filter(|after| !after.is_zero())
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(value).expect("a header value"),
        );
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("a date")
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:27:00 GMT"), now),
            None
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn only_a_transient_refusal_carries_retry_after() {
        let throttled = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            &headers("7"),
            "slow down".into(),
        );
        assert_eq!(throttled.retry_after, Some(Duration::from_secs(7)));
        let refused = refusal(StatusCode::BAD_REQUEST, &headers("7"), "no".into());
        assert_eq!(refused.retry_after, None);
    }
}
