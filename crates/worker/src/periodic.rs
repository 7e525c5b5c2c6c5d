//! The shape of the background passes (audit retention, run retention,
//! expiry labels): one pass at start, then one every interval, a failed
//! pass logged and tried again at the next.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::signal::Moment;

/// Runs `pass` at once and then every `interval` until `shutdown` resolves,
/// reaching `passed` after each. A failed pass is logged as a warning
/// naming `what`.
pub(crate) async fn every<T, E, P>(
    what: &str,
    interval: Duration,
    passed: &Moment,
    shutdown: impl Future<Output = ()>,
    mut pass: impl FnMut() -> P,
) where
    P: Future<Output = Result<T, E>>,
    E: Display,
{
    tokio::pin!(shutdown);
    loop {
        if let Err(err) = pass().await {
            tracing::warn!(error = %err, "{what} pass failed; retrying later");
        }
        passed.reached();
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
