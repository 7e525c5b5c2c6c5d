//! `/v1/environments` of a real `hubwright serve --api` process over HTTP:
//! requests validated before anything is stored, owners isolated, pages
//! stable, filters, idempotency keys, teardown and extension.

use std::time::Duration;

use hubwright_state::Store;
use hubwright_state::model::{Role, RunState};
use hubwright_testkit::harness::{fast_config, spawn_worker};
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use serde_json::{Value, json};

const LAB: &str = r#"
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
"#;

/// A server with some templates, and its database.
struct Api {
    db: TestDatabase,
    server: ApiServer,
}

/// The id of the environment a create answered with.
fn environment_id(created: &Reply) -> String {
    created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

impl Api {
    async fn new() -> Self {
        Self::with_templates(&[("lab", LAB)]).await
    }

    async fn with_templates(templates: &[(&str, &str)]) -> Self {
        let db = TestDatabase::create().await;
        let dir = scratch_dir("env-api");
        for (name, yaml) in templates {
            write_workflow(&dir, name, yaml);
        }
        let server = ApiServer::start(&db, &dir, &[]).await;
        Self { db, server }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    async fn token(&self, subject: &str, role: Role) -> String {
        token(self.store(), subject, role).await
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        let call = self.server.request(method, path).token(token);
        match body {
            Some(body) => call.json(&body).send().await,
            None => call.send().await,
        }
    }

    async fn create(&self, token: &str, body: Value) -> Reply {
        self.call("POST", "/v1/environments", token, Some(body))
            .await
    }

    async fn extend(&self, token: &str, id: &str, body: Value) -> Reply {
        self.call(
            "POST",
            &format!("/v1/environments/{id}/extend"),
            token,
            Some(body),
        )
        .await
    }

    async fn create_with_key(&self, token: &str, key: &str, body: Value) -> Reply {
        self.server
            .post("/v1/environments")
            .token(token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
    }

    async fn environments(&self) -> i64 {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM environments")
            .fetch_one(self.store().pool())
            .await
            .unwrap();
        rows
    }

    /// Waits for `run` to succeed (a worker must be running).
    async fn run_succeeds(&self, run: uuid::Uuid) {
        wait::run_state(
            self.store(),
            run,
            RunState::Succeeded,
            Duration::from_secs(20),
        )
        .await;
    }

    async fn finish(self) {
        drop(self.server);
        self.db.drop_now().await;
    }
}

fn names(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {:#}", reply.body))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

mod access;
mod by_name;
mod clusters;
mod conditions;
mod lifecycle;
mod links;
mod paging;
mod requests;
mod ttl;
