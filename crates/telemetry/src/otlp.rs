//! The OTLP/HTTP trace exporter (`serve --otel-endpoint`): spans are
//! batched and posted as protobuf from the SDK's own thread, with a
//! blocking reqwest client, so exporting never waits on the async runtime
//! and the runtime never waits on the collector.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_subscriber::filter::{LevelFilter, Targets};

use crate::logging::Otlp;

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The tracer whose spans go to `otlp.endpoint`, and its provider (kept to
/// flush at exit).
pub(crate) fn tracer(otlp: &Otlp) -> Result<(SdkTracer, SdkTracerProvider), String> {
    let endpoint = traces_url(&otlp.endpoint)?;
    let client = hubwright_http::blocking_client_builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|err| format!("building the exporter's HTTP client: {err}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|err| err.to_string())?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(otlp.service_name.clone())
                .build(),
        )
        .build();
    Ok((provider.tracer("hubwright"), provider))
}

/// The exporter's own HTTP calls, and the HTTP stack's spans under every
/// call, stay out of the traces: each export would otherwise make spans
/// for the next one. The calls hubwright makes have spans of their own
/// ([`crate::client`]).
pub(crate) fn own_calls_filtered() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("reqwest", LevelFilter::OFF)
        .with_target("h2", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
        .with_target("opentelemetry_http", LevelFilter::OFF)
}

/// `endpoint` with the traces path: `/v1/traces` is appended to a base URL
/// (as the `OTEL_EXPORTER_OTLP_ENDPOINT` convention has it) unless it is
/// there already. The error says which rule the URL breaks.
pub(crate) fn traces_url(endpoint: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(endpoint).map_err(|err| format!("`{endpoint}` is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{endpoint}` must be an http or https URL"));
    }
    let trimmed = endpoint.trim_end_matches('/');
    Ok(if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://collector:4318").as_deref(),
            Ok("http://collector:4318/v1/traces")
        );
        assert_eq!(
            traces_url("http://collector:4318/").as_deref(),
            Ok("http://collector:4318/v1/traces")
        );
        assert_eq!(
            traces_url("https://otel.example.org/v1/traces").as_deref(),
            Ok("https://otel.example.org/v1/traces")
        );
        assert!(traces_url("collector:4318").is_err());
        assert!(
            traces_url("ftp://collector/")
                .is_err_and(|why| why.contains("must be an http or https URL"))
        );
    }
}
