//! The audit trail of a `hubwright serve --api` in this process: every
//! state-changing call recorded once with its actor and outcome, read by
//! admins only, filtered, paged, exported as JSON lines, and pruned past
//! its retention.

use hubwright_state::model::Role;
use hubwright_state::store::audit::{AuditRecord, AuthKind, Outcome};
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::{Value, json};

mod actions;
mod reading;
mod retention;

const LAB: &str = r#"
name: lab
ttl: { default: 1h, maximum: 4h }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// An API server over the `lab` template, its database and an admin token.
struct Audited {
    db: TestDatabase,
    server: ApiServer,
    root: String,
}

impl Audited {
    async fn start() -> Self {
        let db = TestDatabase::create().await;
        let dir = scratch_dir("audit-api");
        write_workflow(&dir, "lab", LAB);
        let server = ApiServer::start(&db, &dir, &[]).await;
        let root = token(&db.store, "root", Role::Admin).await;
        Self { db, server, root }
    }

    /// Every entry matching `query` (e.g. `action=run.retry`), newest first,
    /// read through the API as the admin.
    async fn entries(&self, query: &str) -> Vec<Value> {
        let reply = self
            .server
            .get(&format!("/v1/audit?limit=200&{query}"))
            .token(&self.root)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        assert_eq!(
            reply.body["next_cursor"],
            Value::Null,
            "one page holds them"
        );
        reply.body["items"].as_array().unwrap().clone()
    }

    async fn finish(self) {
        drop(self.server);
        self.db.drop_now().await;
    }
}

/// A record of `action` by `actor` at `at`, as another writer would make it.
fn record(at: chrono::DateTime<chrono::Utc>, actor: &str, action: &str, ok: bool) -> AuditRecord {
    let outcome = if ok {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    AuditRecord::new(at, Some(actor), AuthKind::Token, action, outcome)
}

fn ids(reply: &Reply) -> Vec<i64> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {:#}", reply.body))
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

/// `json!` of the fields a test compares: (action, actor, target, outcome, status).
fn summary(entry: &Value) -> Value {
    json!([
        entry["action"],
        entry["actor"],
        entry["target_id"],
        entry["outcome"],
        entry["status"]
    ])
}
