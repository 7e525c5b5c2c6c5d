//! The two sizes of the chaos suite. The short one runs in `just test` on
//! the shared server (so never restarts it); the long one runs on a server
//! of its own, which it restarts, and is sized by `just chaos` through
//! `HUBWRIGHT_CHAOS_*` variables.

use std::io::Write;
use std::time::Duration;

use hubwright_state::Store;
use hubwright_testkit::TestDatabase;
use hubwright_testkit::postgres::PrivatePostgres;
use serde_json::{Value, json};

use super::ttl_race::TtlPlan;
use super::{Database, Plan, Rng, figures_file, merge, round};

/// The seed: `HUBWRIGHT_CHAOS_SEED`, else the clock's nanoseconds.
fn seed() -> u64 {
    std::env::var("HUBWRIGHT_CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
                    % u128::from(u64::MAX),
            )
            .unwrap()
        })
}

/// `HUBWRIGHT_CHAOS_<name>`, else `default`.
fn setting(name: &str, default: usize) -> usize {
    let variable = format!("HUBWRIGHT_CHAOS_{name}");
    match std::env::var(&variable) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{variable} must be a whole number, not `{text}`")),
        Err(_) => default,
    }
}

/// Prints the figures as one JSON line, and appends it to the figures file
/// when `just chaos` names one.
fn report(figures: &Value) {
    let line = serde_json::to_string(figures).unwrap();
    println!("{line}");
    if let Some(path) = figures_file() {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(file, "{line}").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_killed_paused_and_cut_off_lose_no_run_and_repeat_only_steps_whose_lease_ran_out()
 {
    let db = TestDatabase::create().await;
    let seed = seed();
    let plan = Plan {
        workers: 2,
        runs: 60,
        kills: 3,
        pauses: 1,
        cuts: vec![Duration::from_secs(4)],
        restarts: 0,
        lease: Duration::from_secs(3),
        ttl: None,
    };
    let mut database = Database {
        store: db.store.clone(),
        url: db.url.clone(),
        server: None,
    };
    let mut figures = round(&mut database, &plan, &mut Rng::new(seed)).await;
    merge(&mut figures, json!({ "chaos": "short", "seed": seed }));
    report(&figures);
    assert!(
        figures["rescues"]["worker paused"].as_u64() >= Some(1),
        "the pause outlasted a lease: {figures}"
    );
    database.store.pool().close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; `just chaos` runs it"]
async fn long_rounds_of_kills_pauses_cuts_restarts_and_a_ttl_race_lose_nothing() {
    let seed = seed();
    let rounds = setting("ROUNDS", 3);
    let workers = setting("WORKERS", 3);
    let lease = Duration::from_secs(u64::try_from(setting("LEASE_SECONDS", 3)).unwrap());
    // Cuts alternate shorter and longer than the lease: the first kind must
    // repeat nothing, the second repeats only the steps whose lease ran out.
    let cuts: Vec<Duration> = (0..setting("CUTS", 3))
        .map(|i| match i % 2 {
            0 => lease / 2,
            _ => lease * 2,
        })
        .collect();
    let server = match PrivatePostgres::start().await {
        Ok(server) => Some(server),
        Err(why) => {
            eprintln!("no PostgreSQL server of the test's own ({why}): no restarts");
            None
        }
    };
    let restarts = if server.is_some() {
        setting("RESTARTS", 1)
    } else {
        0
    };
    let plan = Plan {
        workers,
        runs: setting("RUNS", 500),
        kills: setting("KILLS", 36),
        pauses: setting("PAUSES", 1),
        cuts,
        restarts,
        lease,
        ttl: Some(TtlPlan {
            environments: setting("TTL_ENVIRONMENTS", 300),
            schedulers: 3,
            kills: setting("SCHEDULER_KILLS", 14),
            spread: Duration::from_secs(6),
        }),
    };
    let mut rng = Rng::new(seed);
    let mut per_round = Vec::new();
    for number in 0..rounds {
        let (mut database, shared) = match &server {
            Some(server) => {
                let name = format!("chaos_round_{number}");
                let admin = Store::connect(&server.url("postgres"), 2).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(admin.pool())
                    .await
                    .unwrap();
                admin.pool().close().await;
                let url = server.url(&name);
                let store = Store::connect(&url, 10).await.unwrap();
                store.migrate().await.unwrap();
                (
                    Database {
                        store,
                        url,
                        server: Some(server),
                    },
                    None,
                )
            }
            None => {
                let db = TestDatabase::create().await;
                let database = Database {
                    store: db.store.clone(),
                    url: db.url.clone(),
                    server: None,
                };
                (database, Some(db))
            }
        };
        let figures = round(&mut database, &plan, &mut rng).await;
        eprintln!("round {number}: {figures}");
        if plan.pauses > 0 {
            assert!(
                figures["rescues"]["worker paused"].as_u64() >= Some(1),
                "a pause outlasted a lease: {figures}"
            );
        }
        per_round.push(figures);
        database.store.pool().close().await;
        if let Some(db) = shared {
            db.drop_now().await;
        }
    }
    report(&totals(seed, &per_round));
}

/// The rounds' figures added up, with each round's beside them.
fn totals(seed: u64, rounds: &[Value]) -> Value {
    let sum = |path: &[&str]| -> u64 {
        rounds
            .iter()
            .map(|round| {
                path.iter()
                    .fold(round, |value, key| &value[*key])
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum()
    };
    let causes = [
        "worker killed",
        "worker paused",
        "connection cut",
        "postgres restart",
    ];
    let by_cause = |what: &str| -> Value {
        causes
            .iter()
            .map(|cause| ((*cause).to_owned(), json!(sum(&[what, cause]))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    // Database disruptions by cause and by whether they outlasted the lease.
    let lease = rounds
        .first()
        .and_then(|r| r["lease_seconds"].as_f64())
        .unwrap_or(0.0);
    let mut database: std::collections::BTreeMap<(String, bool), [f64; 4]> = Default::default();
    for disruption in rounds
        .iter()
        .filter_map(|r| r["database_disruptions"].as_array())
        .flatten()
    {
        let seconds = disruption["seconds"].as_f64().unwrap_or(0.0);
        let key = (
            disruption["cause"].as_str().unwrap_or("").to_owned(),
            seconds > lease,
        );
        let entry = database.entry(key).or_default();
        entry[0] += 1.0;
        entry[1] = entry[1].max(seconds);
        entry[2] += disruption["rescues"].as_f64().unwrap_or(0.0);
        entry[3] += disruption["re_executions"].as_f64().unwrap_or(0.0);
    }
    let database: Vec<Value> = database
        .into_iter()
        .map(|((cause, longer), [count, longest, rescues, repeated])| {
            json!({
                "cause": cause,
                "longer_than_lease": longer,
                "count": count as u64,
                "longest_seconds": longest,
                "rescues": rescues as u64,
                "re_executions": repeated as u64,
            })
        })
        .collect();
    json!({
        "chaos": "long",
        "seed": seed,
        "rounds": rounds.len(),
        "workers": rounds.first().map(|r| r["workers"].clone()),
        "lease_seconds": rounds.first().map(|r| r["lease_seconds"].clone()),
        "runs": sum(&["runs"]),
        "runs_succeeded": sum(&["runs_succeeded"]),
        "steps_committed": sum(&["steps_committed"]),
        "step_executions": sum(&["step_executions"]),
        "worker_kills": sum(&["worker_kills"]),
        "worker_pauses": sum(&["worker_pauses"]),
        "connection_cuts": sum(&["connection_cuts"]),
        "postgres_restarts": sum(&["postgres_restarts"]),
        "rescues": by_cause("rescues"),
        "re_executions": by_cause("re_executions"),
        "violations": sum(&["violations"]),
        "database_disruptions": database,
        "ttl_environments": sum(&["ttl", "environments"]),
        "scheduler_kills": sum(&["ttl", "scheduler_kills"]),
        "duplicate_teardowns": sum(&["ttl", "duplicate_teardowns"]),
        "seconds": rounds.iter().filter_map(|r| r["seconds"].as_f64()).sum::<f64>().round(),
        "per_round": rounds,
    })
}
