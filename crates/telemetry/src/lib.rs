//! hubwright-telemetry: what joins an API request to its run, its steps and
//! their calls out, in logs and in traces (docs/decisions/0023-tracing.md).
//!
//! - [`context`]: the W3C `traceparent` an API request receives or starts,
//!   stored with the run it creates and sent on by every call a step makes.
//! - [`client`]: client spans around calls to other services, for reqwest
//!   requests and for tower stacks (kube's client).
//! - [`logging`]: the process's subscriber: text or flat JSON lines, a
//!   filter that changes without a restart, and with the `otlp` feature the
//!   OpenTelemetry layer that exports spans over OTLP/HTTP.
//! - [`reread`]: SIGHUP and polls, the triggers for reading a file again
//!   (the log filter file here, the templates and the policy in the API).

pub mod client;
pub mod context;
pub mod logging;
#[cfg(feature = "otlp")]
mod otlp;
pub mod reread;

pub use context::TraceParent;
