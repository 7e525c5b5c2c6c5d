//! `GET /v1/runs`: newest first, each filter, cursors, who sees what, and
//! problems that name the bad parameter.

use hubwright_testkit::server::Reply;
use serde_json::Value;

use super::*;

const LAB: &str = r#"
name: lab
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// A server with the `lab` template and no worker: runs stay where the API
/// and the factory leave them.
async fn serve_lab(db: &TestDatabase) -> ApiServer {
    let dir = write_workflow(&scratch_dir("run-list"), "lab", LAB);
    ApiServer::start(db, &dir, &[]).await
}

/// The ids of a page, in order.
fn ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {:#}", reply.body))
        .iter()
        .map(|run| run["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Asks for an environment; returns its id and its provisioning run's.
async fn request(server: &ApiServer, token: &str, name: &str) -> (String, String) {
    let created = server
        .post("/v1/environments")
        .token(token)
        .json(&json!({"name": name, "template": "lab"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    (
        created.body["environment"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        created.body["run_id"].as_str().unwrap().to_owned(),
    )
}

/// Deletes an environment; returns its teardown run's id.
async fn delete(server: &ApiServer, token: &str, environment: &str) -> String {
    let deleted = server
        .delete(&format!("/v1/environments/{environment}"))
        .token(token)
        .send()
        .await;
    assert_eq!(deleted.body["teardown"], "started", "{:#}", deleted.body);
    deleted.body["run_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn runs_are_listed_newest_first_and_cursors_page_through_them_all() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(factory::pending_run(&db.store, "alice").await.to_string());
    }
    made.reverse();

    let mut seen = Vec::new();
    let mut path = "/v1/runs?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = server.get(&path).token(&ops).send().await;
        let got = ids(&page);
        assert!(got.len() <= 2, "a page holds at most `limit` runs");
        seen.extend(got);
        pages += 1;
        match &page.body["next_cursor"] {
            Value::String(cursor) => path = format!("/v1/runs?limit=2&cursor={cursor}"),
            Value::Null => break,
            other => panic!("next_cursor: {other}"),
        }
    }
    assert_eq!(seen, made, "every run once, newest first");
    assert_eq!(pages, 3);

    let everything = server.get("/v1/runs").token(&ops).send().await;
    assert_eq!(ids(&everything), made, "the default page holds them all");
    assert_eq!(everything.body["next_cursor"], Value::Null);
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn each_run_filter_narrows_the_list() {
    let db = TestDatabase::create().await;
    let server = serve_lab(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let bob = token(&db.store, "bob", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let failed = factory::failed_run(&db.store, "alice", "boom")
        .await
        .to_string();
    let (alices_env, alices_provision) = request(&server, &alice, "mine").await;
    let (bobs_env, bobs_provision) = request(&server, &bob, "theirs").await;
    // An operator deletes bob's: the idle provisioning run is cancelled, and
    // the teardown, started by the operator, is still bob's.
    let bobs_teardown = delete(&server, &ops, &bobs_env).await;
    let list = |query: String| {
        let server = &server;
        let ops = &ops;
        async move {
            ids(&server
                .get(&format!("/v1/runs?{query}"))
                .token(ops)
                .send()
                .await)
        }
    };

    assert_eq!(
        list(String::new()).await,
        [
            bobs_teardown.as_str(),
            bobs_provision.as_str(),
            alices_provision.as_str(),
            failed.as_str()
        ]
    );
    assert_eq!(list("state=failed".into()).await, [failed.as_str()]);
    assert_eq!(
        list("state=cancelled".into()).await,
        [bobs_provision.as_str()]
    );
    assert_eq!(
        list("state=pending".into()).await,
        [bobs_teardown.as_str(), alices_provision.as_str()]
    );
    assert_eq!(
        list(format!("environment={alices_env}")).await,
        [alices_provision.as_str()]
    );
    assert_eq!(
        list(format!("environment={bobs_env}")).await,
        [bobs_teardown.as_str(), bobs_provision.as_str()]
    );
    assert_eq!(list("template=factory".into()).await, [failed.as_str()]);
    assert_eq!(
        list("template=lab".into()).await,
        [
            bobs_teardown.as_str(),
            bobs_provision.as_str(),
            alices_provision.as_str()
        ]
    );
    assert_eq!(list("kind=teardown".into()).await, [bobs_teardown.as_str()]);
    assert_eq!(
        list("kind=provision&state=pending".into()).await,
        [alices_provision.as_str()]
    );
    assert_eq!(
        list("owner=bob".into()).await,
        [bobs_teardown.as_str(), bobs_provision.as_str()],
        "runs of bob's environments, whoever started them"
    );
    assert_eq!(
        list("owner=alice".into()).await,
        [alices_provision.as_str(), failed.as_str()],
        "and runs alice started on no environment"
    );
    assert!(list("owner=ops".into()).await.is_empty());

    // `since` keeps runs created at or after the time.
    let alices: Reply = server
        .get(&format!("/v1/runs/{alices_provision}"))
        .token(&ops)
        .send()
        .await;
    // UTC timestamps end in `Z`: nothing in them needs escaping in a query.
    let since = alices.body["created_at"].as_str().unwrap();
    assert!(since.ends_with('Z'), "{since}");
    assert_eq!(
        list(format!("since={since}")).await,
        [
            bobs_teardown.as_str(),
            bobs_provision.as_str(),
            alices_provision.as_str()
        ]
    );
    assert!(
        list("since=2999-01-01T00:00:00Z".into()).await.is_empty(),
        "nothing was created in the future"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_developer_lists_the_runs_of_their_environments_and_not_anothers() {
    let db = TestDatabase::create().await;
    let server = serve_lab(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let bob = token(&db.store, "bob", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let (alices_env, alices_provision) = request(&server, &alice, "mine").await;
    let (_, bobs_provision) = request(&server, &bob, "theirs").await;
    let alices_own = factory::pending_run(&db.store, "alice").await.to_string();
    // The operator's teardown of alice's environment is hers to see, as the
    // scheduler's would be.
    let teardown = delete(&server, &ops, &alices_env).await;
    let as_ =
        |token: &str, query: &str| server.get(&format!("/v1/runs{query}")).token(token).send();

    let hers = ids(&as_(&alice, "").await);
    assert_eq!(
        hers,
        [
            teardown.as_str(),
            alices_own.as_str(),
            alices_provision.as_str()
        ]
    );
    assert_eq!(ids(&as_(&alice, "?owner=alice").await), hers);
    assert!(
        ids(&as_(&alice, "?owner=bob").await).is_empty(),
        "asking for another owner finds nothing"
    );
    assert_eq!(
        ids(&as_(&alice, &format!("?environment={alices_env}")).await),
        [teardown.as_str(), alices_provision.as_str()]
    );
    assert_eq!(ids(&as_(&bob, "").await), [bobs_provision.as_str()]);

    // The single run answers the same way the list does.
    let shown = server
        .get(&format!("/v1/runs/{teardown}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:#}", shown.body);
    assert_eq!(shown.body["created_by"], "ops");
    assert_eq!(shown.body["owner"], "alice");
    let events = server
        .get(&format!("/v1/runs/{teardown}/events"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(events.status, StatusCode::OK);
    let hidden = server
        .get(&format!("/v1/runs/{teardown}"))
        .token(&bob)
        .send()
        .await;
    hidden.assert_problem(StatusCode::NOT_FOUND, "not-found");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_bad_run_filter_is_a_problem_that_names_the_parameter() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    for (query, parameter) in [
        ("state=broken", "state: must be one of pending, running"),
        ("state=", "state: "),
        ("environment=lab", "environment: must be a UUID"),
        ("since=yesterday", "since: must be an RFC 3339 timestamp"),
        ("since=2026-12-06", "since: "),
        ("cursor=2", "cursor: must be a UUID"),
        ("limit=0", "limit: must be a whole number from 1 to 200"),
        ("limit=201", "limit: "),
        ("limit=ten", "limit: "),
        ("colour=red", "colour: is not a parameter of this operation"),
    ] {
        let reply = server
            .get(&format!("/v1/runs?{query}"))
            .token(&ops)
            .send()
            .await;
        reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert!(
            reply.detail().starts_with(parameter),
            "{query}: {}",
            reply.detail()
        );
    }
    let anonymous = server.get("/v1/runs").send().await;
    anonymous.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    drop(server);
    db.drop_now().await;
}
