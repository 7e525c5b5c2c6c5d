//! Pools through the store and the scheduler, where the test needs to hold
//! the pool still (no scheduler refilling behind its back) or move time.

use std::sync::Arc;
use std::time::Duration;

use hubwright_state::model::EnvironmentPhase;
use hubwright_state::pools::PoolPlan;
use hubwright_state::store::enqueue::new_id;
use hubwright_state::store::environments::NewEnvironment;
use hubwright_state::workflow::{Catalog, CatalogHolder};
use hubwright_state::{Clock, ManualClock, Store, SystemClock};
use hubwright_testkit::harness::{catalog, fast_config, registry, spawn_worker};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use hubwright_worker::{Scheduler, SchedulerConfig, Worker};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{WARM, WITHIN};

async fn catalog_of(db: &TestDatabase, yaml: &str) -> Catalog {
    let dir = scratch_dir("pools");
    write_workflow(&dir, "warm", yaml);
    catalog(&db.store, &dir).await
}

/// Ids of the pool's unclaimed members in `phases`.
async fn members(store: &Store, phases: &[&str]) -> Vec<Uuid> {
    let phases: Vec<String> = phases.iter().map(|p| (*p).to_owned()).collect();
    sqlx::query_scalar::<_, Uuid>(
        "SELECT id FROM environments WHERE pool = 'warm' AND claimed_at IS NULL
         AND phase::text = ANY($1) ORDER BY id",
    )
    .bind(&phases)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn until_members(store: &Store, phases: &[&str], count: usize) -> Vec<Uuid> {
    wait::until_some(
        &format!("{count} pool members {phases:?}"),
        WITHIN,
        || async {
            let found = members(store, phases).await;
            (found.len() == count).then_some(found)
        },
    )
    .await
}

async fn phase(store: &Store, id: Uuid) -> EnvironmentPhase {
    store.environment(id).await.unwrap().phase
}

/// `owner`'s request for a `warm` environment named `name`, taking a member
/// when one is ready.
async fn claim(store: &Store, plan: &PoolPlan, catalog: &Catalog, owner: &str, name: &str) -> Uuid {
    let loaded = catalog.template("warm").unwrap();
    let parameters = loaded.template.resolve_parameters(&Map::new()).unwrap();
    let pool = plan.request(&parameters).unwrap();
    let id = new_id();
    let namespace = loaded.template.namespace_for(name, id);
    let now = SystemClock.now();
    let accepted = store
        .request_environment_pooled(
            &NewEnvironment {
                id,
                name,
                owner,
                template: "warm",
                cluster: "default",
                namespace: &namespace,
                parameters: Value::Object(parameters),
                expires_at: now + chrono::Duration::hours(1),
                traceparent: None,
            },
            catalog.definition("warm", "provision").unwrap(),
            pool,
            None,
            None,
            now,
        )
        .await
        .unwrap();
    accepted.environment["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn event_count(store: &Store, id: Uuid, kind: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM events WHERE environment_id = $1 AND kind = $2",
    )
    .bind(id)
    .bind(kind)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn two_requests_for_the_last_member_get_it_once_and_a_cold_environment() {
    let db = TestDatabase::create().await;
    let single = WARM.replace("size: 2", "size: 1");
    let catalog = catalog_of(&db, &single).await;
    let plan = PoolPlan::of(&catalog, "warm", "default").unwrap();
    let fill = plan.fill(&db.store, SystemClock.now()).await.unwrap();
    assert_eq!(fill.started.len(), 1);
    let worker = spawn_worker(&db.store, fast_config("w"));
    let member = until_members(&db.store, &["ready"], 1).await[0];

    let (a, b) = tokio::join!(
        claim(&db.store, &plan, &catalog, "alice", "lab"),
        claim(&db.store, &plan, &catalog, "bob", "lab"),
    );
    let (hit, cold) = if a == member { (a, b) } else { (b, a) };
    assert_eq!(hit, member, "one of them took the member: {a} {b}");
    assert_ne!(cold, member);
    assert_eq!(event_count(&db.store, hit, "pool_claimed").await, 1);
    assert_eq!(event_count(&db.store, cold, "pool_miss").await, 1);
    assert_eq!(event_count(&db.store, cold, "pool_claimed").await, 0);
    let stats = plan.stats(&db.store, SystemClock.now()).await.unwrap();
    assert_eq!((stats.claims, stats.misses, stats.ready), (1, 1, 0));
    for id in [hit, cold] {
        wait::until("both ready", WITHIN, || async {
            phase(&db.store, id).await == EnvironmentPhase::Ready
        })
        .await;
    }
    worker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_template_change_recycles_the_members_built_from_the_old_one() {
    let db = TestDatabase::create().await;
    let old = catalog_of(&db, WARM).await;
    let old_plan = PoolPlan::of(&old, "warm", "default").unwrap();
    old_plan.fill(&db.store, SystemClock.now()).await.unwrap();
    let worker = spawn_worker(&db.store, fast_config("w"));
    let before = until_members(&db.store, &["ready"], 2).await;

    let changed = WARM.replace(
        "max_idle: 10m",
        "max_idle: 10m, parameters: { profile: large }",
    );
    let new = catalog_of(&db, &changed).await;
    let new_plan = PoolPlan::of(&new, "warm", "default").unwrap();
    let fill = new_plan.fill(&db.store, SystemClock.now()).await.unwrap();
    let mut recycled = fill.recycled.clone();
    recycled.sort();
    assert_eq!(recycled, before, "both old members are recycled");
    assert_eq!(fill.started.len(), 2, "and replaced");
    for id in &before {
        assert_eq!(event_count(&db.store, *id, "pool_recycled").await, 1);
        wait::until("the old member deleted", WITHIN, || async {
            phase(&db.store, *id).await == EnvironmentPhase::Deleted
        })
        .await;
    }
    let after = until_members(&db.store, &["ready"], 2).await;
    for id in after {
        let env = db.store.environment(id).await.unwrap();
        assert_eq!(env.parameters["profile"], json!("large"));
    }
    // A second fill finds nothing to do.
    let again = new_plan.fill(&db.store, SystemClock.now()).await.unwrap();
    assert_eq!(again, Default::default());
    worker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_member_idle_past_max_idle_is_torn_down_and_replaced() {
    let db = TestDatabase::create().await;
    let catalog = catalog_of(&db, WARM).await;
    let clock = ManualClock::new(SystemClock.now());
    let config = SchedulerConfig {
        sweep_interval: Duration::from_secs(3600),
        warnings: vec![],
    };
    let scheduler = Scheduler::new(
        db.store.clone(),
        Arc::new(CatalogHolder::fixed(catalog.clone())),
        config,
        Arc::new(clock.clone()),
    )
    .unwrap();
    // On the scheduler's clock: the teardowns it starts are due at its now.
    let worker = Worker::new(
        db.store.clone(),
        registry(),
        fast_config("w"),
        Arc::new(clock.clone()),
    )
    .unwrap()
    .spawn();
    scheduler.pass(true).await.unwrap();
    let first = until_members(&db.store, &["ready"], 2).await;

    clock.advance(chrono::Duration::minutes(9));
    scheduler.pass(true).await.unwrap();
    assert_eq!(
        members(&db.store, &["ready"]).await,
        first,
        "not idle long enough"
    );

    clock.advance(chrono::Duration::minutes(2));
    assert_eq!(scheduler.pass(true).await.unwrap(), 2, "both expired");
    for id in &first {
        wait::until("the idle member deleted", WITHIN, || async {
            phase(&db.store, *id).await == EnvironmentPhase::Deleted
        })
        .await;
    }
    let second = until_members(&db.store, &["ready"], 2).await;
    assert!(second.iter().all(|id| !first.contains(id)), "{second:?}");
    worker.shutdown().await.unwrap();
}
