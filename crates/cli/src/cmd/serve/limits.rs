//! `serve`'s flags for the API's limits (docs/operations.md, "Limits").

use hubwright_api::{ServerLimits, StreamLimits};
use hubwright_state::workflow::Dur;

/// The API's limits on slow clients, sizes, connections and event streams.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// A connection must send a whole request head within this; idle
    /// keep-alive connections close after it too.
    #[arg(long, env = "HUBWRIGHT_HEADER_READ_TIMEOUT", default_value = "10s")]
    header_read_timeout: Dur,
    /// A request's body must arrive within this once its head is read (408).
    #[arg(long, env = "HUBWRIGHT_BODY_READ_TIMEOUT", default_value = "10s")]
    body_read_timeout: Dur,
    /// A handler must answer within this (503); event streams' bodies are not counted.
    #[arg(long, env = "HUBWRIGHT_REQUEST_TIMEOUT", default_value = "30s")]
    request_timeout: Dur,
    /// Largest request head (request line and headers) in bytes; larger is
    /// answered 431. At least 8192.
    #[arg(long, env = "HUBWRIGHT_MAX_HEADER_BYTES", default_value_t = 32 * 1024)]
    max_header_bytes: usize,
    /// Connections served at once; more wait until one closes. Keep the
    /// process's open-file limit above this plus the database connections.
    #[arg(long, env = "HUBWRIGHT_MAX_CONNECTIONS", default_value_t = 2048)]
    max_connections: usize,
    /// Open event streams one token may hold (429 past it).
    #[arg(long, env = "HUBWRIGHT_MAX_STREAMS_PER_TOKEN", default_value_t = 20)]
    max_streams_per_token: usize,
    /// Open event streams of this process (429 past it).
    #[arg(long, env = "HUBWRIGHT_MAX_STREAMS", default_value_t = 1000)]
    max_streams: usize,
    /// How often an open event stream's token is checked again; a revoked
    /// (or expired OpenID) token's streams end within this.
    #[arg(long, env = "HUBWRIGHT_STREAM_RECHECK_INTERVAL", default_value = "5s")]
    stream_recheck_interval: Dur,
    /// How often followed runs' newest events are read in case a
    /// notification was missed (they arrive by LISTEN/NOTIFY).
    #[arg(
        long,
        env = "HUBWRIGHT_STREAM_FALLBACK_INTERVAL",
        default_value = "30s"
    )]
    stream_fallback_interval: Dur,
}

impl Limits {
    /// The limits of connections and requests, and those of event streams.
    pub fn split(&self) -> (ServerLimits, StreamLimits) {
        (
            ServerLimits {
                header_read_timeout: self.header_read_timeout.0,
                body_read_timeout: self.body_read_timeout.0,
                request_timeout: self.request_timeout.0,
                max_header_bytes: self.max_header_bytes,
                max_connections: self.max_connections,
            },
            StreamLimits {
                per_token: self.max_streams_per_token,
                total: self.max_streams,
                recheck: self.stream_recheck_interval.0,
                fallback: self.stream_fallback_interval.0,
            },
        )
    }
}
