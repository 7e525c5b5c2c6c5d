//! What the identity-provider drivers share about HTTP: reading a provider's
//! refusal and classing it.
//!
//! Unreachable, 429 and 5xx are transient; any other refusal is permanent.
//! A refusal's message quotes only the provider's own error fields, never a
//! body whole: answers of these APIs carry client secrets and tokens.

use reqwest::StatusCode;
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
/// [`transient`], permanent otherwise.
pub(crate) fn refusal(status: StatusCode, message: String) -> StepError {
    if transient(status) {
        StepError::retryable(message)
    } else {
        StepError::permanent(message)
    }
}
