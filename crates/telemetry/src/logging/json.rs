//! `--log-format json`: one object per line whose fields are the event's and
//! those of every span it happened in, side by side. A line a step logs
//! carries `run_id`, `trace_id`, `step`, `kind` and `attempt` at the top,
//! as a request's carries `request_id`, so a log store filters on them
//! without knowing which span set which.
//!
//! tracing-subscriber's own JSON format nests span fields under `span` and
//! `spans`; this one flattens them. When two spans set the same field the
//! innermost wins, and the event's own fields win over any span's.

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The flat JSON line format (see the module's docs). Span fields must be
/// stored as JSON: pair it with `JsonFields`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut own = Fields::default();
        event.record(&mut own);
        let mut from_spans = Fields::default();
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(stored) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(stored)
                {
                    for (name, value) in fields {
                        from_spans.set(name, value);
                    }
                }
                innermost = Some(span.name());
            }
        }
        let metadata = event.metadata();
        let mut line = Fields::default();
        line.set("timestamp".to_owned(), Value::String(timestamp));
        line.set(
            "level".to_owned(),
            Value::String(metadata.level().to_string()),
        );
        for (name, value) in own.0 {
            line.set(name, value);
        }
        for (name, value) in from_spans.0 {
            if !line.has(&name) {
                line.set(name, value);
            }
        }
        line.set(
            "target".to_owned(),
            Value::String(metadata.target().to_owned()),
        );
        if let Some(span) = innermost {
            line.set("span".to_owned(), Value::String(span.to_owned()));
        }
        writer.write_str("{")?;
        for (i, (name, value)) in line.0.iter().enumerate() {
            if i > 0 {
                writer.write_str(",")?;
            }
            let name = serde_json::to_string(name).map_err(|_| fmt::Error)?;
            let value = serde_json::to_string(value).map_err(|_| fmt::Error)?;
            write!(writer, "{name}:{value}")?;
        }
        writer.write_str("}\n")
    }
}

/// Fields in the order they were first set: a line reads message first.
#[derive(Default)]
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn set(&mut self, name: String, value: Value) {
        match self.0.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((name, value)),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(existing, _)| existing == name)
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name().to_owned(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name().to_owned(), Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::JsonFields;

    use super::*;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn a_line_carries_the_fields_of_every_span_it_was_logged_in_at_the_top() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let run = tracing::info_span!("run", run_id = "r1", trace_id = tracing::field::Empty);
            run.record("trace_id", "abc");
            let _run = run.enter();
            let step = tracing::info_span!("step", step = "namespace", attempt = 2);
            let _step = step.enter();
            tracing::info!(step = "own", count = 3, "step \"started\"");
        });
        let text =
            String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("UTF-8");
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["message"], "step \"started\"");
        assert_eq!(line["run_id"], "r1");
        assert_eq!(line["trace_id"], "abc");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["count"], 3);
        assert_eq!(line["step"], "own", "the event's field wins: {line}");
        assert_eq!(line["span"], "step");
        assert_eq!(line["level"], "INFO");
        assert!(
            text.contains(r#""message":"step \"started\"","step":"own","count":3"#),
            "the event's fields come first, in order: {text}"
        );
        assert_eq!(
            line.as_object()
                .map(|o| o.keys().filter(|k| *k == "step").count()),
            Some(1)
        );
    }
}
