//! Prometheus text, for `GET /metrics` on the API (operator token) and on
//! `serve --metrics-listen` (no token; `hubwright-cli`). Counters, gauges and
//! histograms come from the `metrics` facade (the worker records steps, this
//! crate records requests); gauges about runs, the queue and what waits on an
//! operator are read from the database at scrape time by processes that run
//! the API ([`database`]), so every API replica reports the same, true
//! figures.
//!
//! Every metric has `# HELP` text: this crate's are described in
//! [`describe`], the worker's in `hubwright_worker::metrics`.
//!
//! A scrape that asks for OpenMetrics ([`Format::negotiate`]) gets it, with
//! the trace of the latest observation in each histogram bucket as its
//! exemplar ([`exemplars`], [`openmetrics`]); Prometheus text is the
//! default.

mod database;
mod exemplars;
mod http;
mod negotiation;
mod openmetrics;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use hubwright_state::Store;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use http::{CONTENT_TYPE, scrape, track};
pub use negotiation::Format;

/// Counter: requests by `method`, `route` (the template, not the raw path)
/// and `status`.
pub const HTTP_REQUESTS: &str = "hubwright_http_requests_total";
/// Histogram: request duration by `method` and `route`.
pub const HTTP_REQUEST_DURATION: &str = "hubwright_http_request_duration_seconds";
/// Counter: requests refused with 429, by `limit` (`caller`, `auth_failures`).
pub const HTTP_RATE_LIMITED: &str = "hubwright_http_rate_limited_total";
/// Gauge: this process's open event streams.
pub const EVENT_STREAMS: &str = "hubwright_api_event_streams";
/// Counter: policy file reloads by `outcome` (`applied`, `failed`).
pub const POLICY_RELOADS: &str = "hubwright_policy_reloads_total";
/// Gauge: 1 while the policy file on disk cannot be applied.
pub const POLICY_RELOAD_FAILING: &str = "hubwright_policy_reload_failing";
/// Counter: template directory reloads by `outcome` (`applied`, `failed`).
pub const TEMPLATE_RELOADS: &str = "hubwright_template_reloads_total";
/// Gauge: 1 while the template files on disk cannot be applied.
pub const TEMPLATE_RELOAD_FAILING: &str = "hubwright_template_reload_failing";
/// Counter: audit entries that could not be written.
pub const AUDIT_WRITE_FAILURES: &str = "hubwright_audit_write_failures_total";
/// Gauge: always 1, labelled with the binary's `version` and `commit`.
pub const BUILD_INFO: &str = "hubwright_build_info";

/// The installed recorder: the exporter's handle, and the exemplars kept
/// beside it.
struct Installed {
    handle: PrometheusHandle,
    exemplars: Arc<exemplars::Table>,
}

static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();

/// Bucket bounds of every histogram, in seconds: from a fast API call to a
/// slow Helm release or a hub that takes an hour to be ready.
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

/// Installs the process-wide recorder once and describes this crate's
/// metrics. `None` when another recorder was installed first (then only the
/// database gauges are exported).
pub fn install() -> Option<&'static PrometheusHandle> {
    installed().map(|installed| &installed.handle)
}

fn installed() -> Option<&'static Installed> {
    INSTALLED
        .get_or_init(|| {
            let inner = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .build_recorder();
            let handle = inner.handle();
            let exemplars = Arc::new(exemplars::Table::new(BUCKETS));
            metrics::set_global_recorder(exemplars::Recorder {
                inner,
                table: Arc::clone(&exemplars),
            })
            .ok()?;
            describe();
            Some(Installed { handle, exemplars })
        })
        .as_ref()
}

/// Gives every metric of this crate its `# HELP` text.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        "Seconds to answer an HTTP request (to its head, for event streams), by method and route template."
    );
    describe_counter!(
        HTTP_RATE_LIMITED,
        "Requests refused with 429, by the limit that refused them (caller, auth_failures)."
    );
    describe_gauge!(EVENT_STREAMS, "Event streams this process holds open.");
    describe_counter!(
        POLICY_RELOADS,
        "Reloads of the policy file, by outcome (applied, failed)."
    );
    describe_gauge!(
        POLICY_RELOAD_FAILING,
        "1 while the policy file on disk cannot be applied (the previous one stays in force)."
    );
    describe_counter!(
        TEMPLATE_RELOADS,
        "Reloads of the template directory, by outcome (applied, failed)."
    );
    describe_gauge!(
        TEMPLATE_RELOAD_FAILING,
        "1 while the template files on disk cannot be applied (the templates in force stay)."
    );
    describe_counter!(
        AUDIT_WRITE_FAILURES,
        "Audit entries that could not be written."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels say which hubwright this process runs (version, commit)."
    );
}

/// Sets [`BUILD_INFO`] for this binary.
pub fn build_info(version: &'static str, commit: &'static str) {
    ::metrics::gauge!(BUILD_INFO, "version" => version, "commit" => commit).set(1.0);
}

/// What a scrape answers in `format`: everything this process recorded,
/// and with `store` the gauges read from the database at `now`.
pub async fn render(
    store: Option<&Store>,
    now: DateTime<Utc>,
    format: Format,
) -> hubwright_state::Result<String> {
    let mut out = String::new();
    let installed = installed();
    if let Some(installed) = installed {
        installed.handle.run_upkeep();
        out.push_str(&installed.handle.render());
    }
    if let Some(store) = store {
        database::write_gauges(&mut out, store, now).await?;
    }
    Ok(match format {
        Format::Prometheus => out,
        Format::OpenMetrics => {
            let exemplars = installed
                .map(|installed| installed.exemplars.snapshot())
                .unwrap_or_default();
            openmetrics::translate(&out, &exemplars)
        }
    })
}
