//! Approvals: a run's `approval` step waits, holding no worker, until an
//! approver decides through `/v1/approvals`; approved goes on to `ready`,
//! denied or no decision by the deadline fails the run and tears the
//! environment down; nobody approves their own request unless the step
//! allows it; a second decision is a conflict; webhooks announce pending
//! approvals. All through a real `serve --api --worker` in this process.

mod access;
mod cli;
mod webhooks;

use std::time::Duration;

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(30);

/// GPU environments wait for an operator; others pass.
const GATED: &str = r#"
name: gated
ttl: { default: 1h, maximum: 4h }
parameters:
  profile: { type: string, default: gpu, enum: [minimal, gpu] }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - name: approval
        kind: approval
        with:
          approvers: { role: operator }
          deadline: 1h
          required_if: { profile: gpu }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// The requester may approve their own request.
const LENIENT: &str = r#"
name: lenient
workflows:
  provision:
    steps:
      - name: approval
        kind: approval
        with: { approvers: { role: operator }, allow_self_approval: true }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// Nobody decides in time.
const HASTY: &str = r#"
name: hasty
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - name: approval
        kind: approval
        with: { approvers: { role: operator }, deadline: 2s }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// Only a group decides.
const GROUPED: &str = r#"
name: grouped
workflows:
  provision:
    steps:
      - name: approval
        kind: approval
        with: { approvers: { groups: [gpu-approvers] } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

struct Lab {
    db: TestDatabase,
    server: ApiServer,
    /// A developer who asks.
    alice: String,
    /// An operator who decides.
    bob: String,
}

impl Lab {
    async fn new() -> Self {
        let db = TestDatabase::create().await;
        let dir = scratch_dir("approvals");
        for (name, yaml) in [
            ("gated", GATED),
            ("lenient", LENIENT),
            ("hasty", HASTY),
            ("grouped", GROUPED),
        ] {
            write_workflow(&dir, name, yaml);
        }
        let server = ApiServer::start(
            &db,
            &dir,
            &[
                "--worker",
                "--poll-interval",
                "100ms",
                "--expiry-sweep-interval",
                "200ms",
            ],
        )
        .await;
        let alice = token(&db.store, "alice", Role::Developer).await;
        let bob = token(&db.store, "bob", Role::Operator).await;
        Self {
            db,
            server,
            alice,
            bob,
        }
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        let call = self.server.request(method, path).token(token);
        match body {
            Some(body) => call.json(&body).send().await,
            None => call.send().await,
        }
    }

    /// Asks for an environment; its id.
    async fn create(&self, token: &str, template: &str, parameters: Value) -> String {
        let created = self
            .call(
                "POST",
                "/v1/environments",
                token,
                Some(json!({ "name": template, "template": template, "parameters": parameters })),
            )
            .await;
        assert!(created.status.is_success(), "{:#}", created.body);
        created.body["environment"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn environment(&self, id: &str) -> Value {
        let shown = self
            .call("GET", &format!("/v1/environments/{id}"), &self.bob, None)
            .await;
        assert_eq!(shown.status, StatusCode::OK, "{:#}", shown.body);
        shown.body
    }

    async fn until_phase(&self, id: &str, phase: &str) -> Value {
        wait::until_some(&format!("environment {id} {phase}"), WITHIN, || async {
            let env = self.environment(id).await;
            (env["phase"] == phase).then_some(env)
        })
        .await
    }

    /// Environment `id` once its approval step is parked, waiting.
    async fn until_waiting(&self, id: &str) -> Value {
        wait::until_some(&format!("environment {id} waiting"), WITHIN, || async {
            let env = self.environment(id).await;
            (condition(&env, "approval")["reason"] == "Waiting").then_some(env)
        })
        .await
    }

    /// The pending approval of environment `id`, once its step asked, as
    /// `token` lists it.
    async fn pending(&self, token: &str, id: &str) -> Value {
        wait::until_some(&format!("an approval for {id}"), WITHIN, || async {
            let listed = self.call("GET", "/v1/approvals", token, None).await;
            assert_eq!(listed.status, StatusCode::OK, "{:#}", listed.body);
            listed.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["environment_id"] == id)
                .cloned()
        })
        .await
    }

    async fn decide(&self, token: &str, approval: &Value, verb: &str, comment: &str) -> Reply {
        let id = approval["id"].as_str().unwrap();
        self.call(
            "POST",
            &format!("/v1/approvals/{id}/{verb}"),
            token,
            Some(json!({ "comment": comment })),
        )
        .await
    }

    /// The provisioning run of environment `env`, with its steps.
    async fn provisioning(&self, env: &Value) -> Value {
        let run_id = env["current_run"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a run: {env:#}"))
            .to_owned();
        let run = self
            .call("GET", &format!("/v1/runs/{run_id}"), &self.bob, None)
            .await;
        assert_eq!(run.status, StatusCode::OK, "{:#}", run.body);
        run.body
    }
}

fn condition<'a>(env: &'a Value, name: &str) -> &'a Value {
    env["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == name)
        .unwrap_or_else(|| panic!("a condition {name}: {env:#}"))
}

#[tokio::test]
async fn an_approved_request_goes_on_and_the_environment_becomes_ready() {
    let lab = Lab::new().await;
    let env = lab
        .create(&lab.alice, "gated", json!({ "profile": "gpu" }))
        .await;
    let approval = lab.pending(&lab.bob, &env).await;
    assert_eq!(approval["requested_by"], "alice");
    assert_eq!(approval["approvers"]["role"], "operator");
    assert_eq!(approval["may_decide"], true);

    let waiting = lab.until_waiting(&env).await;
    assert_eq!(waiting["phase"], "provisioning", "{waiting:#}");
    let gate = condition(&waiting, "approval");
    assert_eq!(gate["reason"], "Waiting", "{gate:#}");
    assert_eq!(gate["message"], "waiting for approval by operator");
    // The requester sees their request, and that they may not decide it.
    let own = lab.pending(&lab.alice, &env).await;
    assert_eq!(own["may_decide"], false);

    let approved = lab
        .decide(&lab.bob, &approval, "approve", "budget confirmed")
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:#}", approved.body);
    assert_eq!(approved.body["state"], "approved");
    assert_eq!(approved.body["decided_by"], "bob");

    let ready = lab.until_phase(&env, "ready").await;
    let run = lab.provisioning(&ready).await;
    let step = &run["steps"][1];
    assert_eq!(step["name"], "approval");
    assert_eq!(step["output"]["approved_by"], "bob");
    assert_eq!(step["output"]["comment"], "budget confirmed");

    // The decision is in the audit trail once, as bob's, with its target.
    let audited: Vec<(Option<String>, String, Option<String>)> = sqlx::query_as(
        "SELECT actor, outcome, target_id FROM audit_log WHERE action = 'approval.approve'",
    )
    .fetch_all(lab.db.store.pool())
    .await
    .unwrap();
    let id = approval["id"].as_str().map(str::to_owned);
    assert_eq!(
        audited,
        [(Some("bob".to_owned()), "success".to_owned(), id)]
    );
}

#[tokio::test]
async fn a_denied_request_fails_its_run_and_tears_the_environment_down() {
    let lab = Lab::new().await;
    let env = lab.create(&lab.alice, "gated", json!({})).await;
    let approval = lab.pending(&lab.bob, &env).await;
    let denied = lab
        .decide(&lab.bob, &approval, "deny", "use the shared GPU hub")
        .await;
    assert_eq!(denied.status, StatusCode::OK, "{:#}", denied.body);
    assert_eq!(denied.body["state"], "denied");

    let gone = lab.until_phase(&env, "deleted").await;
    let run_id = approval["run_id"].as_str().unwrap();
    let run = lab
        .call("GET", &format!("/v1/runs/{run_id}"), &lab.bob, None)
        .await;
    assert_eq!(run.body["state"], "failed", "{:#}", run.body);
    assert_eq!(run.body["error"]["class"], "permanent");
    assert_eq!(
        run.body["error"]["message"], "denied by bob: use the shared GPU hub",
        "{:#}",
        run.body
    );
    assert_eq!(
        run.body["steps"][2]["state"], "pending",
        "the hub never ran"
    );
    let teardowns = lab
        .db
        .store
        .list_runs(
            &hubwright_state::store::run_list::RunFilter {
                environment_id: gone["id"].as_str().unwrap().parse().ok(),
                workflow: Some("teardown".to_owned()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(teardowns.len(), 1, "one teardown");
    assert_eq!(
        teardowns[0].created_by, "approval",
        "requested as actor approval"
    );
}

#[tokio::test]
async fn a_request_nobody_decides_by_its_deadline_fails_and_is_torn_down() {
    let lab = Lab::new().await;
    let env = lab.create(&lab.alice, "hasty", json!({})).await;
    let approval = lab.pending(&lab.bob, &env).await;
    lab.until_phase(&env, "deleted").await;

    let id = approval["id"].as_str().unwrap();
    let shown = lab
        .call("GET", &format!("/v1/approvals/{id}"), &lab.bob, None)
        .await;
    assert_eq!(shown.body["state"], "expired", "{:#}", shown.body);
    let run_id = approval["run_id"].as_str().unwrap();
    let run = lab
        .call("GET", &format!("/v1/runs/{run_id}"), &lab.bob, None)
        .await;
    assert_eq!(run.body["state"], "failed");
    let error = run.body["error"]["message"].as_str().unwrap();
    assert!(error.starts_with("no decision by "), "{error}");
    // Too late to decide.
    let late = lab
        .decide(&lab.bob, &approval, "approve", "sorry, was away")
        .await;
    late.assert_problem(StatusCode::CONFLICT, "conflict");
    assert!(
        late.body["detail"].as_str().unwrap().contains("expired"),
        "{:#}",
        late.body
    );
}

#[tokio::test]
async fn a_profile_that_needs_no_approval_passes_at_once() {
    let lab = Lab::new().await;
    let env = lab
        .create(&lab.alice, "gated", json!({ "profile": "minimal" }))
        .await;
    let ready = lab.until_phase(&env, "ready").await;
    let run = lab.provisioning(&ready).await;
    assert_eq!(
        run["steps"][1]["output"],
        json!({ "skipped": "not required" })
    );
    let listed = lab
        .call("GET", "/v1/approvals?state=all", &lab.bob, None)
        .await;
    assert_eq!(listed.body["items"], json!([]), "no approval was opened");
}
