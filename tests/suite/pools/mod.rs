//! Warm pools with the real runner, scheduler and API over noop steps: a
//! pool fills; a request takes a ready member (its TTL from the claim, the
//! `assign` workflow run before it is ready) and the pool refills; two
//! requests for the last member get it once and a cold environment; a
//! request the pool cannot serve goes cold without counting a miss; a
//! template change and an idle member past `max_idle` are recycled
//! ([`store`], through the store and scheduler on a manual clock).

mod backoff;
mod console;
mod real_hubs;
mod store;

use std::path::Path;
use std::time::Duration;

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(30);

/// A pool of two; a claim may choose `allowed_users`, not `profile`.
pub const WARM: &str = r#"
name: warm
ttl: { default: 1h, maximum: 4h }
parameters:
  profile: { type: string, default: small, enum: [small, large] }
  allowed_users: { type: strings, default: [], max_items: 5, max_length: 20 }
pool: { size: 2, claimable: [allowed_users], max_idle: 10m }
workflows:
  provision: { steps: [{ name: hub, kind: noop }] }
  assign: { steps: [{ name: assign, kind: noop }] }
  teardown: { steps: [{ name: remove, kind: noop }] }
"#;

/// The API, a worker and a scheduler sweeping every 200 ms, in-process.
async fn whole_system(db: &TestDatabase, workflows: &Path) -> ApiServer {
    let extra = [
        "--worker",
        "--scheduler",
        "--expiry-sweep-interval",
        "200ms",
    ];
    ApiServer::start(db, workflows, &extra).await
}

/// The one pool's figures from `GET /v1/pools`.
async fn pool(server: &ApiServer, ops: &str) -> Value {
    let reply = server.get("/v1/pools").token(ops).send().await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    reply.body["items"][0].clone()
}

async fn until_ready_members(server: &ApiServer, ops: &str, count: i64) {
    wait::until(&format!("{count} ready pool members"), WITHIN, || async {
        pool(server, ops).await["ready"] == count
    })
    .await;
}

async fn request(server: &ApiServer, token: &str, body: Value) -> Reply {
    let reply = server
        .post("/v1/environments")
        .token(token)
        .json(&body)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
    reply
}

async fn until_phase(server: &ApiServer, token: &str, id: &str, phase: &str) -> Value {
    wait::until_some(&format!("environment {id} {phase}"), WITHIN, || async {
        let reply = server
            .get(&format!("/v1/environments/{id}"))
            .token(token)
            .send()
            .await;
        (reply.body["phase"] == phase).then_some(reply.body)
    })
    .await
}

/// Kinds of the environment's events, oldest first.
async fn event_kinds(db: &TestDatabase, id: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT kind FROM events WHERE environment_id = $1::uuid ORDER BY id",
    )
    .bind(id)
    .fetch_all(db.store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_request_takes_a_ready_member_that_the_pool_then_replaces() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("pools");
    write_workflow(&dir, "warm", WARM);
    let server = whole_system(&db, &dir).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    until_ready_members(&server, &ops, 2).await;

    // Operators see the members; developers see none of them.
    let all = server.get("/v1/environments").token(&ops).send().await;
    let members: Vec<&Value> = all.body["items"].as_array().unwrap().iter().collect();
    assert_eq!(members.len(), 2, "{:#}", all.body);
    assert!(members.iter().all(|m| m["owner"] == "pool:warm"));
    let mine = server.get("/v1/environments").token(&alice).send().await;
    assert_eq!(mine.body["items"], json!([]), "{:#}", mine.body);

    let before = chrono::Utc::now();
    let reply = request(
        &server,
        &alice,
        json!({"name": "lab", "template": "warm", "parameters": {"allowed_users": ["bob"]}}),
    )
    .await;
    let id = reply.body["environment"]["id"].as_str().unwrap().to_owned();
    assert!(
        members.iter().any(|m| m["id"] == id.as_str()),
        "{id} is one of the members"
    );
    assert_eq!(reply.body["environment"]["phase"], "provisioning");
    let ready = until_phase(&server, &alice, &id, "ready").await;
    assert_eq!(ready["owner"], "alice");
    assert_eq!(ready["name"], "lab");
    assert_eq!(ready["parameters"]["allowed_users"], json!(["bob"]));
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(ready["expires_at"].clone()).unwrap();
    assert!(
        expires >= before + chrono::Duration::hours(1),
        "the TTL starts at the claim: {expires}"
    );
    let kinds = event_kinds(&db, &id).await;
    assert!(kinds.contains(&"pool_claimed".to_owned()), "{kinds:?}");
    let run = &reply.body["run_id"];
    let assign = server
        .get(&format!("/v1/runs/{}", run.as_str().unwrap()))
        .token(&ops)
        .send()
        .await;
    assert_eq!(assign.body["workflow"], "assign", "{:#}", assign.body);

    until_ready_members(&server, &ops, 2).await;
    let figures = pool(&server, &ops).await;
    assert_eq!(figures["claims"], 1, "{figures:#}");
    assert_eq!(figures["misses"], 0, "{figures:#}");
    assert_eq!(figures["size"], 2);
    let mine = server.get("/v1/environments").token(&alice).send().await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_request_the_pool_cannot_serve_is_provisioned_cold_without_a_miss() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("pools");
    write_workflow(&dir, "warm", WARM);
    let server = whole_system(&db, &dir).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    until_ready_members(&server, &ops, 2).await;

    let reply = request(
        &server,
        &alice,
        json!({"name": "big", "template": "warm", "parameters": {"profile": "large"}}),
    )
    .await;
    let id = reply.body["environment"]["id"].as_str().unwrap().to_owned();
    until_phase(&server, &alice, &id, "ready").await;
    let kinds = event_kinds(&db, &id).await;
    assert!(!kinds.iter().any(|k| k.starts_with("pool_")), "{kinds:?}");
    let figures = pool(&server, &ops).await;
    assert_eq!(
        (figures["claims"].clone(), figures["misses"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(figures["ready"], 2, "{figures:#}");
}

#[tokio::test]
async fn developers_may_not_list_pools() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("pools");
    write_workflow(&dir, "warm", WARM);
    let server = ApiServer::start(&db, &dir, &[]).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let reply = server.get("/v1/pools").token(&alice).send().await;
    reply.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let ops = token(&db.store, "ops", Role::Operator).await;
    let figures = pool(&server, &ops).await;
    assert_eq!(figures["template"], "warm");
    assert_eq!(figures["cluster"], "default");
    assert_eq!(figures["ready"], 0, "no scheduler, no members: {figures:#}");
}
