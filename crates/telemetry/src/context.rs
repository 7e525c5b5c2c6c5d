//! W3C trace context: the `traceparent` value that joins an API request, the
//! run it created (stored with the run) and the calls its steps make.
//!
//! Written and read here rather than by the SDK's propagator so the always
//! built crates need only the OpenTelemetry API: the value is four fixed
//! fields (<https://www.w3.org/TR/trace-context/#traceparent-header>).
//! `tracestate` is not carried.

use std::fmt;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and, upper-cased, the environment variable) that carries it.
pub const HEADER: &str = "traceparent";

/// A parsed `traceparent`: which trace, which span is the parent, and
/// whether the trace is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace.
    pub trace_id: TraceId,
    /// The span the receiver's spans are children of.
    pub span_id: SpanId,
    /// Whether the caller records this trace.
    pub sampled: bool,
}

impl TraceParent {
    /// `text` read as a `traceparent`, or `None` when it breaks the format:
    /// a version other than `ff`, a 32-digit trace id and a 16-digit span id
    /// that are not all zeros, two digits of flags, all lower-case hex.
    /// Version `00` has exactly these four fields; a later version may
    /// append more, which are ignored, as the specification asks.
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.trim().split('-');
        let (version, trace, span, flags) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        let hex = |field: &str, len: usize| {
            field.len() == len
                && field
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !hex(version, 2) || version == "ff" || (version == "00" && fields.next().is_some()) {
            return None;
        }
        if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
            return None;
        }
        let trace_id = TraceId::from_hex(trace).ok()?;
        let span_id = SpanId::from_hex(span).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != TraceId::INVALID && span_id != SpanId::INVALID).then_some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The trace context of `span`, when it has one: the OpenTelemetry layer
    /// is installed (`serve --otel-endpoint`), or the span's parent was set
    /// from a stored or received `traceparent`.
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        let context = span.context();
        let span = context.span();
        let found = span.span_context();
        found.is_valid().then(|| Self {
            trace_id: found.trace_id(),
            span_id: found.span_id(),
            sampled: found.is_sampled(),
        })
    }

    /// The trace context of the current span ([`TraceParent::of_span`]).
    pub fn current() -> Option<Self> {
        Self::of_span(&tracing::Span::current())
    }

    /// The trace id as 32 lower-case hex digits, as tracing back ends show it.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// An OpenTelemetry context whose (remote) span is this one, for
    /// [`set_parent`].
    pub fn context(&self) -> Context {
        Context::new().with_remote_span_context(self.span_context())
    }

    /// The (remote) span this names.
    fn span_context(&self) -> SpanContext {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::NOT_SAMPLED
        };
        SpanContext::new(
            self.trace_id,
            self.span_id,
            flags,
            true,
            TraceState::default(),
        )
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

/// Makes `parent` the parent of `span`, which must not have been entered
/// yet. Without the OpenTelemetry layer there is nothing to link and this
/// does nothing.
pub fn set_parent(span: &tracing::Span, parent: &TraceParent) {
    // Fails only without the layer, or once the span has started: both
    // leave the span as it is, which is all that can be done.
    let _ = span.set_parent(parent.context());
}

/// Links `span` to `other`, a span of another trace (or of this one) that
/// it follows from: an operator's retry request links to the trace of the
/// run's earlier attempts. Without the OpenTelemetry layer this does
/// nothing.
pub fn link(span: &tracing::Span, other: &TraceParent) {
    span.add_link(other.span_context());
}

/// Renames `span` in the trace (its `otel.name`), also after it started:
/// a request's span is named after its route once a router has matched.
pub fn rename(span: &tracing::Span, name: String) {
    span.context().span().update_name(name.clone());
    span.record("otel.name", name);
}

/// Adds `span`'s `traceparent` to `headers`, when it has a trace context.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if let Some(parent) = TraceParent::of_span(span)
        && let Ok(value) = http::HeaderValue::from_str(&parent.to_string())
    {
        headers.insert(HEADER, value);
    }
}

/// The `traceparent` in `headers`, if there is one and it is well formed.
pub fn extract(headers: &http::HeaderMap) -> Option<TraceParent> {
    headers
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_reads_back_as_it_was_written() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::parse(text).expect("valid");
        assert!(parent.sampled);
        assert_eq!(parent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.to_string(), text);
        let unsampled = TraceParent::parse(&text.replace("-01", "-00")).expect("valid");
        assert!(!unsampled.sampled);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_for_its_first_four_fields() {
        let text = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let parent = TraceParent::parse(text).expect("valid");
        assert_eq!(
            parent.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn without_the_opentelemetry_layer_a_span_has_no_trace_context() {
        let span = tracing::info_span!("plain");
        assert_eq!(TraceParent::of_span(&span), None);
        let mut headers = http::HeaderMap::new();
        inject(&span, &mut headers);
        assert!(headers.is_empty());
    }
}

#[cfg(all(test, feature = "otlp"))]
mod with_the_layer {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn a_span_continues_a_stored_trace_and_hands_it_on() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        use tracing_subscriber::Layer;
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("test"))
            .with_filter(crate::otlp::own_calls_filtered());
        let (filter, _handle, _) = crate::logging::filter::from_env();
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(Some(layer));
        tracing::subscriber::with_default(subscriber, || {
            let own = tracing::info_span!("own");
            let started = TraceParent::of_span(&own).expect("a trace of its own");
            let current = own.in_scope(TraceParent::current).expect("current");
            assert_eq!(current, started);

            let stored =
                TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                    .expect("valid");
            let run = tracing::info_span!("run");
            set_parent(&run, &stored);
            let continued = TraceParent::of_span(&run).expect("continued");
            assert_eq!(continued.trace_id, stored.trace_id);
            assert_ne!(continued.span_id, stored.span_id);
            let child = run.in_scope(|| tracing::info_span!("step"));
            let mut headers = http::HeaderMap::new();
            inject(&child, &mut headers);
            let sent = extract(&headers).expect("a traceparent header");
            assert_eq!(sent.trace_id, stored.trace_id);
        });
    }
}
