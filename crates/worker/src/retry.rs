//! Retry schedules. Retries happen across processes, so the delay for attempt
//! *n* is computed from the policy alone rather than from an iterator kept in
//! memory.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use hubwright_state::workflow::RetryPolicy;

/// The delay before retrying after failed attempt `attempt` (1-based):
/// `initial_delay * factor^(attempt-1)`, capped at `max_delay`, plus up to 100%
/// jitter when the policy asks for it.
pub fn retry_delay(policy: &RetryPolicy, attempt: u32) -> Duration {
    let attempt = usize::try_from(attempt.max(1)).unwrap_or(usize::MAX);
    let mut builder = ExponentialBuilder::default()
        .with_min_delay(policy.initial_delay.0)
        .with_max_delay(policy.max_delay.0)
        .with_factor(policy.factor)
        .with_max_times(attempt);
    if policy.jitter {
        builder = builder.with_jitter();
    }
    builder
        .build()
        .nth(attempt - 1)
        .unwrap_or(policy.max_delay.0)
}

/// The longest `Retry-After` honoured: a server (or a proxy in front of it)
/// that asks for a day must not park a developer's hub for a day; past this
/// the step's own policy decides again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// The delay before retrying after failed attempt `attempt` that the far side
/// asked to come back no sooner than `retry_after`: the longer of that (at
/// most [`MAX_RETRY_AFTER`]) and [`retry_delay`]. Coming back sooner would
/// only be refused again.
pub(crate) fn delay_before_retry(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let asked = retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
    retry_delay(policy, attempt).max(asked)
}

#[cfg(test)]
mod tests {
    use hubwright_state::workflow::Dur;

    use super::*;

    fn policy(jitter: bool) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            initial_delay: Dur::from_secs(1),
            max_delay: Dur::from_secs(10),
            factor: 2.0,
            jitter,
        }
    }

    #[test]
    fn delays_double_until_the_cap() {
        let delays: Vec<u64> = (1..=6)
            .map(|n| retry_delay(&policy(false), n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_wins_and_a_shorter_one_does_not() {
        let policy = policy(false);
        assert_eq!(
            delay_before_retry(&policy, 1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            delay_before_retry(&policy, 4, Some(Duration::from_secs(3))),
            Duration::from_secs(8)
        );
        assert_eq!(delay_before_retry(&policy, 2, None), Duration::from_secs(2));
    }

    #[test]
    fn a_retry_after_of_a_day_is_honoured_only_up_to_the_cap() {
        assert_eq!(
            delay_before_retry(&policy(false), 1, Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn jitter_stays_within_one_delay_above_the_base() {
        for attempt in 1..=5 {
            let base = retry_delay(&policy(false), attempt);
            let jittered = retry_delay(&policy(true), attempt);
            assert!(
                jittered >= base && jittered < base * 2,
                "attempt {attempt}: {jittered:?}"
            );
        }
    }
}
