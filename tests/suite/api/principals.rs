//! Who is who: a run belongs to its environment's owner, whoever started it
//! (the TTL scheduler's teardown too); hubwright's own actors are not callers,
//! so a token named `scheduler` neither can be made nor reads what the
//! scheduler started.

use std::sync::Arc;

use hubwright_state::model::Role;
use hubwright_state::store::expiry::ExpiryTeardown;
use hubwright_state::{Clock, ManualClock, SystemClock};
use hubwright_testkit::harness::catalog;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::json;

const LAB: &str = r#"
name: lab
ttl: { default: 1h, maximum: 4h }
workflows:
  provision:
    steps:
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

#[tokio::test]
async fn the_owner_sees_the_schedulers_teardown_of_their_environment_and_no_one_else_does() {
    let db = TestDatabase::create().await;
    let dir = write_workflow(&scratch_dir("principals"), "lab", LAB);
    let clock = ManualClock::new(SystemClock.now());
    let server = ApiServer::start_with_clock(&db, &dir, &[], Arc::new(clock.clone())).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let bob = token(&db.store, "bob", Role::Developer).await;
    let created = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": "lab", "template": "lab" }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let env = created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // What the TTL scheduler does an hour later.
    let catalog = catalog(&db.store, &dir).await;
    let (snapshot, definition_id) = catalog.definition("lab", "teardown").unwrap();
    clock.advance(chrono::Duration::hours(1) + chrono::Duration::seconds(1));
    let expired = db
        .store
        .expire_due(
            &[ExpiryTeardown {
                template: "lab",
                snapshot,
                definition_id,
            }],
            10,
            clock.now(),
            || None,
        )
        .await
        .unwrap();
    assert_eq!(expired.started, 1);
    let teardown: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM runs WHERE environment_id = $1 AND workflow_of(definition_id) = 'teardown'",
    )
    .bind(env.parse::<uuid::Uuid>().unwrap())
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    let path = format!("/v1/runs/{teardown}");

    let shown = server.get(&path).token(&alice).send().await;
    assert_eq!(shown.status, StatusCode::OK, "{:#}", shown.body);
    assert_eq!(shown.body["created_by"], "scheduler");
    assert_eq!(shown.body["owner"], "alice");
    let timeline = server
        .get(&format!("{path}/events"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(timeline.status, StatusCode::OK, "{:#}", timeline.body);
    let listed = server
        .get("/v1/runs?kind=teardown")
        .token(&alice)
        .send()
        .await;
    assert_eq!(listed.body["items"][0]["id"], teardown.to_string());

    server
        .get(&path)
        .token(&bob)
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");

    // A token named after the scheduler, made before such names were refused.
    let legacy = "hw_legacy-scheduler-token";
    sqlx::query(
        "INSERT INTO api_tokens (id, subject, role, token_hash, created_by, created_at)
         VALUES ($1, 'scheduler', 'developer', encode(sha256($2::bytea), 'hex'), 'bootstrap', now())",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(legacy)
    .execute(db.store.pool())
    .await
    .unwrap();
    let as_scheduler = server.get(&path).token(legacy).send().await;
    as_scheduler.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        as_scheduler.detail().contains("reserved"),
        "{:#}",
        as_scheduler.body
    );
    let runs = server.get("/v1/runs").token(legacy).send().await;
    assert_eq!(runs.status, StatusCode::UNAUTHORIZED, "{:#}", runs.body);
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn hubwrights_own_actors_cannot_be_token_subjects() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;
    let root = token(&db.store, "root", Role::Admin).await;
    for subject in [
        "scheduler",
        "bootstrap",
        "system",
        "Scheduler",
        " hubwright ",
    ] {
        let refused = server
            .post("/v1/tokens")
            .token(&root)
            .json(&json!({ "subject": subject, "role": "developer" }))
            .send()
            .await;
        refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert_eq!(
            refused.body["errors"][0]["pointer"], "/subject",
            "{subject}: {:#}",
            refused.body
        );
        assert!(refused.detail().contains("reserved"), "{:#}", refused.body);
    }
    // The bootstrap path refuses them too.
    let direct = db
        .store
        .create_token("scheduler", Role::Admin, SystemClock.now())
        .await;
    assert!(
        matches!(direct, Err(hubwright_state::Error::Invalid { ref field, .. }) if field == "subject"),
        "{direct:?}"
    );
    let listed = server.get("/v1/tokens").token(&root).send().await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "root's only"
    );
    drop(server);
    db.drop_now().await;
}
