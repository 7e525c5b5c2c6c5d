//! What a Kubernetes error means for a step: unreachable, throttled or a
//! server error is worth retrying; refused credentials, missing permissions and
//! invalid objects are not, and the message says which cluster and verb.
//!
//! A retryable answer that says how long to back off (`details.retryAfterSeconds`,
//! which kube-apiserver sets on 429 and 503 together with `Retry-After`) carries
//! that as the error's `retry_after`.

use std::time::Duration;

use serde_json::json;

use hubwright_state::model::ErrorClass;

use crate::cause::Cause;
use crate::step::StepError;

/// What the step was doing when the call failed, for the message.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The cluster's configured name.
    pub cluster: &'a str,
    /// `get`, `create`, `apply`, `delete`.
    pub verb: &'a str,
    /// The resource, e.g. `namespaces`.
    pub resource: &'a str,
    /// The object's name.
    pub name: &'a str,
}

impl Call<'_> {
    /// Classifies `err` into a retryable or permanent step error.
    pub fn error(&self, err: &kube::Error) -> StepError {
        let Call {
            cluster,
            verb,
            resource,
            name,
        } = *self;
        let detail = |code: u16, reason: &str| {
            json!({ "cluster": cluster, "verb": verb, "resource": resource, "name": name,
                    "code": code, "reason": reason })
        };
        match err {
            kube::Error::Api(status) => {
                let code = status.code;
                let message = format!(
                    "cluster `{cluster}` answered {code} {} to {verb} {resource} `{name}`: {}",
                    status.reason, status.message
                );
                let error = match code {
                    401 => StepError::permanent(format!(
                        "cluster `{cluster}` did not accept hubwright's credentials to {verb} {resource} `{name}`: {}",
                        status.message
                    )),
                    403 => StepError::permanent(format!(
                        "cluster `{cluster}` forbids hubwright to {verb} {resource} `{name}`: {}",
                        status.message
                    )),
                    // Server-side trouble, throttling, and optimistic-concurrency
                    // races all pass.
                    409 | 429 | 500..=599 | 0 => StepError::retryable(message),
                    _ => StepError::permanent(message),
                };
                let error = error.with_detail(detail(code, &status.reason));
                match retry_after(status) {
                    Some(after) if error.class == ErrorClass::Retryable => {
                        error.with_retry_after(after)
                    }
                    _ => error,
                }
            }
            kube::Error::Auth(err) => StepError::permanent(format!(
                "cluster `{cluster}`: cannot obtain credentials to {verb} {resource} `{name}`: {err}"
            ))
            .with_cause(Cause::Forbidden),
            other => StepError::retryable(format!(
                "cannot reach cluster `{cluster}` to {verb} {resource} `{name}`: {other}"
            ))
            .with_detail(detail(0, "Unreachable")),
        }
    }
}

/// How long the server asked clients to wait, from the `Status` body; kube
/// does not hand its client the `Retry-After` header, but kube-apiserver
/// writes the same number into `details.retryAfterSeconds`.
fn retry_after(status: &kube::core::Status) -> Option<Duration> {
    status
        .details
        .as_ref()
        .map(|details| details.retry_after_seconds)
        .filter(|seconds| *seconds > 0)
        .map(|seconds| Duration::from_secs(u64::from(seconds)))
}

/// Whether `err` is the API's answer `code`.
pub fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

/// Whether `err` refuses new content in a namespace that is being deleted
/// (403 with cause `NamespaceTerminating`): a wait, not a failure.
pub fn is_namespace_terminating(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) if status.code == 403 => {
            status.message.contains("because it is being terminated")
                || status.details.as_ref().is_some_and(|details| {
                    details
                        .causes
                        .iter()
                        .any(|cause| cause.reason == "NamespaceTerminating")
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_that_echoes_a_secret_loses_its_data_and_stays_bounded() {
        let echo = format!(
            r#"admission webhook "policy.example.org" denied the request: {{"kind":"Secret","metadata":{{"name":"hub-oauth"}},"data":{{"client_secret":"aHVudGVyMg=="}}}} {}"#,
            "and more ".repeat(400)
        );
        let status = kube::core::Status::failure(&echo, "Invalid").with_code(422);
        let call = Call {
            cluster: "east",
            verb: "create",
            resource: "secrets",
            name: "hub-oauth",
        };
        let error = call.error(&kube::Error::Api(Box::new(status)));
        assert!(!error.message.contains("aHVudGVyMg"), "{}", error.message);
        assert!(
            error.message.contains("cluster `east`") && error.message.contains("hub-oauth"),
            "{}",
            error.message
        );
        assert!(error.message.len() <= crate::error_text::MAX_BYTES);
        assert!(error.message.ends_with('…'), "{}", error.message);
    }
}
