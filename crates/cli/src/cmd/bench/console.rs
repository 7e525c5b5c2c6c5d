//! `hubwright bench console`: how long the console's lists take to render on
//! the server at the size of a busy installation. The database gets 10,000
//! environments and 50,000 runs (each with its steps); the API with the
//! console in front of it runs in this process; an operator's session (a
//! real one, opened as the token sign-in opens it) asks for each page
//! `requests` times, one after another. Each latency is the router call until
//! the whole page is read (`tower::ServiceExt::oneshot`, no socket): the
//! server's own time, every API call and database query of the page included.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use hubwright_api::ratelimit::RateLimits;
use hubwright_api::{AppState, StreamLimits, Streams};
use hubwright_console::ConsoleConfig;
use hubwright_state::clusters::Clusters;
use hubwright_state::model::Role;
use hubwright_state::policy::PolicyHolder;
use hubwright_state::store::console::{NewSession, SessionAuth};
use hubwright_state::store::list_fixture::ListFixture;
use hubwright_state::workflow::{Catalog, CatalogHolder};
use hubwright_state::{Clock, Store, SystemClock};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use super::fixture::prepare;
use super::workloads::{percentile, round};

/// The pages timed unless `--path` says otherwise: the operator's first
/// page of each list, and a filtered one. `/runs` is skipped (with a
/// warning) by a console that does not have it.
pub(super) const DEFAULT_PATHS: &[&str] = &[
    "/environments",
    "/environments?phase=ready&owner=user-7",
    "/runs",
    "/runs?state=failed&owner=user-20",
];

/// Requests per page before timing: first-use costs (template and query
/// preparation on each pooled connection) are not the page's.
const WARM_UP: usize = 20;

/// Pages answers are read up to; the lists are far smaller.
const MAX_PAGE: usize = 16 * 1024 * 1024;

/// The sizes of the workload.
#[derive(Debug, Clone)]
pub(super) struct Sizes {
    pub environments: usize,
    pub runs: usize,
    pub requests: usize,
}

/// Runs the workload over `paths`.
pub(super) async fn console(url: &str, sizes: Sizes, paths: &[String]) -> anyhow::Result<Value> {
    let (store, _, definition_id) = prepare(url, 3).await?;
    let now = SystemClock.now();
    let seeding = Instant::now();
    store
        .insert_list_fixture(
            ListFixture {
                definition_id,
                environments: i64::try_from(sizes.environments)?,
                runs: i64::try_from(sizes.runs)?,
                owners: 100,
            },
            now,
        )
        .await?;
    let seed_s = seeding.elapsed().as_secs_f64();
    let cookie = operator_session(&store).await?;
    let app = console_app(store.clone());

    let mut latencies = Map::new();
    let mut skipped = Vec::new();
    for path in paths {
        let (status, html) = get(&app, path, &cookie).await?;
        if status == StatusCode::NOT_FOUND {
            tracing::warn!(path, "bench console: the console has no such page; skipped");
            skipped.push(path.clone());
            continue;
        }
        if status != StatusCode::OK {
            bail!(
                "{path} answered {status}: {}",
                html.chars().take(500).collect::<String>()
            );
        }
        // Rows in the table (its head row not counted): a page that shows
        // nothing is not measuring a list.
        let rows = html.matches("<tr").count().saturating_sub(1);
        for _ in 0..WARM_UP {
            get(&app, path, &cookie).await?;
        }
        let mut times = Vec::with_capacity(sizes.requests);
        for _ in 0..sizes.requests {
            let started = Instant::now();
            let (status, _) = get(&app, path, &cookie).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if status != StatusCode::OK {
                bail!("{path} answered {status} while timed");
            }
        }
        times.sort_by(f64::total_cmp);
        latencies.insert(
            path.clone(),
            json!({
                "requests": times.len(),
                "rows": rows,
                "page_kib": round(html.len() as f64 / 1024.0),
                "p50": round(percentile(&times, 0.50)),
                "p95": round(percentile(&times, 0.95)),
                "p99": round(percentile(&times, 0.99)),
                "max": round(percentile(&times, 1.0)),
            }),
        );
    }
    Ok(json!({
        "workload": "console",
        "environments": sizes.environments,
        "runs": store.count_runs_by_state().await?.iter().map(|(_, n)| n).sum::<i64>(),
        "seed_s": round(seed_s),
        "latency_ms": latencies,
        "skipped": skipped,
        "ok": !latencies.is_empty(),
    }))
}

/// A console session for an operator, opened as the token sign-in opens
/// one; its cookie.
async fn operator_session(store: &Store) -> anyhow::Result<String> {
    let now = SystemClock.now();
    let token = store.create_token("olga", Role::Operator, now).await?;
    let (id, principal) = store
        .token_for_sign_in(&token.secret, now)
        .await?
        .context("the operator's token was not found right after it was made")?;
    let session = NewSession {
        principal,
        auth: SessionAuth::Token(id),
        expires_at: now + chrono::TimeDelta::hours(1),
    };
    let secret = store.open_console_session(&session, now).await?;
    Ok(format!("hubwright_session={secret}"))
}

/// The API's router with the console in front, as `serve --api` builds it
/// (no request budget: the bench is one user asking as fast as it can).
fn console_app(store: Store) -> Router {
    let state = AppState {
        streams: Streams::new(store.clone(), None, StreamLimits::default()),
        store,
        clock: Arc::new(SystemClock),
        catalog: Arc::new(CatalogHolder::fixed(Catalog::default())),
        clusters: Arc::new(Clusters::default()),
        oidc: None,
        limits: Arc::new(RateLimits::default()),
        policy: Arc::new(PolicyHolder::empty()),
    };
    let api = hubwright_api::router_with(state.clone());
    hubwright_console::router(state, api, ConsoleConfig::default())
}

/// `GET path` as a browser would ask for it with `cookie`; the status and page.
async fn get(app: &Router, path: &str, cookie: &str) -> anyhow::Result<(StatusCode, String)> {
    let mut request = Request::get(path)
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "text/html")
        .body(Body::empty())
        .with_context(|| format!("{path} is not a request path"))?;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_PAGE).await?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
