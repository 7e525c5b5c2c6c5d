//! The policy file (`serve --policy`): limits per owner, group and for
//! everyone, refused with a problem that names the limit, counted without
//! races; template and profile access; reloads that keep the policy in force
//! when the new file has an error.

use std::path::{Path, PathBuf};

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::{Value, json};

mod access;
mod limits;
mod reload;

/// A template with a profile (one of them a GPU) and counted CPU and memory.
const HUB: &str = r#"
name: hub
ttl: { default: 1h, maximum: 8h }
parameters:
  profile: { type: string, default: small, enum: [small, gpu] }
  cpu_limit: { type: number, default: 1, minimum: 0.5, maximum: 8 }
  memory_limit: { type: string, default: 1Gi }
workflows:
  provision:
    steps:
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// A template only some groups may use.
const LAB: &str = r#"
name: lab
workflows:
  provision:
    steps:
      - { name: lab, kind: noop }
"#;

/// A server over `hub` and `lab` with `policy` as its policy file.
struct Guarded {
    db: TestDatabase,
    server: ApiServer,
    policy: PathBuf,
}

/// The templates and a policy file holding `policy`, in a scratch directory.
fn files(policy: &str) -> (PathBuf, PathBuf) {
    let dir = scratch_dir("policy");
    let workflows = dir.join("workflows");
    write_workflow(&workflows, "hub", HUB);
    write_workflow(&workflows, "lab", LAB);
    let path = dir.join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    (workflows, path)
}

impl Guarded {
    /// In this process, with `extra` flags after `--policy`.
    async fn start(policy: &str, extra: &[&str]) -> Self {
        let db = TestDatabase::create().await;
        let (workflows, path) = files(policy);
        let mut flags = vec!["--policy", path.to_str().unwrap()];
        flags.extend_from_slice(extra);
        let server = ApiServer::start(&db, &workflows, &flags).await;
        Self {
            db,
            server,
            policy: path,
        }
    }

    async fn token(&self, subject: &str, role: Role) -> String {
        token(&self.db.store, subject, role).await
    }

    async fn create(&self, token: &str, body: Value) -> Reply {
        self.server
            .post("/v1/environments")
            .token(token)
            .json(&body)
            .send()
            .await
    }

    async fn get(&self, token: &str, path: &str) -> Reply {
        self.server.get(path).token(token).send().await
    }

    async fn finish(self) {
        drop(self.server);
        self.db.drop_now().await;
    }
}

/// A request for a `hub` called `name` with `parameters`.
fn hub(name: &str, parameters: Value) -> Value {
    json!({"name": name, "template": "hub", "parameters": parameters})
}

/// Asserts a 403 `limit-exceeded` naming `limit` with its value and current use.
#[track_caller]
fn assert_limit(reply: &Reply, limit: &str, value: Value, current: Value, rule: &str) {
    reply.assert_problem(StatusCode::FORBIDDEN, "limit-exceeded");
    let named = &reply.body["limit"];
    assert_eq!(named["limit"], limit, "{:#}", reply.body);
    assert_eq!(named["value"], value, "{:#}", reply.body);
    assert_eq!(named["current"], current, "{:#}", reply.body);
    assert_eq!(named["rule"], rule, "{:#}", reply.body);
    let detail = reply.detail();
    assert!(detail.contains(limit) && detail.contains(rule), "{detail}");
}
