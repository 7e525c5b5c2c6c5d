//! Waiting for the database at start-up.
//!
//! Every role of `serve` needs the database before it can do anything. When
//! it cannot be reached (a failover, Postgres starting after hubwright, a
//! network not up yet), `serve` tries again with a growing pause, up to
//! [`MAX_DELAY`], and logs each attempt with its cause, instead of exiting
//! and being restarted in a loop. Settings that time will not fix (a wrong
//! password, a missing database, a schema behind the binary) stop it at once.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use hubwright_state::Store;
use hubwright_state::store::database::server_address;
use hubwright_state::workflow::{Catalog, Dur};

/// The longest pause between two attempts, before jitter (which adds up to
/// as much again).
const MAX_DELAY: Duration = Duration::from_secs(3);

/// How long one attempt may take to open a connection: a server that takes
/// connections but never answers counts as away.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `--database-wait`: how long to wait at start-up; `None` is for ever.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseWait(Option<Duration>);

/// `forever`, or a duration (`0s`: give up after the first attempt).
pub fn parse_database_wait(text: &str) -> Result<DatabaseWait, String> {
    if text.trim() == "forever" {
        return Ok(DatabaseWait(None));
    }
    text.parse::<Dur>()
        .map(|wait| DatabaseWait(Some(wait.0)))
        .map_err(|err| format!("must be `forever` or a duration such as 10m ({err})"))
}

/// What `/readyz` says while [`connect`] waits: the server, never the user
/// or the password.
pub fn waiting_reason(url: &str) -> String {
    format!("waiting for the database at {}", server_address(url))
}

/// Why an attempt failed.
enum Failure {
    /// The server is away; the cause, for the log.
    Unreachable(String),
    /// Waiting will not help.
    Fatal(anyhow::Error),
}

/// Connects with `connections` pooled connections, checks that the schema is
/// current and registers `catalog`'s definitions, trying again while the
/// server cannot be reached, for at most `wait`.
pub async fn connect(
    url: &str,
    connections: u32,
    wait: DatabaseWait,
    catalog: &mut Catalog,
) -> anyhow::Result<Store> {
    let address = server_address(url);
    let started = Instant::now();
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(MAX_DELAY)
        .without_max_times()
        .with_jitter()
        .build();
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        let cause = match try_once(url, connections, catalog).await {
            Ok(store) => {
                if attempt > 1 {
                    tracing::info!(
                        attempt,
                        waited = ?started.elapsed(),
                        "the database at {address} answers; starting"
                    );
                }
                return Ok(store);
            }
            Err(Failure::Fatal(err)) => return Err(err),
            Err(Failure::Unreachable(cause)) => cause,
        };
        let mut delay = delays.next().unwrap_or(MAX_DELAY);
        if let DatabaseWait(Some(limit)) = wait {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                anyhow::bail!(
                    "gave up waiting for the database at {address} after {} attempts \
                     (--database-wait {}): {cause}",
                    attempt,
                    Dur(limit),
                );
            }
            // The last attempt at the limit, not before it.
            delay = delay.min(left);
        }
        tracing::warn!(
            attempt,
            retry_in = ?delay,
            "waiting for the database at {address}: {cause}"
        );
        tokio::time::sleep(delay).await;
    }
}

async fn try_once(url: &str, connections: u32, catalog: &mut Catalog) -> Result<Store, Failure> {
    match tokio::time::timeout(PROBE_TIMEOUT, Store::probe(url)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(classify(url, err)),
        Err(_) => {
            return Err(Failure::Unreachable(format!(
                "no answer within {PROBE_TIMEOUT:?}"
            )));
        }
    }
    let store = Store::connect(url, connections)
        .await
        .map_err(|err| classify(url, err))?;
    match store.migrations_current().await {
        Ok(true) => {}
        Ok(false) => {
            return Err(Failure::Fatal(anyhow::anyhow!(
                "the database schema is behind this binary: run `hubwright admin migrate` first"
            )));
        }
        Err(err) => return Err(classify(url, err)),
    }
    catalog.register(&store).await.map_err(|err| match err {
        err if err.is_unreachable() => Failure::Unreachable(err.to_string()),
        err => Failure::Fatal(anyhow::Error::new(err).context("registering workflow definitions")),
    })?;
    Ok(store)
}

fn classify(url: &str, err: hubwright_state::Error) -> Failure {
    if err.is_unreachable() {
        Failure::Unreachable(err.to_string())
    } else {
        Failure::Fatal(super::super::connect_error(url, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_forever_or_a_duration_and_anything_else_says_which() {
        assert_eq!(parse_database_wait("forever").unwrap().0, None);
        assert_eq!(
            parse_database_wait("90s").unwrap().0,
            Some(Duration::from_secs(90))
        );
        let err = parse_database_wait("soon").unwrap_err();
        assert!(err.starts_with("must be `forever` or a duration"), "{err}");
    }

    #[test]
    fn the_reason_names_the_server_and_not_the_password() {
        assert_eq!(
            waiting_reason("postgres://hub:s3cret@db.internal:6432/hubwright"),
            "waiting for the database at db.internal:6432"
        );
    }
}
