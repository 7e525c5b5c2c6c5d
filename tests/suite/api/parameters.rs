//! Bounded template parameters at request time, with the shipped templates:
//! quantities out of bounds or not quantities at all, and parameters only the
//! platform team sets, are a 422 naming the parameter and the rule before
//! anything is stored; values within the bounds are accepted as given.

use std::path::Path;

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir};
use serde_json::{Value, json};

/// A server over the repository's own `workflows/`.
async fn shipped(db: &TestDatabase) -> ApiServer {
    let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let clusters = scratch_dir("parameters-clusters").join("clusters.yaml");
    std::fs::write(&clusters, "clusters:\n  default: {}\n").unwrap();
    let clusters = clusters.display().to_string();
    ApiServer::start(db, &workflows, &["--clusters", &clusters]).await
}

async fn count(db: &TestDatabase, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(db.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_quota_a_quantity_above_its_maximum_or_not_a_quantity_is_a_422_naming_it_and_nothing_is_stored()
 {
    let db = TestDatabase::create().await;
    let server = shipped(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let fixed =
        "is set by the platform team: template `jupyterhub` does not let a request choose it";
    let cases: [(&str, Value, &str); 8] = [
        ("jupyterhub", json!({"quota_cpu": "100000"}), fixed),
        ("jupyterhub", json!({"quota_memory": "100Ti"}), fixed),
        ("jupyterhub", json!({"quota_cpu": "abc"}), fixed),
        (
            "workshop",
            json!({"container_cpu_max": "64"}),
            "is set by the platform team: template `workshop` does not let a request choose it",
        ),
        (
            "jupyterhub",
            json!({"memory_limit": "100Ti"}),
            "must be a memory quantity at most 16Gi (got 100Ti)",
        ),
        (
            "jupyterhub",
            json!({"cpu_limit": "abc"}),
            "must be a CPU quantity from 500m to 16, such as \"500m\" or \"2\" (got abc: it does not start with a number)",
        ),
        (
            "jupyterhub",
            json!({"cpu_guarantee": "-1"}),
            "must be a CPU quantity from 100m to 8, such as \"500m\" or \"2\", not a negative one (got -1)",
        ),
        (
            "workshop",
            json!({"memory_limit": "4Gi"}),
            "must be a memory quantity at most 2Gi (got 4Gi)",
        ),
    ];
    for (template, parameters, rule) in cases {
        let name = parameters
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        let reply = server
            .post("/v1/environments")
            .token(&alice)
            .json(&json!({"name": "lab", "template": template, "parameters": parameters}))
            .send()
            .await;
        reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert_eq!(
            reply.detail(),
            format!("parameters.{name}: {rule}"),
            "{parameters}"
        );
        assert_eq!(
            reply.body["errors"],
            json!([{"pointer": format!("/parameters/{name}"), "rule": rule}]),
            "{parameters}"
        );
    }
    assert_eq!(count(&db, "environments").await, 0, "no environment stored");
    assert_eq!(count(&db, "runs").await, 0, "no run started");
    db.drop_now().await;
}

#[tokio::test]
async fn quantities_within_their_bounds_are_accepted_as_given_and_the_quota_is_the_templates() {
    let db = TestDatabase::create().await;
    let server = shipped(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let reply = server
        .post("/v1/environments")
        .token(&alice)
        .json(
            &json!({"name": "lab", "template": "jupyterhub", "parameters": {
                "cpu_limit": "16", "cpu_guarantee": 0.5, "memory_limit": "16Gi",
                "memory_guarantee": "1.5Gi", "storage": "1e10", "cost_centre": "research-42",
            }}),
        )
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
    let parameters = &reply.body["environment"]["parameters"];
    assert_eq!(parameters["cpu_limit"], "16", "at the maximum, as given");
    assert_eq!(parameters["cpu_guarantee"], 0.5);
    assert_eq!(parameters["memory_limit"], "16Gi");
    assert_eq!(parameters["storage"], "1e10");
    assert_eq!(parameters["quota_cpu"], "20", "the template's");
    assert_eq!(parameters["quota_memory"], "64Gi");
    assert_eq!(parameters["container_memory_max"], "16Gi");
    assert_eq!(count(&db, "environments").await, 1);
    db.drop_now().await;
}
