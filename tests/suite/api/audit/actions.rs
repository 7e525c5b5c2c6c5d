//! What is recorded: each state-changing call once, with who, what, which
//! target, from where and how it ended; reads are not; a failed write after
//! a call does not fail it; a creation commits with its record.

use super::*;
use hubwright_testkit::factory;

#[tokio::test]
async fn each_state_changing_call_is_recorded_exactly_once_with_its_actor_and_outcome() {
    let audited = Audited::start().await;
    let server = &audited.server;
    let root = &audited.root;
    let alice = token(&audited.db.store, "alice", Role::Developer).await;
    let ops = token(&audited.db.store, "ops", Role::Operator).await;

    let request = json!({"name": "lab-1", "template": "lab"});
    let create = || {
        server
            .post("/v1/environments")
            .token(&alice)
            .header("idempotency-key", "lab-1-once")
            .json(&request)
    };
    let created = create().send().await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let replayed = create().send().await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED);
    let env = created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(replayed.body["environment"]["id"], env.as_str(), "a replay");
    let provision = created.body["run_id"].as_str().unwrap().to_owned();
    let refused = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({"name": "Not A Label", "template": "lab"}))
        .send()
        .await;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    let extended = server
        .post("/v1/environments/lab-1/extend")
        .token(&alice)
        .json(&json!({"ttl": "2h"}))
        .send()
        .await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    let cancelled = server
        .post(&format!("/v1/runs/{provision}/cancel"))
        .token(&ops)
        .send()
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::ACCEPTED,
        "{:#}",
        cancelled.body
    );
    let failed = factory::failed_run(&audited.db.store, "alice", "boom").await;
    let retry = format!("/v1/runs/{failed}/retry");
    let retried = server.post(&retry).token(&ops).send().await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{:#}", retried.body);
    let deleted = server
        .delete("/v1/environments/lab-1")
        .token(&alice)
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:#}", deleted.body);
    let carol = server
        .post("/v1/tokens")
        .token(root)
        .json(&json!({"subject": "carol", "role": "developer"}))
        .send()
        .await;
    assert_eq!(carol.status, StatusCode::CREATED);
    let carol_id = carol.body["id"].as_str().unwrap().to_owned();
    let revoked = server
        .delete(&format!("/v1/tokens/{carol_id}"))
        .token(root)
        .send()
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let forbidden = server.post(&retry).token(&alice).send().await;
    forbidden.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let nobody = server
        .post("/v1/environments")
        .token("hw_not-a-token")
        .json(&request)
        .send()
        .await;
    nobody.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    // Reads change nothing and are not recorded.
    let listed = server.get("/v1/environments").token(&alice).send().await;
    assert_eq!(listed.status, StatusCode::OK);

    let entries = audited.entries("").await;
    let mut expected = vec![
        json!(["environment.create", "alice", env, "success", 202]),
        json!(["environment.create", "alice", null, "failure", 422]),
        json!(["environment.extend", "alice", env, "success", 200]),
        json!(["run.cancel", "ops", provision, "success", 202]),
        json!(["run.retry", "ops", failed.to_string(), "success", 202]),
        json!(["environment.delete", "alice", env, "success", 202]),
        json!(["token.create", "root", carol_id, "success", 201]),
        json!(["token.revoke", "root", carol_id, "success", 200]),
        json!(["run.retry", "alice", failed.to_string(), "failure", 403]),
        json!(["environment.create", null, null, "failure", 401]),
    ];
    expected.reverse();
    let got: Vec<Value> = entries.iter().map(summary).collect();
    assert_eq!(got, expected, "newest first, each once");

    let by_action = |action: &str, status: u16| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["status"] == status)
            .unwrap()
            .clone()
    };
    let refusal = by_action("environment.create", 422);
    assert_eq!(refusal["problem_type"], "/docs/problems/invalid-request");
    assert!(
        refusal["detail"].as_str().unwrap().starts_with("name:"),
        "{refusal:#}"
    );
    let unknown = by_action("environment.create", 401);
    assert_eq!(unknown["auth"], "none");
    assert_eq!(unknown["actor_role"], Value::Null);
    assert_eq!(unknown["problem_type"], "/docs/problems/unauthorized");
    let cancel = by_action("run.cancel", 202);
    assert_eq!(cancel["auth"], "token");
    assert_eq!(cancel["actor_role"], "operator");
    assert_eq!(cancel["target_kind"], "run");
    assert_eq!(cancel["problem_type"], Value::Null);
    assert_eq!(cancel["method"], "POST");
    assert_eq!(cancel["path"], format!("/v1/runs/{provision}/cancel"));
    assert!(
        entries.iter().all(|e| e["client_addr"] == "127.0.0.1"),
        "from where: {entries:#?}"
    );
    assert!(
        entries.iter().all(|e| e["channel"] == "api"),
        "which way: {entries:#?}"
    );
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains(carol.body["secret"].as_str().unwrap()),
        "a created token's secret is never recorded"
    );
    audited.finish().await;
}

#[tokio::test]
async fn an_audit_write_that_fails_after_the_call_is_logged_and_counted_but_the_call_succeeds() {
    let audited = Audited::start().await;
    let pool = audited.db.store.pool();
    sqlx::query("ALTER TABLE audit_log RENAME TO audit_log_away")
        .execute(pool)
        .await
        .unwrap();
    let created = audited
        .server
        .post("/v1/tokens")
        .token(&audited.root)
        .json(&json!({"subject": "carol", "role": "developer"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    sqlx::query("ALTER TABLE audit_log_away RENAME TO audit_log")
        .execute(pool)
        .await
        .unwrap();

    assert!(write_failures(&audited).await >= 1.0);
    assert!(audited.entries("action=token.create").await.is_empty());
    audited.finish().await;
}

#[tokio::test]
async fn a_creation_and_its_audit_record_commit_together_or_not_at_all() {
    let audited = Audited::start().await;
    let pool = audited.db.store.pool();
    let create = || {
        audited
            .server
            .post("/v1/environments")
            .token(&audited.root)
            .header("idempotency-key", "lab-1-key")
            .json(&json!({"name": "lab-1", "template": "lab"}))
    };
    sqlx::query("ALTER TABLE audit_log RENAME TO audit_log_away")
        .execute(pool)
        .await
        .unwrap();
    let failed = create().send().await;
    assert!(failed.status.is_server_error(), "{failed:?}");
    let stored: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM environments), (SELECT count(*) FROM runs),
                (SELECT count(*) FROM idempotency_keys)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        stored,
        (0, 0, 0),
        "nothing of the creation without its record"
    );
    sqlx::query("ALTER TABLE audit_log_away RENAME TO audit_log")
        .execute(pool)
        .await
        .unwrap();

    let created = create().send().await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let again = create().send().await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{:#}", again.body);
    let env = created.body["environment"]["id"].as_str().unwrap();
    let entries = audited.entries("action=environment.create").await;
    let got: Vec<Value> = entries.iter().map(summary).collect();
    assert_eq!(
        got,
        [json!(["environment.create", "root", env, "success", 202])],
        "the creation once, the replay not again"
    );
    assert_eq!(entries[0]["path"], "/v1/environments");
    assert_eq!(entries[0]["client_addr"], "127.0.0.1");
    assert_eq!(entries[0]["channel"], "api");
    assert_eq!(entries[0]["actor_role"], "admin");
    audited.finish().await;
}

/// `hubwright_audit_write_failures_total` of the server.
async fn write_failures(audited: &Audited) -> f64 {
    let metrics = audited
        .server
        .get("/metrics")
        .token(&audited.root)
        .send()
        .await;
    metrics
        .text()
        .lines()
        .find_map(|line| line.strip_prefix("hubwright_audit_write_failures_total "))
        .unwrap_or_else(|| panic!("the counter is exported: {}", metrics.text()))
        .parse()
        .unwrap()
}
