//! Why a step failed, in a few words a dashboard can group by: the bounded
//! `cause` half of the `reason` label on step metrics (`retryable_http_5xx`,
//! `permanent_forbidden`; docs/operations.md, "Step failure reasons").
//!
//! A cause is set where the error is born when the code there knows it (the
//! runner's timeout, a panic, Helm's own words), and otherwise read from the
//! status code the error's structured detail already carries (`status` from
//! HTTP clients, `code` from the Kubernetes API), which the same code chose
//! the class from. Never from the message: messages are for people.

use hubwright_state::model::ErrorClass;
use serde_json::Value;

/// Why a step failed. The set is closed so the `reason` label stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The far side answered 5xx.
    Http5xx,
    /// The far side answered 429: too many requests.
    RateLimited,
    /// Credentials refused or not allowed: 401, 403, or none to be had.
    Forbidden,
    /// 404 or 410: what the step works on is not there.
    NotFound,
    /// 409: another writer got there first.
    Conflict,
    /// Any other 4xx: the far side refused the request as made.
    Rejected,
    /// No answer at all: connection refused or reset, DNS, TLS.
    Unreachable,
    /// The step ran past its `timeout`, or a deadline it waits for passed.
    Timeout,
    /// The step's task panicked, or its worker died each time it ran.
    Crashed,
    /// The worker lost the run's lease while the step was in flight (only
    /// on executions; the run is rescued, not failed).
    LeaseLost,
    /// Anything else: invalid parameters, a tool's own failure.
    Other,
}

impl Cause {
    /// Every cause, in the order the docs list them.
    pub const ALL: [Cause; 11] = [
        Cause::Http5xx,
        Cause::RateLimited,
        Cause::Forbidden,
        Cause::NotFound,
        Cause::Conflict,
        Cause::Rejected,
        Cause::Unreachable,
        Cause::Timeout,
        Cause::Crashed,
        Cause::LeaseLost,
        Cause::Other,
    ];

    /// The label text, e.g. `http_5xx`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Http5xx => "http_5xx",
            Cause::RateLimited => "rate_limited",
            Cause::Forbidden => "forbidden",
            Cause::NotFound => "not_found",
            Cause::Conflict => "conflict",
            Cause::Rejected => "rejected",
            Cause::Unreachable => "unreachable",
            Cause::Timeout => "timeout",
            Cause::Crashed => "crashed",
            Cause::LeaseLost => "lease_lost",
            Cause::Other => "other",
        }
    }

    /// The cause an HTTP status means; `0` is how the clients record "no
    /// answer".
    pub fn of_status(status: u64) -> Cause {
        match status {
            0 => Cause::Unreachable,
            401 | 403 => Cause::Forbidden,
            404 | 410 => Cause::NotFound,
            408 => Cause::Timeout,
            409 => Cause::Conflict,
            429 => Cause::RateLimited,
            400..=499 => Cause::Rejected,
            500..=599 => Cause::Http5xx,
            _ => Cause::Other,
        }
    }

    /// The cause a step error's structured detail implies: its `status` (HTTP
    /// clients) or `code` (Kubernetes), else [`Cause::Other`].
    pub fn of_detail(detail: Option<&Value>) -> Cause {
        detail
            .and_then(|detail| detail.get("status").or_else(|| detail.get("code")))
            .and_then(Value::as_u64)
            .map_or(Cause::Other, Cause::of_status)
    }
}

/// The `reason` label of a failed execution: class and cause, e.g.
/// `retryable_http_5xx`.
pub fn reason(class: ErrorClass, cause: Cause) -> String {
    format!("{class}_{}", cause.as_str())
}

/// The `reason` label of an execution that did not fail (done, wait,
/// cancelled).
pub const NO_REASON: &str = "none";

/// Every value the `reason` label can take: [`NO_REASON`] and each class
/// with each cause.
pub fn all_reasons() -> Vec<String> {
    std::iter::once(NO_REASON.to_owned())
        .chain(
            [ErrorClass::Retryable, ErrorClass::Permanent]
                .into_iter()
                .flat_map(|class| {
                    Cause::ALL
                        .into_iter()
                        .map(move |cause| reason(class, cause))
                }),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn statuses_map_to_their_causes() {
        let cases = [
            (0, Cause::Unreachable),
            (401, Cause::Forbidden),
            (403, Cause::Forbidden),
            (404, Cause::NotFound),
            (409, Cause::Conflict),
            (422, Cause::Rejected),
            (429, Cause::RateLimited),
            (503, Cause::Http5xx),
            (302, Cause::Other),
        ];
        for (status, cause) in cases {
            assert_eq!(Cause::of_status(status), cause, "{status}");
        }
    }

    #[test]
    fn the_detail_gives_the_cause_by_status_or_kubernetes_code() {
        assert_eq!(
            Cause::of_detail(Some(&json!({ "status": 502 }))),
            Cause::Http5xx
        );
        assert_eq!(
            Cause::of_detail(Some(&json!({ "code": 403, "verb": "create" }))),
            Cause::Forbidden
        );
        assert_eq!(
            Cause::of_detail(Some(&json!({ "helm": "install" }))),
            Cause::Other
        );
        assert_eq!(Cause::of_detail(None), Cause::Other);
    }

    #[test]
    fn there_are_23_reasons_and_each_is_distinct() {
        let reasons = all_reasons();
        assert_eq!(reasons.len(), 1 + 2 * Cause::ALL.len());
        let distinct: std::collections::HashSet<_> = reasons.iter().collect();
        assert_eq!(distinct.len(), reasons.len());
        assert!(reasons.contains(&"retryable_lease_lost".to_owned()));
        assert!(reasons.contains(&"permanent_forbidden".to_owned()));
    }
}
