//! The shape of the background passes (audit retention, run retention,
//! expiry labels): one pass at start, then one every interval, a failed
//! pass logged and tried again at the next.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// Runs `pass` at once and then every `interval` until `shutdown` resolves.
/// A failed pass is logged as a warning naming `what`.
pub(crate) async fn every<T, E, P>(
    what: &str,
    interval: Duration,
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
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
