//! The API's connections: hyper's HTTP/1 server on an accept loop of our
//! own, because `axum::serve` sets no limits. A client that sends half a
//! request head, or nothing, is cut off after the header read timeout (idle
//! keep-alive connections too); a head larger than the limit is answered 431;
//! at most `max_connections` are served at once, and further ones wait in the
//! listen backlog until one closes (the kernel refuses them once that is
//! full). Body and handler timeouts are middleware ([`crate::timeouts`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::{AppState, router_with};

/// The smallest head limit hyper can work with (its read buffer).
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

/// Limits on each connection and request.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// A connection must send a whole request head within this, counted from
    /// when the server starts waiting for one (so idle keep-alive connections
    /// close after it too).
    pub header_read_timeout: Duration,
    /// A request's body must arrive within this once its head is read.
    pub body_read_timeout: Duration,
    /// A handler must answer (the status and headers; an event stream's body
    /// goes on) within this.
    pub request_timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_header_bytes: 32 * 1024,
            max_connections: 2048,
        }
    }
}

impl ServerLimits {
    /// Refuses limits hyper cannot work with, naming the flag to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(format!(
                "--max-header-bytes must be at least {MIN_HEADER_BYTES}, got {}",
                self.max_header_bytes
            ));
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".to_owned());
        }
        for (flag, value) in [
            ("--header-read-timeout", self.header_read_timeout),
            ("--body-read-timeout", self.body_read_timeout),
            ("--request-timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("{flag} must be more than 0"));
            }
        }
        Ok(())
    }
}

/// Serves the API on `listener` within `limits` until `shutdown` resolves,
/// then ends every event stream and waits for open requests to finish.
pub async fn serve_with_limits(
    listener: TcpListener,
    state: AppState,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let streams = state.streams.clone();
    serve_app(listener, router_with(state), streams, limits, shutdown).await
}

/// [`serve_with_limits`] for an `app` that holds the API's router and more
/// (the web console): `streams` are the API's, ended at shutdown.
pub async fn serve_app(
    listener: TcpListener,
    app: axum::Router,
    streams: crate::Streams,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    limits
        .validate()
        .map_err(|why| std::io::Error::new(std::io::ErrorKind::InvalidInput, why))?;
    tracing::info!(address = %listener.local_addr()?, "api listening");
    // The request's span is outermost: a timed-out request is answered
    // with its id and logged in its span too.
    let router = app
        .layer(axum::middleware::from_fn_with_state(
            limits.clone(),
            crate::timeouts::enforce,
        ))
        .layer(axum::middleware::from_fn(crate::request_trace::trace));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_header_size(limits.max_header_bytes);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A slot first: past the cap, connections wait in the backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The peer's address is where failed sign-ins are counted (ratelimit).
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(socket), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                // Timeouts, oversized heads and clients that go away end here.
                tracing::debug!(error = %err, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    // Streams would hold their connections open for as long as their runs live.
    streams.close();
    graceful.shutdown().await;
    Ok(())
}

/// An accept that failed: a connection reset before it was accepted is
/// nothing; anything else (out of file descriptors) is logged and the loop
/// pauses instead of spinning.
pub(crate) async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %err, "cannot accept a connection; pausing");
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hyper_cannot_work_with_are_refused_naming_the_flag() {
        assert_eq!(ServerLimits::default().validate(), Ok(()));
        let small_head = ServerLimits {
            max_header_bytes: 4096,
            ..ServerLimits::default()
        };
        assert_eq!(
            small_head.validate(),
            Err("--max-header-bytes must be at least 8192, got 4096".to_owned())
        );
        let no_connections = ServerLimits {
            max_connections: 0,
            ..ServerLimits::default()
        };
        assert!(
            no_connections
                .validate()
                .is_err_and(|why| why.contains("--max-connections"))
        );
        let no_time = ServerLimits {
            body_read_timeout: Duration::ZERO,
            ..ServerLimits::default()
        };
        assert_eq!(
            no_time.validate(),
            Err("--body-read-timeout must be more than 0".to_owned())
        );
    }
}
