//! `/metrics` in OpenMetrics 1.0 for a scraper that asks for it (as
//! Prometheus does): everything one `serve` with all roles exports reads
//! under the specification's rules, holds the same families, types, HELP
//! texts and series as the Prometheus text, and carries no exemplars
//! without traces.

use std::collections::BTreeSet;

use hubwright_state::model::Role;
use hubwright_testkit::openmetrics;
use hubwright_testkit::server::token;

use super::{Served, setup};
use crate::tracing::exemplars::{PROMETHEUS_ACCEPT, scrape};

/// Each family of Prometheus text `text`: its name as OpenMetrics names it
/// (a counter's without `_total`), type and HELP.
fn families(text: &str) -> BTreeSet<(String, String, String)> {
    let help = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("# HELP {name} ")))
            .unwrap_or_default()
            .to_owned()
    };
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| {
            let family = match kind {
                "counter" => name.strip_suffix("_total").unwrap_or(name),
                _ => name,
            };
            (family.to_owned(), kind.to_owned(), help(name))
        })
        .collect()
}

/// A sample's series: its name and labels, `le` left out (its value is
/// written differently in the two formats).
fn series_of(sample: &openmetrics::Sample) -> String {
    std::iter::once(sample.name.clone())
        .chain(
            sample
                .labels
                .iter()
                .filter(|(name, _)| name != "le")
                .map(|(name, value)| format!("{name}={value:?}")),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every series of Prometheus text `text`.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| openmetrics::sample(line).unwrap_or_else(|why| panic!("{why}: {line}")))
        .map(|sample| series_of(&sample))
        .collect()
}

#[tokio::test]
async fn an_openmetrics_scrape_reads_strictly_says_what_prometheus_text_says_and_has_no_exemplars_without_traces()
 {
    let (db, dir) = setup().await;
    let served = Served::start(&db.url, &dir, &[]).await;
    served.ready().await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let operator = token(&db.store, "olga", Role::Operator).await;
    super::one_success_and_one_failure(&served, &db, &alice).await;
    let client = hubwright_http::client();

    let url = format!("{}/metrics", served.metrics);
    let (content_type, plain) = scrape(&url, None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4");
    let (content_type, text) = scrape(&url, Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let exposition = openmetrics::parse(&text).unwrap_or_else(|why| panic!("{why}\n{text}"));

    let read: BTreeSet<(String, String, String)> = exposition
        .families
        .iter()
        .map(|family| {
            (
                family.name.clone(),
                family.kind.clone(),
                family.help.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(read.len() > 10, "{text}");
    assert_eq!(read, families(&plain));
    let read_series: BTreeSet<String> = exposition
        .families
        .iter()
        .flat_map(|family| &family.samples)
        .map(series_of)
        .collect();
    assert_eq!(read_series, series(&plain));
    let durations = exposition
        .family("hubwright_step_duration_seconds")
        .expect("step durations");
    assert!(
        durations
            .samples
            .iter()
            .any(|sample| sample.label("le") == Some("1.0")),
        "le values are canonical floats: {durations:?}"
    );
    assert_eq!(
        exposition.exemplars().count(),
        0,
        "no traces, no exemplars:\n{text}"
    );

    // The API's own /metrics negotiates the same way, for operators.
    let reply = client
        .get(format!("{}/metrics", served.api))
        .bearer_auth(&operator)
        .header("accept", PROMETHEUS_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(
        reply.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = reply.text().await.unwrap();
    let exposition = openmetrics::parse(&text).unwrap_or_else(|why| panic!("{why}\n{text}"));
    assert!(exposition.family("hubwright_runs").is_some(), "{text}");
    drop(served);
    db.drop_now().await;
}
