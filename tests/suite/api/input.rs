//! Characters Postgres cannot store (a NUL, U+0000) and query strings that
//! are not UTF-8, in every place a request carries text: each is a 422 that
//! names the field, never a 5xx from the database.

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::json;

const LAB: &str = r#"
name: lab
parameters:
  note: { type: string, default: "" }
workflows:
  provision:
    steps:
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// Asserts a 422 whose one error names query or path parameter `name`.
#[track_caller]
fn names_parameter(reply: &Reply, name: &str) {
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        reply.body["errors"],
        json!([{ "parameter": name, "rule": reply.body["errors"][0]["rule"] }]),
        "{:#}",
        reply.body
    );
}

/// Asserts a 422 whose one error points at `pointer` in the body, for a NUL.
#[track_caller]
fn points_at(reply: &Reply, pointer: &str) {
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        reply.body["errors"][0]["pointer"], pointer,
        "{:#}",
        reply.body
    );
    assert!(
        reply.body["errors"][0]["rule"]
            .as_str()
            .is_some_and(|rule| rule.contains("NUL")),
        "{:#}",
        reply.body
    );
}

#[tokio::test]
async fn a_nul_anywhere_in_a_request_is_a_422_naming_the_field_and_never_a_5xx() {
    let db = TestDatabase::create().await;
    let workflows = write_workflow(&scratch_dir("nul-input"), "lab", LAB);
    let server = ApiServer::start(&db, &workflows, &[]).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let mut replies = Vec::new();

    let runs = server
        .get("/v1/runs?template=%00")
        .token(&alice)
        .send()
        .await;
    names_parameter(&runs, "template");
    replies.push(runs);
    let envs = server
        .get("/v1/environments?template=%00")
        .token(&alice)
        .send()
        .await;
    names_parameter(&envs, "template");
    replies.push(envs);
    let owner = server
        .get("/v1/environments?owner=a%00b")
        .token(&root)
        .send()
        .await;
    names_parameter(&owner, "owner");
    replies.push(owner);
    let owner_of_runs = server.get("/v1/runs?owner=a%00b").token(&root).send().await;
    names_parameter(&owner_of_runs, "owner");
    replies.push(owner_of_runs);
    let not_utf8 = server
        .get("/v1/runs?owner=%FF%FE")
        .token(&root)
        .send()
        .await;
    names_parameter(&not_utf8, "owner");
    assert!(not_utf8.detail().contains("UTF-8"), "{:#}", not_utf8.body);
    replies.push(not_utf8);

    for path in ["/v1/environments/a%00b", "/v1/environments/a%00b/extend"] {
        let method = if path.ends_with("extend") {
            "POST"
        } else {
            "GET"
        };
        let reply = server.request(method, path).token(&alice).send().await;
        names_parameter(&reply, "id");
        replies.push(reply);
    }
    let not_utf8_path = server
        .get("/v1/environments/%FF%FE")
        .token(&alice)
        .send()
        .await;
    names_parameter(&not_utf8_path, "id");
    replies.push(not_utf8_path);
    let deleted = server
        .delete("/v1/environments/a%00b")
        .token(&alice)
        .send()
        .await;
    names_parameter(&deleted, "id");
    replies.push(deleted);

    let name = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": "lab\u{0}", "template": "lab" }))
        .send()
        .await;
    points_at(&name, "/name");
    replies.push(name);
    let parameter = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": "lab", "template": "lab", "parameters": { "note": "a\u{0}b" } }))
        .send()
        .await;
    points_at(&parameter, "/parameters/note");
    replies.push(parameter);
    let subject = server
        .post("/v1/tokens")
        .token(&root)
        .json(&json!({ "subject": "eve\u{0}", "role": "developer" }))
        .send()
        .await;
    points_at(&subject, "/subject");
    replies.push(subject);

    assert!(
        replies.iter().all(|reply| !reply.status.is_server_error()),
        "no 5xx"
    );
    let metrics = server.get("/metrics").token(&root).send().await;
    assert!(
        !metrics
            .text()
            .lines()
            .any(|line| line.starts_with("hubwright_http_requests_total")
                && line.contains("status=\"5")),
        "no 5xx counted:\n{}",
        metrics.text()
    );
    let listed = server.get("/v1/environments").token(&alice).send().await;
    assert_eq!(listed.body["items"], json!([]), "nothing was stored");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn text_the_database_refuses_is_an_input_problem_not_an_outage() {
    let db = TestDatabase::create().await;
    // Straight to the store: the API's own checks never let this through.
    let err = db
        .store
        .live_environment_by_name("alice", "a\0b")
        .await
        .unwrap_err();
    assert!(
        matches!(err, hubwright_state::Error::Unstorable(_)),
        "{err:?}"
    );
    let problem = hubwright_api::Problem::from(err);
    assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem.errors()[0].rule.contains("NUL"), "{problem:?}");
    db.drop_now().await;
}
