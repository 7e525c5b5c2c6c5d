//! Problem documents: each `type` is a page hubwright serves, open, that says
//! what the problem means and what to do; a 422 lists each broken rule and
//! where (a JSON Pointer into the body, a parameter, or a header).

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::json;

const LAB: &str = r#"
name: lab
parameters:
  cpu: { type: number, default: 1, minimum: 0.5, maximum: 4 }
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
  teardown:
    steps:
      - { name: only, kind: noop }
"#;

async fn serve(db: &TestDatabase) -> ApiServer {
    let dir = write_workflow(&scratch_dir("problems"), "lab", LAB);
    ApiServer::start(db, &dir, &[]).await
}

#[tokio::test]
async fn every_problem_type_the_api_answers_with_is_a_page_anyone_can_read() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let answers: Vec<Reply> = vec![
        server.get("/v1/environments").send().await,
        server.get("/v1/tokens").token(&alice).send().await,
        server
            .get("/v1/environments/nothing")
            .token(&alice)
            .send()
            .await,
        server
            .request("PUT", "/v1/environments")
            .token(&alice)
            .send()
            .await,
        server
            .post("/v1/environments")
            .token(&alice)
            .body("text/plain", "lab")
            .send()
            .await,
        server
            .post("/v1/environments")
            .token(&alice)
            .body("application/json", "{")
            .send()
            .await,
        server
            .post("/v1/environments")
            .token(&alice)
            .json(&json!({"name": "Lab"}))
            .send()
            .await,
    ];
    let mut seen = Vec::new();
    for answer in &answers {
        let kind = answer.body["type"].as_str().unwrap();
        assert!(kind.starts_with("/docs/problems/"), "{:#}", answer.body);
        seen.push(answer.status.as_u16());
        let page = server.get(kind).send().await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "{kind} resolves, without a token"
        );
        assert!(page.content_type().starts_with("text/html"), "{kind}");
        let html = page.text();
        let title = answer.body["title"].as_str().unwrap();
        assert!(
            html.contains(&format!("<h1>{title}</h1>")),
            "{kind}: {html}"
        );
        assert!(html.contains("What it means") && html.contains("What to do"));
        assert!(html.contains(&format!("HTTP {}", answer.status.as_u16())));
    }
    assert_eq!(seen, [401, 403, 404, 405, 415, 400, 422]);

    let index = server.get("/docs/problems").send().await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(
        index
            .text()
            .contains("href=\"/docs/problems/invalid-request\"")
    );
    db.drop_now().await;
}

#[tokio::test]
async fn an_unknown_problem_type_is_a_404() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let missing = server.get("/docs/problems/no-such-problem").send().await;
    missing.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(missing.detail(), "no problem type `no-such-problem`");
    db.drop_now().await;
}

#[tokio::test]
async fn a_422_lists_where_each_rule_was_broken() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;

    // A field deep in the body: a JSON Pointer to it.
    let body = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({"name": "lab", "template": "lab", "parameters": {"cpu": 8}}))
        .send()
        .await;
    body.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        body.body["errors"],
        json!([{"pointer": "/parameters/cpu", "rule": "must be at most 4"}])
    );
    assert_eq!(body.detail(), "parameters.cpu: must be at most 4");

    // Query parameters, a value that does not fit, out of bounds, unknown.
    for (query, parameter, rule) in [
        ("limit=ten", "limit", "invalid digit found in string"),
        ("limit=0", "limit", "must be between 1 and 200"),
        ("phase=sleeping", "phase", "unknown variant `sleeping`"),
        (
            "colour=red",
            "colour",
            "is not a parameter of this operation",
        ),
        (
            "expiring_within=soon",
            "expiring_within",
            "`soon` is not a duration",
        ),
    ] {
        let reply = server
            .get(&format!("/v1/environments?{query}"))
            .token(&alice)
            .send()
            .await;
        reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        let errors = reply.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{query}: {:#}", reply.body);
        assert_eq!(errors[0]["parameter"], parameter, "{query}");
        assert!(errors[0].get("pointer").is_none(), "{query}");
        assert!(
            errors[0]["rule"].as_str().unwrap().starts_with(rule),
            "{query}: {:#}",
            reply.body
        );
    }

    // A path parameter and a header.
    let path = server.get("/v1/runs/1").token(&ops).send().await;
    path.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(path.body["errors"][0]["parameter"], "id");
    let header = server
        .post("/v1/environments")
        .token(&alice)
        .header("idempotency-key", "a b")
        .json(&json!({"name": "lab", "template": "lab"}))
        .send()
        .await;
    header.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        header.body["errors"],
        json!([{"header": "Idempotency-Key",
                "rule": "must be 1 to 200 printable ASCII characters without spaces"}])
    );

    // Other problems carry no list.
    let missing = server
        .get("/v1/environments/nothing")
        .token(&alice)
        .send()
        .await;
    assert!(missing.body.get("errors").is_none(), "{:#}", missing.body);
    db.drop_now().await;
}
