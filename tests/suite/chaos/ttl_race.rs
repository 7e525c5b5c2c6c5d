//! Schedulers racing over a mass expiry while being SIGKILLed: environments
//! provisioned by the round's workers expire over a few seconds, several
//! `serve --scheduler` processes start their teardowns, and one of them is
//! killed (and replaced) every few hundred milliseconds meanwhile. Every
//! environment gets exactly one teardown, and it succeeds.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use hubwright_state::Store;
use hubwright_state::store::enqueue::new_id;
use hubwright_state::store::environments::NewEnvironment;
use hubwright_state::workflow::Catalog;
use hubwright_testkit::process::Process;
use serde_json::{Value, json};

use super::fleet::Fleet;
use super::{Rng, WITHIN, all_succeeded};
use crate::BIN;

/// What the race does.
#[derive(Debug, Clone)]
pub struct TtlPlan {
    /// Environments that expire.
    pub environments: usize,
    /// Scheduler processes at any time.
    pub schedulers: usize,
    /// Scheduler processes SIGKILLed (each replaced at once) while the
    /// teardowns are being started.
    pub kills: usize,
    /// The expiries are spread over this long.
    pub spread: Duration,
}

/// What the race needs from its round.
pub struct Context<'a> {
    /// The test's store (past the proxy).
    pub store: &'a Store,
    /// The database URL the schedulers use.
    pub url: &'a str,
    /// The registered templates.
    pub catalog: &'a Catalog,
    /// Their directory.
    pub workflows: &'a Path,
    /// Where the schedulers' logs go.
    pub dir: &'a Path,
    /// Runs that have succeeded before the race starts.
    pub settled: usize,
}

/// Provisioning and teardown each record one effect.
pub fn template(effects: &Path) -> String {
    format!(
        r#"
name: chaos-ttl
workflows:
  provision:
    steps:
      - {{ name: up, kind: test-record, with: {{ path: "{log}" }} }}
  teardown:
    steps:
      - {{ name: down, kind: test-record, with: {{ path: "{log}" }} }}
"#,
        log = effects.display()
    )
}

fn scheduler(context: &Context<'_>, id: usize) -> Process {
    let workflows = context.workflows.display().to_string();
    Process::start(
        Path::new(BIN),
        context.url,
        &[
            "serve",
            "--scheduler",
            "--workflows",
            &workflows,
            "--expiry-sweep-interval",
            "300ms",
            "--expiry-warnings",
            "",
        ],
        &context.dir.join(format!("scheduler-{id}.log")),
    )
}

/// Runs the race; returns its figures. The round's workers (`fleet`) run
/// the provisioning and the teardowns.
pub async fn race(context: &Context<'_>, plan: &TtlPlan, rng: &mut Rng, fleet: &Fleet) -> Value {
    let store = context.store;
    let provision = context
        .catalog
        .definition("chaos-ttl", "provision")
        .unwrap();
    let now = Utc::now();
    for _ in 0..plan.environments {
        let id = new_id();
        let name = format!("t{}", &id.simple().to_string()[20..]);
        let environment = NewEnvironment {
            id,
            name: &name,
            owner: "chaos",
            template: "chaos-ttl",
            cluster: "default",
            namespace: &name,
            parameters: json!({}),
            expires_at: now + chrono::Duration::hours(1),
            traceparent: None,
        };
        store
            .request_environment(&environment, provision, None, now)
            .await
            .unwrap();
    }
    let provisioned = context.settled + plan.environments;
    all_succeeded(store, provisioned, fleet).await;

    let mut schedulers: Vec<Process> = (0..plan.schedulers)
        .map(|i| scheduler(context, i))
        .collect();
    for process in &schedulers {
        process.wait_for_log("scheduler started", WITHIN).await;
    }
    // They expire one after another over the spread, starting in a second:
    // the schedulers wake again and again, and the kills land among them.
    let spread = plan.spread.as_secs_f64() / plan.environments.max(1) as f64;
    sqlx::query(
        "UPDATE environments e SET expires_at = $1 + make_interval(secs => $2 * n.i) \
         FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM environments) n \
         WHERE e.id = n.id",
    )
    .bind(Utc::now() + chrono::Duration::seconds(1))
    .bind(spread)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('hubwright_expiry', '')")
        .execute(store.pool())
        .await
        .unwrap();

    let mut kills = 0;
    let mut started = schedulers.len();
    let deadline = Instant::now() + WITHIN;
    while teardowns_started(store).await < plan.environments {
        assert!(
            Instant::now() < deadline,
            "{} of {} teardowns started",
            teardowns_started(store).await,
            plan.environments
        );
        if kills < plan.kills {
            // Random pacing of the faults themselves, not a wait for anything.
            let pause = 50 + u64::try_from(rng.below(350)).unwrap();
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let slot = rng.below(schedulers.len());
            let replacement = scheduler(context, started);
            started += 1;
            std::mem::replace(&mut schedulers[slot], replacement)
                .kill9()
                .await;
            kills += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    all_succeeded(store, provisioned + plan.environments, fleet).await;
    drop(schedulers);

    let counts = store.teardown_run_counts().await.unwrap();
    let duplicated = counts.iter().filter(|(_, n)| *n > 1).count();
    let missing = counts.iter().filter(|(_, n)| *n == 0).count();
    assert_eq!(
        (duplicated, missing),
        (0, 0),
        "environments with more than one teardown, and with none"
    );
    let expired: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE kind = 'environment_expired'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(usize::try_from(expired).unwrap(), plan.environments);
    json!({
        "environments": plan.environments,
        "schedulers": plan.schedulers,
        "scheduler_kills": kills,
        "teardowns": plan.environments,
        "duplicate_teardowns": duplicated,
    })
}

/// Environments whose teardown run exists.
async fn teardowns_started(store: &Store) -> usize {
    store
        .teardown_run_counts()
        .await
        .map(|counts| counts.iter().filter(|(_, n)| *n > 0).count())
        .unwrap_or(0)
}
