//! Exemplars: for each bucket of each histogram series, the trace of the
//! latest observation that fell in it while a sampled span was current
//! (the worker's `step` span for `hubwright_step_duration_seconds`).
//!
//! The `metrics` facade hands a recorder a bare `f64`, and
//! `metrics-exporter-prometheus` keeps bare counts, so [`Recorder`] sits in
//! front of the exporter's: every histogram it registers records into the
//! exporter as before and, when the current span belongs to a sampled
//! trace, also into a side table keyed by the series and the bucket. Only
//! OpenMetrics scrapes read the table ([`super::openmetrics`]); the
//! Prometheus text the exporter renders is untouched. Without the
//! OpenTelemetry layer (`serve --otel-endpoint` unset) no span has a trace
//! context and the table stays empty.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use hubwright_telemetry::TraceParent;
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::PrometheusRecorder;

/// One observation's trace: what an OpenMetrics bucket line carries after
/// `#`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// The observation's trace context (its span is the one that was
    /// current: the step's).
    pub trace: TraceParent,
    /// The observed value.
    pub value: f64,
    /// When it was observed, in Unix seconds.
    pub at: f64,
}

/// The latest exemplar of each bucket of one series, by the bucket's upper
/// bound (`le`); the last is `+Inf`'s.
#[derive(Debug, Default)]
struct Series {
    buckets: Mutex<Vec<Option<Exemplar>>>,
}

/// Every series' exemplars, shared by the recorder and the scrapes.
#[derive(Debug)]
pub(super) struct Table {
    /// Upper bounds of the buckets, ascending, as the exporter was given
    /// them (`+Inf` is implied).
    bounds: &'static [f64],
    series: Mutex<HashMap<Key, Arc<Series>>>,
}

/// What one scrape reads: series (name and labels, sorted) to the exemplar
/// of each bucket bound.
pub(super) type Snapshot = HashMap<(String, Vec<(String, String)>), Vec<(f64, Exemplar)>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves nothing half-written that a
    // later reader could misread: a bucket's exemplar is replaced whole.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Table {
    pub(super) fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            series: Mutex::new(HashMap::new()),
        }
    }

    fn series(&self, key: &Key) -> Arc<Series> {
        Arc::clone(lock(&self.series).entry(key.clone()).or_default())
    }

    /// The bucket an observation of `value` falls in: the first whose upper
    /// bound is at least `value` (the exporter counts `value <= le`), else
    /// `+Inf`.
    fn bucket(&self, value: f64) -> usize {
        self.bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len())
    }

    fn bound(&self, bucket: usize) -> f64 {
        self.bounds.get(bucket).copied().unwrap_or(f64::INFINITY)
    }

    fn observe(&self, series: &Series, value: f64, trace: TraceParent) {
        if value.is_nan() {
            return;
        }
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        let bucket = self.bucket(value);
        let mut buckets = lock(&series.buckets);
        if buckets.len() <= bucket {
            buckets.resize(self.bounds.len() + 1, None);
        }
        buckets[bucket] = Some(Exemplar { trace, value, at });
    }

    /// Every exemplar recorded so far.
    pub(super) fn snapshot(&self) -> Snapshot {
        let series: Vec<(Key, Arc<Series>)> = lock(&self.series)
            .iter()
            .map(|(key, series)| (key.clone(), Arc::clone(series)))
            .collect();
        let mut out = Snapshot::new();
        for (key, series) in series {
            let buckets: Vec<(f64, Exemplar)> = lock(&series.buckets)
                .iter()
                .enumerate()
                .filter_map(|(bucket, exemplar)| Some((self.bound(bucket), (*exemplar)?)))
                .collect();
            if buckets.is_empty() {
                continue;
            }
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect();
            labels.sort();
            out.insert((key.name().to_owned(), labels), buckets);
        }
        out
    }
}

/// The process's recorder: the exporter's, with exemplars kept for
/// histograms.
pub(super) struct Recorder {
    pub(super) inner: PrometheusRecorder,
    pub(super) table: Arc<Table>,
}

/// A histogram series as the facade sees it: the exporter's, and the
/// table's row for the same series.
struct Traced {
    inner: Histogram,
    series: Arc<Series>,
    table: Arc<Table>,
}

impl HistogramFn for Traced {
    fn record(&self, value: f64) {
        self.inner.record(value);
        if let Some(trace) = TraceParent::current().filter(|trace| trace.sampled) {
            self.table.observe(&self.series, value, trace);
        }
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Traced {
            inner: self.inner.register_histogram(key, metadata),
            series: self.table.series(key),
            table: Arc::clone(&self.table),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.1, 1.0, 5.0];

    fn trace(span: u64) -> TraceParent {
        TraceParent::parse(&format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{span:016x}-01"
        ))
        .expect("valid")
    }

    #[test]
    fn an_observation_lands_in_the_first_bucket_that_holds_it_and_replaces_its_exemplar() {
        let table = Table::new(BOUNDS);
        let key = Key::from_parts("h", vec![metrics::Label::new("kind", "noop")]);
        let series = table.series(&key);
        table.observe(&series, 0.5, trace(1));
        table.observe(&series, 1.0, trace(2));
        table.observe(&series, 7.0, trace(3));
        table.observe(&series, f64::NAN, trace(4));
        let snapshot = table.snapshot();
        let buckets = &snapshot[&("h".to_owned(), vec![("kind".to_owned(), "noop".to_owned())])];
        let seen: Vec<(f64, f64, u64)> = buckets
            .iter()
            .map(|(le, e)| {
                let span = u64::from_str_radix(&format!("{:016x}", e.trace.span_id), 16).unwrap();
                (*le, e.value, span)
            })
            .collect();
        // 0.5 and then 1.0 both fall in `le="1"`: the later one is kept.
        assert_eq!(seen, vec![(1.0, 1.0, 2), (f64::INFINITY, 7.0, 3)]);
    }

    #[test]
    fn a_series_without_exemplars_is_left_out() {
        let table = Table::new(BOUNDS);
        let _ = table.series(&Key::from_name("quiet"));
        assert!(table.snapshot().is_empty());
    }
}
