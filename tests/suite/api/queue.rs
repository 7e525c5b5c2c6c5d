//! `GET /v1/queue`: the queue's health for operators, from runs the factory
//! puts in each state: depth, the oldest due run, workers and their leases,
//! and runs rescued after a lease ran out.

use chrono::Duration;
use hubwright_state::model::Role;
use hubwright_state::{Clock, SystemClock};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, factory, scratch_dir};

#[tokio::test]
async fn operators_see_depth_the_oldest_due_run_leases_and_rescues() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let alice = token(&db.store, "alice", Role::Developer).await;

    let empty = server.get("/v1/queue").token(&ops).send().await;
    assert_eq!(empty.status, StatusCode::OK, "{:#}", empty.body);
    assert_eq!(empty.body["due"], 0);
    assert_eq!(empty.body["oldest_due"], serde_json::Value::Null);
    assert_eq!(empty.body["workers"].as_array().unwrap().len(), 0);

    // Made first: the factories' claims take the oldest due run.
    let held = factory::running_run(&db.store, "alice", "worker-a", Duration::minutes(5)).await;
    factory::running_run(&db.store, "alice", "worker-a", Duration::minutes(10)).await;
    let lost = factory::running_run(&db.store, "bob", "worker-b", Duration::seconds(-30)).await;
    let failed = factory::failed_run(&db.store, "alice", "boom").await;
    let oldest = factory::pending_run(&db.store, "alice").await;
    factory::pending_run(&db.store, "bob").await;

    let now = SystemClock.now();
    let rescued = db.store.rescue_expired("worker-c", 10, now).await.unwrap();
    assert_eq!(rescued, 1, "worker-b's run is taken back");

    let health = server.get("/v1/queue").token(&ops).send().await;
    assert_eq!(health.status, StatusCode::OK, "{:#}", health.body);
    let body = &health.body;
    assert_eq!(body["runs"]["running"], 2, "{body:#}");
    assert_eq!(body["runs"]["failed"], 1);
    assert_eq!(body["runs"]["pending"], 3, "two new and the rescued one");
    assert_eq!(body["due"], 3);
    assert_eq!(body["scheduled"], 0);
    // The rescued run is due since its rescue, after the two made before.
    assert_eq!(body["oldest_due"]["run_id"], oldest.to_string(), "{body:#}");
    assert!(body["oldest_due"]["overdue_seconds"].as_i64().unwrap() >= 0);
    assert_eq!(body["oldest_due"]["state"], "pending");

    let workers = body["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "worker-b holds nothing now: {body:#}");
    assert_eq!(workers[0]["worker"], "worker-a");
    assert_eq!(workers[0]["runs"], 2);
    assert_eq!(workers[0]["expired"], 0);
    let soonest: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(workers[0]["soonest_expiry"].clone()).unwrap();
    let held_until = db.store.run(held).await.unwrap().lease_expires_at.unwrap();
    assert_eq!(soonest, held_until, "the sooner of worker-a's two leases");

    assert_eq!(body["rescued"], 1);
    let rescues = body["recent_rescues"].as_array().unwrap();
    assert_eq!(rescues.len(), 1);
    assert_eq!(rescues[0]["run_id"], lost.to_string());
    assert_eq!(rescues[0]["previous_owner"], "worker-b");
    assert_eq!(rescues[0]["rescued_by"], "worker-c");
    assert_ne!(rescues[0]["run_id"], failed.to_string());

    let developer = server.get("/v1/queue").token(&alice).send().await;
    developer.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn an_expired_lease_not_yet_rescued_shows_on_its_worker_and_a_late_run_is_overdue() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    factory::running_run(&db.store, "alice", "worker-z", Duration::seconds(-5)).await;
    // Due a day ago and never claimed: the factory's failed run is claimed
    // at once, so an old pending one is made by a retry that is due then.
    let stale = factory::failed_run(&db.store, "alice", "boom").await;
    let yesterday = SystemClock.now() - Duration::days(1);
    db.store
        .retry_run(stale, None, "ops", yesterday)
        .await
        .unwrap();

    let health = server.get("/v1/queue").token(&ops).send().await;
    assert_eq!(health.status, StatusCode::OK, "{:#}", health.body);
    let body = &health.body;
    assert_eq!(body["workers"][0]["worker"], "worker-z", "{body:#}");
    assert_eq!(body["workers"][0]["expired"], 1);
    assert_eq!(body["oldest_due"]["run_id"], stale.to_string());
    let overdue = body["oldest_due"]["overdue_seconds"].as_i64().unwrap();
    assert!(
        (86_000..86_400 + 60).contains(&overdue),
        "due a day ago: {overdue}"
    );
    assert_eq!(body["rescued"], 0);
    drop(server);
    db.drop_now().await;
}

/// The worker processes `GET /v1/queue` lists.
async fn processes(server: &ApiServer, ops: &str) -> Vec<serde_json::Value> {
    let health = server.get("/v1/queue").token(ops).send().await;
    assert_eq!(health.status, StatusCode::OK, "{:#}", health.body);
    health.body["processes"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_idle_worker_is_listed_and_a_silent_and_a_stopped_one_say_so() {
    let db = TestDatabase::create().await;
    let api = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    assert_eq!(processes(&api, &ops).await, Vec::<serde_json::Value>::new());

    // A real worker process, holding nothing.
    let mut worker = ApiServer::start_process(
        crate::BIN,
        &db,
        &scratch_dir("no-workflows"),
        &["--worker", "--concurrency", "3"],
    )
    .await;
    let listed = hubwright_testkit::wait::until_some(
        "the idle worker in the queue's workers",
        std::time::Duration::from_secs(30),
        || async {
            let found = processes(&api, &ops).await;
            (found.len() == 1).then(|| found[0].clone())
        },
    )
    .await;
    assert_eq!(listed["liveness"], "running", "{listed:#}");
    assert_eq!(listed["runs"], 0);
    assert_eq!(listed["concurrency"], 3);
    assert_eq!(listed["pid"], worker.process().pid());
    assert_eq!(listed["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(listed["stopped_at"], serde_json::Value::Null);

    // One that started an hour ago and has not been heard from since.
    let hour_ago = SystemClock.now() - Duration::hours(1);
    let ghost = hubwright_state::store::workers::WorkerStart {
        id: "ghost-1",
        host: "node-7",
        pid: 42,
        version: "0.0.9",
        concurrency: 16,
        heartbeat: std::time::Duration::from_secs(10),
    };
    db.store.worker_started(&ghost, hour_ago).await.unwrap();
    let both = processes(&api, &ops).await;
    assert_eq!(both.len(), 2, "{both:#?}");
    assert_eq!(both[0]["id"], listed["id"], "running ones first");
    assert_eq!(both[1]["id"], "ghost-1");
    assert_eq!(both[1]["liveness"], "silent");

    // A clean shutdown says so.
    worker.process().signal("TERM");
    assert_eq!(
        worker
            .process_mut()
            .wait_exit(std::time::Duration::from_secs(30))
            .await,
        Some(0)
    );
    let after = processes(&api, &ops).await;
    let stopped = after.iter().find(|w| w["id"] == listed["id"]).unwrap();
    assert_eq!(stopped["liveness"], "stopped", "{after:#?}");
    assert!(stopped["stopped_at"].is_string());
    assert_eq!(
        after.last().unwrap()["id"],
        listed["id"],
        "stopped ones last"
    );
    drop(api);
    db.drop_now().await;
}
