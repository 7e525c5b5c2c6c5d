//! The process's one subscriber: a log filter that can change while the
//! process runs ([`filter`]), the OpenTelemetry layer when traces are
//! exported (`otlp`), and log lines on stderr as text or flat JSON
//! ([`json`]).

pub mod filter;
pub mod json;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines look on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON object per line, span fields flattened ([`json::FlatJson`]).
    Json,
}

/// Where traces go, when they are exported.
#[derive(Debug, Clone)]
pub struct Otlp {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`);
    /// `/v1/traces` is added unless the path already ends with it.
    pub endpoint: String,
    /// `service.name` on every span.
    pub service_name: String,
}

/// What [`init`] set up; [`Logging::shutdown`] flushes spans not yet
/// exported before the process exits.
#[derive(Debug, Default)]
pub struct Logging {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Logging {
    /// Exports what is still buffered and stops the exporter (a few seconds
    /// at most). Call it outside the async runtime.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            eprintln!("warning: flushing the last spans failed: {err}");
        }
    }
}

/// Why the subscriber could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Traces were asked for from a build without the exporter.
    #[error(
        "--otel-endpoint: this build of hubwright has no OpenTelemetry exporter (cargo feature `otel` of hubwright-cli)"
    )]
    NoExporter,
    /// The exporter refused its settings.
    #[error("--otel-endpoint: {0}")]
    Exporter(String),
}

/// Installs the process's subscriber: the filter from `RUST_LOG` (default
/// `info,sqlx=warn`, changeable later through [`filter::set`]), spans
/// exported to `otlp` when given, and log lines on stderr in `format`.
/// Does nothing more when a subscriber is installed already.
pub fn init(format: Format, otlp: Option<&Otlp>) -> Result<Logging, Error> {
    let (filter, handle, started_with) = filter::from_env();
    let registry = tracing_subscriber::registry().with(filter);
    #[cfg(feature = "otlp")]
    let (registry, provider) = {
        let (layer, provider) = match otlp {
            Some(otlp) => {
                let (tracer, provider) = crate::otlp::tracer(otlp).map_err(Error::Exporter)?;
                let layer = tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(crate::otlp::own_calls_filtered());
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        (registry.with(layer), provider)
    };
    #[cfg(not(feature = "otlp"))]
    if otlp.is_some() {
        return Err(Error::NoExporter);
    }
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match format {
        Format::Text => lines.boxed(),
        Format::Json => lines
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::FlatJson)
            .boxed(),
    };
    if registry.with(lines).try_init().is_ok() {
        filter::install(handle, started_with);
    }
    Ok(Logging {
        #[cfg(feature = "otlp")]
        provider,
    })
}
