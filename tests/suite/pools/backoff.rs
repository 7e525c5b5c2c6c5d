//! A pool whose members keep failing waits before the next one, twice as
//! long after each failure, and fills as usual again once a member is ready.

use hubwright_state::pools::PoolPlan;
use hubwright_state::store::pool_fill::POOL_BACKOFF_FIRST;
use hubwright_state::{Clock, Store, SystemClock};
use hubwright_testkit::harness::{catalog, fast_config, spawn_worker};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use uuid::Uuid;

use super::WITHIN;

/// The pool's unclaimed members in `phase`.
async fn members_in(store: &Store, phase: &str) -> Vec<Uuid> {
    sqlx::query_scalar::<_, Uuid>(
        "SELECT id FROM environments WHERE pool = 'flaky' AND phase::text = $1 ORDER BY id",
    )
    .bind(phase)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn until_one_member(store: &Store, phase: &str, id: Uuid) {
    wait::until(&format!("member {id} {phase}"), WITHIN, || async {
        members_in(store, phase).await.contains(&id)
    })
    .await;
}

#[tokio::test]
async fn a_pool_whose_members_fail_waits_longer_after_each_failure_and_fills_again_once_one_is_ready()
 {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("pool-backoff");
    let fixed = dir.join("fixed");
    let yaml = format!(
        r#"
name: flaky
ttl: {{ default: 1h, maximum: 4h }}
pool: {{ size: 1, max_idle: 10m }}
workflows:
  provision:
    steps:
      - {{ name: hub, kind: test-fail, with: {{ message: "quota exceeded", until_exists: "{}" }} }}
  assign: {{ steps: [{{ name: assign, kind: noop }}] }}
  teardown: {{ steps: [{{ name: remove, kind: noop }}] }}
"#,
        fixed.display()
    );
    write_workflow(&dir.join("workflows"), "flaky", &yaml);
    let catalog = catalog(&db.store, &dir.join("workflows")).await;
    let plan = PoolPlan::of(&catalog, "flaky", "default").unwrap();
    let worker = spawn_worker(&db.store, fast_config("w"));
    let first_wait = chrono::Duration::from_std(POOL_BACKOFF_FIRST).unwrap();
    // The fills' own times, the scheduler's passes moved by hand: in the
    // past, so the members' runs are due for the worker's real clock.
    let t0 = SystemClock.now() - chrono::Duration::seconds(200);
    let at = |seconds: i64| t0 + chrono::Duration::seconds(seconds);

    let fill = plan.fill(&db.store, at(0)).await.unwrap();
    assert_eq!((fill.started.len(), fill.paused_until), (1, None));
    let first = fill.started[0];
    until_one_member(&db.store, "failed", first).await;

    // The failed member is recycled, and the next waits.
    let fill = plan.fill(&db.store, at(1)).await.unwrap();
    assert_eq!(fill.recycled, vec![first]);
    assert!(
        fill.started.is_empty(),
        "no member while it waits: {fill:?}"
    );
    assert_eq!(fill.paused_until, Some(at(1) + first_wait));
    let fill = plan.fill(&db.store, at(20)).await.unwrap();
    assert!(fill.started.is_empty(), "still waiting at 20 s: {fill:?}");
    assert_eq!(fill.paused_until, Some(at(1) + first_wait));

    // Past the wait, one more; it fails too, and the wait doubles.
    let fill = plan.fill(&db.store, at(32)).await.unwrap();
    assert_eq!((fill.started.len(), fill.paused_until), (1, None));
    let second = fill.started[0];
    until_one_member(&db.store, "failed", second).await;
    let fill = plan.fill(&db.store, at(33)).await.unwrap();
    assert_eq!(fill.recycled, vec![second]);
    assert_eq!(fill.paused_until, Some(at(33) + first_wait * 2));
    let fill = plan.fill(&db.store, at(80)).await.unwrap();
    assert!(
        fill.started.is_empty(),
        "the doubled wait holds at 80 s: {fill:?}"
    );

    // The cause fixed, the next member is ready, and the wait is forgotten:
    // a later failure would start again from the first wait.
    std::fs::write(&fixed, "").unwrap();
    let fill = plan.fill(&db.store, at(94)).await.unwrap();
    assert_eq!((fill.started.len(), fill.paused_until), (1, None));
    let third = fill.started[0];
    until_one_member(&db.store, "ready", third).await;
    let fill = plan.fill(&db.store, at(95)).await.unwrap();
    assert_eq!(
        fill,
        Default::default(),
        "a full pool with nothing to wait for"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pool_backoff")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the ready member ended the wait");
    worker.shutdown().await.unwrap();
}
