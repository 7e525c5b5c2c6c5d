//! Request rate limits, so one script cannot take the API from everyone else:
//! each authenticated caller has a budget of requests (a GCRA bucket:
//! `burst` at once, refilled at `rate` per second), and each client address a
//! budget of failed sign-ins, so a flood of wrong tokens is answered `429`,
//! not `401` after `401`. A request over budget is a `429` problem with
//! `Retry-After`, and is counted in `hubwright_http_rate_limited_total`.
//!
//! Failed sign-ins are limited by address and only after they failed, so a
//! flood from behind a shared proxy never refuses a valid token.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::Problem;

/// One budget: `rate` requests a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Requests a second, refilled continuously; 0 turns the limit off.
    pub rate: f64,
    /// Requests that may come at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl Budget {
    /// No limit.
    pub const OFF: Self = Self {
        rate: 0.0,
        burst: 1,
    };

    fn quota(self) -> Option<Quota> {
        if !self.rate.is_finite() || self.rate <= 0.0 {
            return None;
        }
        let period = Duration::try_from_secs_f64(1.0 / self.rate).ok()?;
        Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(self.burst.max(1))?))
    }
}

/// The limits `serve` sets: per caller, and per address for failed sign-ins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitConfig {
    /// Every authenticated caller's budget.
    pub per_caller: Budget,
    /// Each client address's budget of failed sign-ins.
    pub auth_failures: Budget,
}

impl RateLimitConfig {
    /// No limits (the library's default; `serve` sets its own).
    pub const OFF: Self = Self {
        per_caller: Budget::OFF,
        auth_failures: Budget::OFF,
    };
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self::OFF
    }
}

/// Whose budget a request spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallerKey {
    /// A hubwright token, by a keyed hash of its secret (never the secret).
    Token(u64),
    /// A user of the OpenID provider, whichever of their JWTs they send.
    User(String),
}

/// The limiters of one API process.
#[derive(Debug)]
pub struct RateLimits {
    callers: Option<DefaultKeyedRateLimiter<CallerKey>>,
    addresses: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Hashes token secrets into keys; random per process, so keys cannot be
    /// chosen to collide.
    hasher: RandomState,
    /// Checks so far, to forget idle keys now and then.
    checks: AtomicU64,
}

/// Forget keys whose buckets are full again after this many checks.
const SWEEP_EVERY: u64 = 4096;

impl RateLimits {
    /// Limiters for `config`.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            callers: config
                .per_caller
                .quota()
                .map(DefaultKeyedRateLimiter::keyed),
            addresses: config
                .auth_failures
                .quota()
                .map(DefaultKeyedRateLimiter::keyed),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
        }
    }

    /// The key of a hubwright token's secret.
    pub fn token_key(&self, secret: &str) -> CallerKey {
        CallerKey::Token(self.hasher.hash_one(secret))
    }

    /// Spends one request of `key`'s budget; a `429` when it is used up.
    pub fn admit(&self, key: &CallerKey) -> Result<(), Problem> {
        let Some(limiter) = &self.callers else {
            return Ok(());
        };
        self.sweep();
        limiter.check_key(key).map_err(|not_until| {
            metrics::counter!(crate::metrics::HTTP_RATE_LIMITED, "limit" => "caller").increment(1);
            Problem::too_many_requests(
                "this token has made too many requests; wait before the next",
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// Records a failed sign-in from the request's address: `problem` (the
    /// `401`) while its budget lasts, a `429` after.
    pub fn failed(&self, parts: &Parts, problem: Problem) -> Problem {
        let Some(limiter) = &self.addresses else {
            return problem;
        };
        self.sweep();
        match limiter.check_key(&client_address(parts)) {
            Ok(()) => problem,
            Err(not_until) => {
                metrics::counter!(crate::metrics::HTTP_RATE_LIMITED, "limit" => "auth_failures")
                    .increment(1);
                Problem::too_many_requests(
                    "too many failed sign-ins from this address; wait before the next",
                    not_until.wait_time_from(DefaultClock::default().now()),
                )
            }
        }
    }

    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            if let Some(limiter) = &self.callers {
                limiter.retain_recent();
            }
            if let Some(limiter) = &self.addresses {
                limiter.retain_recent();
            }
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(RateLimitConfig::OFF)
    }
}

/// The peer's address, as the server recorded it; one shared key when the
/// server did not (then all failed sign-ins share one budget).
fn client_address(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_the_burst_then_429s_that_say_when_to_come_back() {
        let limits = RateLimits::new(RateLimitConfig {
            per_caller: Budget {
                rate: 0.01,
                burst: 2,
            },
            auth_failures: Budget::OFF,
        });
        let alice = limits.token_key("hw_alice");
        assert!(limits.admit(&alice).is_ok());
        assert!(limits.admit(&alice).is_ok());
        let refused = limits.admit(&alice).unwrap_err();
        assert_eq!(refused.status(), 429);
        assert!(refused.retry_after().is_some_and(|s| s > 50), "{refused:?}");
        assert!(
            limits.admit(&CallerKey::User("bob".to_owned())).is_ok(),
            "others are not affected"
        );
        assert_ne!(limits.token_key("hw_alice"), limits.token_key("hw_bob"));
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let limits = RateLimits::default();
        let key = limits.token_key("hw_x");
        assert!((0..1000).all(|_| limits.admit(&key).is_ok()));
        assert_eq!(
            Budget {
                rate: 0.0,
                burst: 5
            }
            .quota(),
            None
        );
        assert_eq!(
            Budget {
                rate: f64::NAN,
                burst: 5
            }
            .quota(),
            None
        );
    }
}
