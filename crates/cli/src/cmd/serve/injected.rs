//! What a caller (the tests) may hand `serve` instead of what it makes itself.

use std::sync::Arc;

use hubwright_state::secrets::SecretKeys;
use hubwright_state::{Clock, SystemClock};

/// What a caller may hand `serve` instead of what it would make itself.
#[derive(Debug)]
pub struct Injected {
    /// The API's socket, already bound (tests bind `127.0.0.1:0`); without
    /// it the API binds `--listen`.
    pub listener: Option<tokio::net::TcpListener>,
    /// The metrics and probes socket, already bound; without it they are
    /// served on `--metrics-listen` when that is set.
    pub metrics_listener: Option<tokio::net::TcpListener>,
    /// The clock of the API, the worker and the scheduler.
    pub clock: Arc<dyn Clock>,
    /// The worker's secret keys; without them it reads `HUBWRIGHT_SECRET_KEY`.
    pub keys: Option<Arc<SecretKeys>>,
}

impl Default for Injected {
    fn default() -> Self {
        Self {
            listener: None,
            metrics_listener: None,
            clock: Arc::new(SystemClock),
            keys: None,
        }
    }
}
