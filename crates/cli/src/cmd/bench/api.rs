//! `hubwright bench api`: the user's own path. One `serve --api` child (rate
//! limit off, no worker, so every provisioning run stays pending and only the
//! API and the database are measured); sixteen developer tokens; for each
//! client count, `requests` environment creations from the no-op `bench`
//! template spread over the clients, each with its own `Idempotency-Key` and
//! every tenth re-sent with the same key, then each client lists its
//! environments and reads back every one it created. Then the exactly-once
//! audit: each key stands for exactly one environment with one provisioning
//! run, and a re-sent key was answered with the environment it created first.
//!
//! The clients run in this process on the same machine, so they take CPU the
//! server could otherwise use; figures are a floor.

use std::time::Instant;

use anyhow::{Context, bail};
use hubwright_state::model::Role;
use hubwright_state::{Clock, SystemClock};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::fixture::prepare;
use super::process::Child;
use super::streams::summary;
use super::workloads::round;

/// Developer tokens the clients share (client `j` uses token `j % 16`).
const DEVELOPERS: usize = 16;
/// Every this many creations one is re-sent with the same key.
const RESEND_EVERY: usize = 10;
/// Lists per created environments (a client lists at least once).
const LIST_EVERY: usize = 10;

/// What one client measured in one round.
#[derive(Default)]
struct ClientFigures {
    create_ms: Vec<f64>,
    resend_ms: Vec<f64>,
    list_ms: Vec<f64>,
    read_ms: Vec<f64>,
    /// Re-sent keys answered with another environment (or not at all).
    mismatches: Vec<String>,
}

/// Runs the workload: `requests` creations at each of `clients` concurrencies.
pub(super) async fn api(url: &str, clients: &[usize], requests: usize) -> anyhow::Result<Value> {
    if clients.is_empty() || clients.contains(&0) {
        bail!("--clients: give one or more client counts, each at least 1");
    }
    if requests == 0 {
        bail!("--requests: must be at least 1");
    }
    let (store, _, _) = prepare(url, 1).await?;
    let now = SystemClock.now();
    let mut tokens = Vec::with_capacity(DEVELOPERS);
    for i in 0..DEVELOPERS {
        let issued = store
            .create_token(&format!("dev-{i}"), Role::Developer, now)
            .await?;
        tokens.push(issued.secret);
    }
    let api = Child::serve(
        url,
        &["--api", "--listen", "127.0.0.1:0", "--rate-limit", "0"],
        "api listening",
    )
    .await?;
    let base = api.api_url()?;
    let client = hubwright_http::client();

    let mut rounds = Map::new();
    let mut mismatches = Vec::new();
    for (index, &count) in clients.iter().enumerate() {
        let cpu_before = api.cpu_seconds();
        let setup = Round {
            client: &client,
            base: &base,
            tokens: &tokens,
            index,
            clients: count,
            requests,
        };
        let (mut figures, create_s) = setup.run().await?;
        let cpu = api
            .cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| round(after - before));
        mismatches.append(&mut figures.mismatches);
        let resent = figures.resend_ms.len();
        rounds.insert(
            format!("clients_{count}"),
            json!({
                "clients": count,
                "creations": requests,
                "resent": resent,
                "creations_per_s": round(requests as f64 / create_s),
                "create_requests_per_s": round((requests + resent) as f64 / create_s),
                "create_latency_ms": sorted_summary(figures.create_ms),
                "resend_latency_ms": sorted_summary(figures.resend_ms),
                "list_latency_ms": sorted_summary(figures.list_ms),
                "read_latency_ms": sorted_summary(figures.read_ms),
                "api_cpu_s": cpu,
                "api_peak_rss_mib": api.peak_rss_mib().map(round),
                "api_peak_anon_mib": api.peak_anon_mib().map(round),
            }),
        );
    }
    let api_cpu = api.cpu_seconds().map(round);
    let api_rss = api.peak_rss_mib().map(round);
    let api_anon = api.peak_anon_mib().map(round);
    api.stop().await?;

    let audit = store.audit_idempotent_creations().await?;
    let expected = i64::try_from(requests * clients.len())?;
    let ok = audit.violations.is_empty()
        && mismatches.is_empty()
        && audit.keys == expected
        && audit.environments == expected;
    let mut figures = json!({
        "workload": "api",
        "developers": DEVELOPERS,
        "requests_per_round": requests,
        "api_cpu_s": api_cpu,
        "api_peak_rss_mib": api_rss,
        "api_peak_anon_mib": api_anon,
        "idempotency_keys": audit.keys,
        "environments": audit.environments,
        "environments_expected": expected,
        "violations": audit.violations.iter().chain(&mismatches).take(5).collect::<Vec<_>>(),
        "exactly_once": ok,
    });
    if let Some(object) = figures.as_object_mut() {
        object.extend(rounds);
    }
    Ok(figures)
}

fn sorted_summary(mut latencies: Vec<f64>) -> Value {
    latencies.sort_by(f64::total_cmp);
    summary(&latencies)
}

/// One client count's round.
struct Round<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    tokens: &'a [String],
    /// Which round: keys and names are unique across rounds.
    index: usize,
    clients: usize,
    requests: usize,
}

impl Round<'_> {
    /// Creates (timed as a whole: the seconds are returned), then lists and
    /// reads; the clients' figures merged.
    async fn run(&self) -> anyhow::Result<(ClientFigures, f64)> {
        let mut creating = JoinSet::new();
        let started = Instant::now();
        for j in 0..self.clients {
            let (client, base) = (self.client.clone(), self.base.to_owned());
            let token = self.tokens[j % self.tokens.len()].clone();
            let mine: Vec<usize> = (j..self.requests).step_by(self.clients).collect();
            let index = self.index;
            creating
                .spawn(async move { (j, create_all(&client, &base, &token, index, &mine).await) });
        }
        let mut created = Vec::with_capacity(self.clients);
        while let Some(done) = creating.join_next().await {
            let (j, figures) = done.context("a client panicked")?;
            created.push((j, figures?));
        }
        // Each client reads back with the token it created with.
        created.sort_by_key(|(j, _)| *j);
        let create_s = started.elapsed().as_secs_f64().max(1e-6);

        let lists = (self.requests / LIST_EVERY / self.clients).max(1);
        let mut reading = JoinSet::new();
        for (j, (figures, ids)) in created {
            let (client, base) = (self.client.clone(), self.base.to_owned());
            let token = self.tokens[j % self.tokens.len()].clone();
            reading.spawn(async move {
                list_and_read(&client, &base, &token, lists, &ids, figures).await
            });
        }
        let mut merged = ClientFigures::default();
        while let Some(done) = reading.join_next().await {
            let mut one = done.context("a client panicked")??;
            merged.create_ms.append(&mut one.create_ms);
            merged.resend_ms.append(&mut one.resend_ms);
            merged.list_ms.append(&mut one.list_ms);
            merged.read_ms.append(&mut one.read_ms);
            merged.mismatches.append(&mut one.mismatches);
        }
        Ok((merged, create_s))
    }
}

/// One client's creations (`indices` of the round); its figures and the ids
/// of the environments it created.
async fn create_all(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    round_index: usize,
    indices: &[usize],
) -> anyhow::Result<(ClientFigures, Vec<String>)> {
    let mut figures = ClientFigures::default();
    let mut ids = Vec::with_capacity(indices.len());
    for &i in indices {
        let key = format!("bench-r{round_index}-{i}");
        let body = json!({ "name": format!("b{round_index}-{i}"), "template": "bench" });
        let send = || {
            client
                .post(format!("{base}/v1/environments"))
                .bearer_auth(token)
                .header("idempotency-key", &key)
                .json(&body)
        };
        let (ms, answer) = timed(send(), StatusCode::ACCEPTED).await?;
        figures.create_ms.push(ms);
        let id = environment_id(&answer).context("a creation's answer has no environment id")?;
        if i % RESEND_EVERY == 0 {
            let (ms, again) = timed(send(), StatusCode::ACCEPTED).await?;
            figures.resend_ms.push(ms);
            if environment_id(&again).as_deref() != Some(id.as_str()) {
                figures
                    .mismatches
                    .push(format!("key {key}: re-sent, answered {again}"));
            }
        }
        ids.push(id);
    }
    Ok((figures, ids))
}

/// `lists` lists of the client's environments, then a read of each of `ids`.
async fn list_and_read(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    lists: usize,
    ids: &[String],
    mut figures: ClientFigures,
) -> anyhow::Result<ClientFigures> {
    for _ in 0..lists {
        let request = client
            .get(format!("{base}/v1/environments"))
            .bearer_auth(token);
        figures
            .list_ms
            .push(timed(request, StatusCode::OK).await?.0);
    }
    for id in ids {
        let request = client
            .get(format!("{base}/v1/environments/{id}"))
            .bearer_auth(token);
        figures
            .read_ms
            .push(timed(request, StatusCode::OK).await?.0);
    }
    Ok(figures)
}

/// Sends `request` and reads the whole answer; milliseconds taken and the
/// answer, or an error when its status is not `expected`.
async fn timed(
    request: reqwest::RequestBuilder,
    expected: StatusCode,
) -> anyhow::Result<(f64, Value)> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status != expected {
        bail!(
            "the API answered {status} (expected {expected}): {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let answer = serde_json::from_slice(&bytes).context("the API's answer is not JSON")?;
    Ok((ms, answer))
}

fn environment_id(answer: &Value) -> Option<String> {
    answer["environment"]["id"].as_str().map(str::to_owned)
}
