//! Retention: the scheduler's pass deletes entries older than the
//! retention, in batches, on the injected clock.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use hubwright_state::{Clock, ManualClock, SystemClock};
use hubwright_worker::AuditRetention;

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn count(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(db.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn entries_older_than_the_retention_are_deleted_in_batches_and_newer_ones_kept() {
    let db = TestDatabase::create().await;
    let clock = ManualClock::new(SystemClock.now());
    let now = clock.now();
    // More old entries than one delete takes, so the pass must loop.
    sqlx::query(
        "INSERT INTO audit_log (at, actor, auth, action, outcome)
         SELECT $1 - make_interval(days => 400), 'alice', 'token', 'environment.create', 'success'
         FROM generate_series(1, 12001)",
    )
    .bind(now)
    .execute(db.store.pool())
    .await
    .unwrap();
    for days in [10, 100] {
        let at = now - chrono::Duration::days(days);
        db.store
            .record_audit(&record(at, "bob", "run.retry", true))
            .await
            .unwrap();
    }
    let retention = AuditRetention::new(
        db.store.clone(),
        Arc::new(clock.clone()),
        DAY * 90,
        Duration::from_secs(3600),
    )
    .unwrap();

    assert_eq!(
        retention.pass().await.unwrap(),
        12_002,
        "400 and 100 days old"
    );
    assert_eq!(count(&db).await, 1, "the entry of 10 days ago is kept");
    assert_eq!(retention.pass().await.unwrap(), 0, "nothing more is due");
    clock.advance(chrono::Duration::days(81));
    assert_eq!(retention.pass().await.unwrap(), 1, "91 days old now");
    assert_eq!(count(&db).await, 0);
    db.drop_now().await;
}

#[test]
fn a_retention_under_an_hour_is_refused_naming_the_flag() {
    let refused = AuditRetention::validate(Duration::from_secs(90)).unwrap_err();
    assert_eq!(refused.setting, "--audit-retention");
    assert!(refused.rule.contains("got 1m30s"), "{}", refused.rule);
    assert!(AuditRetention::validate(DAY * 90).is_ok());
}
