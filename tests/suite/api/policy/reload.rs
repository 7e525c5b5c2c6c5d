//! Reloading the policy file without a restart: SIGHUP, or a poll that sees
//! the file change. A file with an error leaves the policy in force alone and
//! says why.

use std::time::Duration;

use hubwright_testkit::process::Process;
use hubwright_testkit::wait;

use super::*;
use crate::BIN;

const WITHIN: Duration = Duration::from_secs(30);

/// `GET /v1/policy` as an operator.
async fn policy(server: &ApiServer, operator: &str) -> Value {
    let reply = server.get("/v1/policy").token(operator).send().await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    reply.body
}

#[tokio::test]
async fn a_reload_on_sighup_with_an_error_keeps_the_old_policy_and_says_why() {
    let db = TestDatabase::create().await;
    let (workflows, path) = files("defaults: { environments: 1 }\n");
    let flag = path.display().to_string();
    let server = ApiServer::start_process(
        BIN,
        &db,
        &workflows,
        &["--policy", &flag, "--policy-poll-interval", "0s"],
    )
    .await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let carol = token(&db.store, "carol", Role::Operator).await;
    let create = |name: &str| {
        server
            .post("/v1/environments")
            .token(&alice)
            .json(&hub(name, json!({})))
            .send()
    };
    assert_eq!(create("one").await.status, StatusCode::ACCEPTED);
    assert_limit(
        &create("two").await,
        "environments",
        json!(1),
        json!(1),
        "defaults.environments",
    );
    let loaded = policy(&server, &carol).await;

    std::fs::write(&path, "defaults: { environments: lots }\n").unwrap();
    server.process().signal("HUP");
    let failed = wait::until_some("the failed reload to be reported", WITHIN, || async {
        let body = policy(&server, &carol).await;
        body["last_reload_error"].is_string().then_some(body)
    })
    .await;
    let why = failed["last_reload_error"].as_str().unwrap();
    assert!(
        why.contains("policy.yaml: defaults.environments:") && why.contains("lots"),
        "{why}"
    );
    assert_eq!(
        failed["policy"], loaded["policy"],
        "the old policy stays in force"
    );
    assert_eq!(failed["digest"], loaded["digest"]);
    server
        .process()
        .wait_for_log(
            "the policy file does not load; the policy in force stays",
            WITHIN,
        )
        .await;
    assert_limit(
        &create("two").await,
        "environments",
        json!(1),
        json!(1),
        "defaults.environments",
    );

    std::fs::write(&path, "defaults: { environments: 2 }\n").unwrap();
    server.process().signal("HUP");
    wait::until("the fixed file to be in force", WITHIN, || async {
        policy(&server, &carol).await["last_reload_error"].is_null()
    })
    .await;
    assert_eq!(create("two").await.status, StatusCode::ACCEPTED);
    assert_limit(
        &create("three").await,
        "environments",
        json!(2),
        json!(2),
        "defaults.environments",
    );
    // Both reloads are in the audit trail once each, by `system`: the
    // failed one with its error, the applied one with the new digest. A
    // reload is in force before its entry is written
    // (`crates/api/src/reload.rs`): wait for the second.
    wait::until("the second reload's audit entry", WITHIN, || async {
        let entries: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'policy.reload'")
                .fetch_one(db.store.pool())
                .await
                .unwrap();
        entries >= 2
    })
    .await;
    let reloads: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT actor, outcome, detail FROM audit_log WHERE action = 'policy.reload' ORDER BY id",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    let outcomes: Vec<(&str, &str)> = reloads
        .iter()
        .map(|(actor, outcome, _)| (actor.as_str(), outcome.as_str()))
        .collect();
    assert_eq!(outcomes, [("system", "failure"), ("system", "success")]);
    assert!(
        reloads[0].2.as_deref().unwrap_or_default().contains(why),
        "{reloads:?}"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_changed_policy_file_is_picked_up_by_the_poll_and_a_broken_one_is_not() {
    let api = Guarded::start(
        "defaults: { environments: 1 }\n",
        &["--policy-poll-interval", "100ms"],
    )
    .await;
    let alice = api.token("alice", Role::Developer).await;
    let carol = api.token("carol", Role::Operator).await;
    let limit =
        || async { api.get(&alice, "/v1/policy/me").await.body["limits"][0]["value"].clone() };
    assert_eq!(limit().await, json!(1));

    std::fs::write(&api.policy, "defaults: { environments: 4 }\n").unwrap();
    wait::until("the new limit to apply", WITHIN, || async {
        limit().await == json!(4)
    })
    .await;

    std::fs::write(
        &api.policy,
        "defaults: { environments: 5 }\ngroups: [oops]\n",
    )
    .unwrap();
    let why = wait::until_some("the error to be reported", WITHIN, || async {
        api.get(&carol, "/v1/policy").await.body["last_reload_error"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    assert!(why.contains("groups"), "{why}");
    assert_eq!(limit().await, json!(4), "the policy in force stays");
    api.finish().await;
}

#[tokio::test]
async fn serve_does_not_start_with_a_policy_file_that_has_an_error() {
    let db = TestDatabase::create().await;
    let (workflows, path) = files("templates: { nope: {} }\n");
    let (workflows, policy) = (workflows.display().to_string(), path.display().to_string());
    let log = scratch_dir("policy-start").join("serve.log");
    let mut process = Process::start(
        Path::new(BIN),
        &db.url,
        &[
            "serve",
            "--api",
            "--listen",
            "127.0.0.1:0",
            "--workflows",
            &workflows,
            "--policy",
            &policy,
        ],
        &log,
    );
    let code = process.wait_exit(WITHIN).await;
    assert_ne!(code, Some(0));
    let text = process.log_text();
    assert!(
        text.contains(&format!(
            "{policy}: templates.nope: no template named `nope` (known: hub, lab)"
        )),
        "{text}"
    );
    db.drop_now().await;
}
