//! `/v1/environments` against a real database: requests validated before
//! anything is stored, owners isolated, pages stable, teardown and extension.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hubwright_state::model::{Role, RunState};
use hubwright_state::workflow::Catalog;
use hubwright_state::{Clock, Store, SystemClock};
use hubwright_testkit::harness::{fast_config, spawn_worker};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    db: TestDatabase,
    catalog: Arc<Catalog>,
}

struct Reply {
    status: StatusCode,
    body: Value,
}

impl Api {
    async fn new() -> Self {
        let db = TestDatabase::create().await;
        let dir = write_workflow(
            &scratch_dir("env-api"),
            "lab",
            r#"
name: lab
ttl: { default: 1h, maximum: 4h }
parameters:
  cpu: { type: number, default: 1, minimum: 0.5, maximum: 4 }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#,
        );
        let mut catalog = Catalog::load(&dir, |_| Ok(())).unwrap();
        catalog.register(&db.store).await.unwrap();
        Self {
            db,
            catalog: Arc::new(catalog),
        }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    async fn token(&self, subject: &str, role: Role) -> String {
        self.store()
            .create_token(subject, role, SystemClock.now())
            .await
            .unwrap()
            .secret
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, token, body, None).await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let response = hubwright_api::router(self.store().clone(), Arc::clone(&self.catalog))
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn create(&self, token: &str, body: Value) -> Reply {
        self.call("POST", "/v1/environments", token, Some(body))
            .await
    }

    async fn create_with_key(&self, token: &str, key: &str, body: Value) -> Reply {
        self.call_with("POST", "/v1/environments", token, Some(body), Some(key))
            .await
    }

    async fn environments(&self) -> i64 {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM environments")
            .fetch_one(self.store().pool())
            .await
            .unwrap();
        rows
    }
}

#[tokio::test]
async fn a_request_is_accepted_with_its_provisioning_run() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;

    let reply = api
        .create(
            &alice,
            json!({"name": "lab-1", "template": "lab", "parameters": {"cpu": 2}, "ttl": "2h"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
    let env = &reply.body["environment"];
    assert_eq!(env["owner"], "alice");
    assert_eq!(env["phase"], "requested");
    assert_eq!(env["parameters"], json!({"cpu": 2}));
    let created: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(env["created_at"].clone()).unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(env["expires_at"].clone()).unwrap();
    assert_eq!(expires - created, chrono::Duration::hours(2));

    let id = env["id"].as_str().unwrap();
    let shown = api
        .call("GET", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["current_run"]["id"], reply.body["run_id"]);
    assert_eq!(shown.body["current_run"]["workflow"], "provision");
    assert_eq!(
        shown.body["current_run"]["steps"].as_array().unwrap().len(),
        2
    );
    api.db.drop_now().await;
}

#[tokio::test]
async fn bad_requests_name_the_field_and_store_nothing() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let cases = [
        (json!({"template": "lab"}), "name: must be a DNS-1123 label"),
        (
            json!({"name": "Lab", "template": "lab"}),
            "name: must be a DNS-1123 label",
        ),
        (
            json!({"name": "-lab", "template": "lab"}),
            "name: must be a DNS-1123 label",
        ),
        (
            json!({"name": "a".repeat(41), "template": "lab"}),
            "name: must be a DNS-1123 label: 1 to 40",
        ),
        (
            json!({"name": "lab", "template": "nope"}),
            "template: no template named `nope` (known: lab)",
        ),
        (
            json!({"name": "lab", "template": "lab", "colour": "red"}),
            "body: unknown field `colour`",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"gpu": 1}}),
            "parameters.gpu: template `lab` declares no such parameter",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"cpu": "two"}}),
            "parameters.cpu: must be a number",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"cpu": 8}}),
            "parameters.cpu: must be at most 4",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": "5h"}),
            "ttl: 5h is beyond the maximum of template `lab` (4h)",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": "soon"}),
            "ttl: `soon` is not a duration",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": 3}),
            "body: invalid type",
        ),
        (
            json!({"name": "lab", "template": "lab", "cluster": "Prod!"}),
            "cluster: must be a DNS-1123 label",
        ),
    ];
    for (body, expected) in cases {
        let reply = api.create(&alice, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:#}",
            reply.body
        );
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(expected),
            "{body}: `{detail}` should start with `{expected}`"
        );
    }
    assert_eq!(api.environments().await, 0, "nothing was stored");
    api.db.drop_now().await;
}

#[tokio::test]
async fn a_name_is_unique_per_owner_among_live_environments() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let body = json!({"name": "lab", "template": "lab"});

    assert_eq!(
        api.create(&alice, body.clone()).await.status,
        StatusCode::ACCEPTED
    );
    let taken = api.create(&alice, body.clone()).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(
        taken.body["detail"],
        "name: alice already has an environment named `lab`"
    );
    assert_eq!(
        api.create(&bob, body).await.status,
        StatusCode::ACCEPTED,
        "bob's namespace of names is his own"
    );
    assert_eq!(api.environments().await, 2);
    api.db.drop_now().await;
}

#[tokio::test]
async fn a_developer_cannot_read_delete_extend_or_even_detect_anothers_environment() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let created = api
        .create(&alice, json!({"name": "private", "template": "lab"}))
        .await;
    let id = created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/environments/{id}");
    let missing = format!("/v1/environments/{}", uuid::Uuid::now_v7());

    for (method, suffix, body) in [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/extend", Some(json!({"ttl": "2h"}))),
    ] {
        let theirs = api
            .call(method, &format!("{path}{suffix}"), &bob, body.clone())
            .await;
        let nobodys = api
            .call(method, &format!("{missing}{suffix}"), &bob, body)
            .await;
        assert_eq!(
            theirs.status,
            StatusCode::NOT_FOUND,
            "{method} {path}{suffix}"
        );
        assert_eq!(nobodys.status, StatusCode::NOT_FOUND);
        assert_eq!(
            theirs.body["detail"]
                .as_str()
                .unwrap()
                .split(' ')
                .take(2)
                .collect::<Vec<_>>(),
            nobodys.body["detail"]
                .as_str()
                .unwrap()
                .split(' ')
                .take(2)
                .collect::<Vec<_>>(),
            "the answer for someone else's environment reads like the one for a missing one"
        );
    }
    let listed = api.call("GET", "/v1/environments", &bob, None).await;
    assert_eq!(listed.body["items"], json!([]));
    let asked = api
        .call("GET", "/v1/environments?owner=alice", &bob, None)
        .await;
    assert_eq!(asked.body["items"], json!([]));

    let operator = api.call("GET", &path, &ops, None).await;
    assert_eq!(operator.status, StatusCode::OK, "operators see everything");
    assert_eq!(
        api.store()
            .environment(id.parse().unwrap())
            .await
            .unwrap()
            .phase
            .to_string(),
        "requested"
    );
    api.db.drop_now().await;
}

#[tokio::test]
async fn pages_stay_stable_while_environments_are_added() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    for i in 0..5 {
        api.create(
            &alice,
            json!({"name": format!("env-{i}"), "template": "lab"}),
        )
        .await;
    }
    let first = api
        .call("GET", "/v1/environments?limit=2", &alice, None)
        .await;
    let names = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["env-0", "env-1"]);
    api.create(&alice, json!({"name": "env-5", "template": "lab"}))
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api
        .call(
            "GET",
            &format!("/v1/environments?limit=2&cursor={cursor}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(names(&second), ["env-2", "env-3"]);
    let cursor = second.body["next_cursor"].as_str().unwrap();
    let third = api
        .call(
            "GET",
            &format!("/v1/environments?limit=2&cursor={cursor}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(names(&third), ["env-4", "env-5"]);
    assert_eq!(
        third.body["next_cursor"],
        Value::Null,
        "the last page says so"
    );

    let bad = api
        .call("GET", "/v1/environments?limit=0", &alice, None)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = api
        .call("GET", "/v1/environments?colour=red", &alice, None)
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    api.db.drop_now().await;
}

#[tokio::test]
async fn ttl_extensions_stay_within_the_templates_maximum() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id = created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let extended = api
        .call(
            "POST",
            &format!("/v1/environments/{id}/extend"),
            &alice,
            Some(json!({"ttl": "3h"})),
        )
        .await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    let before: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(created.body["environment"]["expires_at"].clone()).unwrap();
    let after: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(extended.body["expires_at"].clone()).unwrap();
    assert!(
        after - before >= chrono::Duration::hours(2),
        "{before} → {after}"
    );

    let too_long = api
        .call(
            "POST",
            &format!("/v1/environments/{id}/extend"),
            &alice,
            Some(json!({"ttl": "5h"})),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        too_long.body["detail"]
            .as_str()
            .unwrap()
            .contains("beyond the template's maximum of 4h from creation")
    );
    let missing = api
        .call(
            "POST",
            &format!("/v1/environments/{id}/extend"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(missing.body["detail"], "ttl: is required, e.g. \"4h\"");
    api.db.drop_now().await;
}

#[tokio::test]
async fn deleting_cancels_provisioning_tears_down_and_a_second_delete_is_harmless() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "short-lived", "template": "lab"}))
        .await;
    let id = created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let provision: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();

    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(
        deleted.body["teardown"], "started",
        "the idle provisioning run was cancelled first"
    );
    assert_eq!(
        api.store().run(provision).await.unwrap().state,
        RunState::Cancelled
    );
    let stopped = api.store().events(provision, 0, 100).await.unwrap();
    assert!(
        stopped
            .iter()
            .any(|e| e.kind == "run_cancelled" && e.actor == "alice"),
        "who stopped it is on the run's timeline"
    );
    let again = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["teardown"], "already_requested");

    let worker = spawn_worker(api.store(), fast_config("w"));
    let teardown: uuid::Uuid = deleted.body["run_id"].as_str().unwrap().parse().unwrap();
    wait::run_state(
        api.store(),
        teardown,
        RunState::Succeeded,
        Duration::from_secs(20),
    )
    .await;
    worker.shutdown().await.unwrap();
    let env = api.store().environment(id.parse().unwrap()).await.unwrap();
    assert_eq!(env.phase.to_string(), "deleted");
    let listed = api.call("GET", "/v1/environments", &alice, None).await;
    assert_eq!(
        listed.body["items"],
        json!([]),
        "deleted environments are not listed by default"
    );
    api.db.drop_now().await;
}

#[tokio::test]
async fn the_phase_follows_the_runs_from_requested_to_ready() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id: uuid::Uuid = created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let run: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();

    let worker = spawn_worker(api.store(), fast_config("w"));
    wait::run_state(
        api.store(),
        run,
        RunState::Succeeded,
        Duration::from_secs(20),
    )
    .await;
    worker.shutdown().await.unwrap();
    assert_eq!(
        api.store().environment(id).await.unwrap().phase.to_string(),
        "ready"
    );
    api.db.drop_now().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let body = json!({"name": "once", "template": "lab", "ttl": "1h"});

    let first = api.create_with_key(&alice, "key-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    // Formatting and spelled-out defaults do not make another request.
    let same = json!({"ttl": "1h", "template": "lab", "name": "once", "cluster": "default", "parameters": {}});
    let again = api.create_with_key(&alice, "key-1", same).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(
        again.body, first.body,
        "the same answer, not a second environment"
    );

    let other = api
        .create_with_key(&alice, "key-1", json!({"name": "twice", "template": "lab"}))
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        other.body["detail"],
        "Idempotency-Key: was used before with a different request; use a new key"
    );
    let bad = api.create_with_key(&alice, "has space", body).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.environments().await, 1);
    api.db.drop_now().await;
}

#[tokio::test]
async fn concurrent_duplicates_with_one_key_create_one_environment() {
    let api = Arc::new(Api::new().await);
    let alice = api.token("alice", Role::Developer).await;
    let body = json!({"name": "raced", "template": "lab"});
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (api, alice, body) = (Arc::clone(&api), alice.clone(), body.clone());
        racers.spawn(async move { api.create_with_key(&alice, "race", body).await });
    }
    let replies: Vec<Reply> = racers.join_all().await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::ACCEPTED),
        "every duplicate gets the answer"
    );
    assert!(
        replies.windows(2).all(|w| w[0].body == w[1].body),
        "the same answer"
    );
    assert_eq!(api.environments().await, 1);
}

#[tokio::test]
async fn deleting_during_provisioning_stops_the_step_then_tears_down_without_waiting_for_the_sweep()
{
    let db = TestDatabase::create().await;
    let dir = write_workflow(
        &scratch_dir("slow"),
        "slow",
        r#"
name: slow
workflows:
  provision:
    steps:
      - { name: long, kind: test-block, with: { duration: 30s } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#,
    );
    let mut catalog = Catalog::load(&dir, |_| Ok(())).unwrap();
    catalog.register(&db.store).await.unwrap();
    let api = Api {
        db,
        catalog: Arc::new(catalog),
    };
    let alice = api.token("alice", Role::Developer).await;
    let mut config = fast_config("w");
    // The sweep would take a minute: only the worker's own follow-up can be quick.
    config.rescue_interval = Duration::from_secs(60);
    let worker = spawn_worker(api.store(), config);

    let created = api
        .create(&alice, json!({"name": "slow", "template": "slow"}))
        .await;
    let id: uuid::Uuid = created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let provision: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();
    wait::run_state(
        api.store(),
        provision,
        RunState::Running,
        Duration::from_secs(20),
    )
    .await;

    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(
        deleted.body["teardown"], "waiting",
        "the step in flight must stop first"
    );
    wait::run_state(
        api.store(),
        provision,
        RunState::Cancelled,
        Duration::from_secs(10),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.store().environment(id).await.unwrap().phase.to_string() != "deleted" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "teardown did not follow the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await.unwrap();
    api.db.drop_now().await;
}
