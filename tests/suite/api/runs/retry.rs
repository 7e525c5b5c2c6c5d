//! `POST /v1/runs/{id}/retry`: operators resume a failed run from a step
//! named or numbered from 1, and bad bodies are problems.

use super::*;

#[tokio::test]
async fn only_operators_retry_and_a_retry_resumes_the_failed_run() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::failed_run(&db.store, "alice", "namespaces is forbidden").await;
    let path = format!("/v1/runs/{run}/retry");

    let developer = server
        .post(&path)
        .token(&alice)
        .json(&json!({}))
        .send()
        .await;
    developer.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        db.store.run(run).await.unwrap().state,
        RunState::Failed,
        "nothing changed"
    );

    let too_far = server
        .post(&path)
        .token(&ops)
        .json(&json!({"from_step": 2}))
        .send()
        .await;
    too_far.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        too_far.detail(),
        "from_step: step 2 (`second`) never ran; retry from the failed step, 1 (`first`), or an earlier one"
    );

    let accepted = server
        .post(&path)
        .token(&ops)
        .body("application/json", "")
        .send()
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    assert_eq!(
        accepted.body,
        json!({"run_id": run.to_string(), "resumes_at_step": 1, "resumes_at_step_name": "first"})
    );
    assert_eq!(db.store.run(run).await.unwrap().state, RunState::Pending);
    let retried = db.store.events(run, 0, 100).await.unwrap();
    assert!(
        retried
            .iter()
            .any(|e| e.kind == "run_retried" && e.actor == "ops"),
        "the operator is on the timeline"
    );

    let again = server
        .post(&path)
        .token(&ops)
        .body("application/json", "")
        .send()
        .await;
    again.assert_problem(StatusCode::CONFLICT, "conflict");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn bad_requests_get_problems_not_500s() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let run = factory::failed_run(&db.store, "alice", "boom").await;
    let retry = format!("/v1/runs/{run}/retry");
    let post = |content_type: &str, body: Vec<u8>| {
        server
            .post(&retry)
            .token(&ops)
            .body(content_type, body)
            .send()
    };

    let malformed = post("application/json", b"{not json".to_vec()).await;
    malformed.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    let wrong_type = post("text/plain", b"from_step=0".to_vec()).await;
    wrong_type.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let unknown_field = post("application/json", br#"{"step": 0}"#.to_vec()).await;
    unknown_field.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(unknown_field.detail().contains("unknown field `step`"));
    let not_text = post("application/json", vec![b'{', b'"', 0xff, 0xfe, b'"', b'}']).await;
    not_text.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    let wrong_type_field = post("application/json", br#"{"from_step": true}"#.to_vec()).await;
    wrong_type_field.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(
        wrong_type_field
            .detail()
            .contains("from_step must be a step name or a step number from 1"),
        "{}",
        wrong_type_field.detail()
    );
    let huge = format!(r#"{{"from_step": 0, "pad": "{}"}}"#, "x".repeat(100_000));
    let too_large = post("application/json", huge.into_bytes()).await;
    too_large.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");

    let not_a_uuid = server.get("/v1/runs/not-a-uuid").token(&ops).send().await;
    not_a_uuid.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    let missing = server
        .get(&format!("/v1/runs/{}", uuid::Uuid::now_v7()))
        .token(&ops)
        .send()
        .await;
    missing.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let unknown_route = server.get("/v1/nothing").token(&ops).send().await;
    unknown_route.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let wrong_method = server.delete(&format!("/v1/runs/{run}/retry")).send().await;
    wrong_method.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    let bad_resume = server
        .get(&format!("/v1/runs/{run}/events"))
        .token(&ops)
        .header("accept", "text/event-stream")
        .header("last-event-id", "yesterday")
        .send()
        .await;
    bad_resume.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(bad_resume.detail().starts_with("Last-Event-ID: "));

    assert_eq!(
        db.store.run(run).await.unwrap().state,
        RunState::Failed,
        "no bad request changed anything"
    );
    drop(server);
    db.drop_now().await;
}

/// A provisioning workflow whose second step fails until `fixed` exists.
fn gated(fixed: &std::path::Path) -> String {
    format!(
        r#"
name: gated
workflows:
  provision:
    steps:
      - {{ name: namespace, kind: noop }}
      - {{ name: gate, kind: test-fail, with: {{ message: "quota exceeded", until_exists: "{}" }} }}
      - {{ name: hub, kind: noop }}
  teardown:
    steps:
      - {{ name: remove, kind: noop }}
"#,
        fixed.display()
    )
}

#[tokio::test]
async fn an_operator_retries_from_a_step_by_name_or_by_its_number_from_one() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("retry-by-name");
    let fixed = scratch_dir("retry-by-name-cause").join("fixed");
    let workflows = write_workflow(&dir, "gated", &gated(&fixed));
    let server = ApiServer::start(&db, &workflows, &["--worker", "--poll-interval", "100ms"]).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let created = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({"name": "gated", "template": "gated"}))
        .send()
        .await;
    let run: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();
    wait::run_state(&db.store, run, RunState::Failed, Duration::from_secs(20)).await;
    let retry = |body: serde_json::Value| {
        server
            .post(&format!("/v1/runs/{run}/retry"))
            .token(&ops)
            .json(&body)
            .send()
    };

    let unknown = retry(json!({"from_step": "helm"})).await;
    unknown.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        unknown.detail(),
        "from_step: must be a step name (namespace, gate, hub) or a number from 1 to 3 (got `helm`)"
    );
    for (number, shown) in [
        (json!(4), "4"),
        (json!(0), "0"),
        (json!(-1), "-1"),
        (json!(i64::MIN), "-9223372036854775808"),
    ] {
        let out_of_range = retry(json!({ "from_step": number })).await;
        out_of_range.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert_eq!(
            out_of_range.detail(),
            format!(
                "from_step: must be a step name (namespace, gate, hub) or a number from 1 to 3 (got {shown})"
            )
        );
    }
    let not_yet = retry(json!({"from_step": "hub"})).await;
    not_yet.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        not_yet.detail(),
        "from_step: step 3 (`hub`) never ran; retry from the failed step, 2 (`gate`), or an earlier one"
    );
    assert_eq!(
        db.store.run(run).await.unwrap().state,
        RunState::Failed,
        "no refused retry changed anything"
    );

    // By name, from before the failure: the namespace step runs again and
    // the gate fails again, the cause not being fixed yet.
    let by_name = retry(json!({"from_step": "namespace"})).await;
    assert_eq!(by_name.status, StatusCode::ACCEPTED, "{:#}", by_name.body);
    assert_eq!(
        by_name.body,
        json!({"run_id": run.to_string(), "resumes_at_step": 1, "resumes_at_step_name": "namespace"})
    );
    wait::run_state(&db.store, run, RunState::Failed, Duration::from_secs(20)).await;
    let namespace_done = db
        .store
        .events(run, 0, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == "step_succeeded" && e.step_idx == Some(0))
        .count();
    assert_eq!(namespace_done, 2, "the named step ran again");

    // By number, once the cause is fixed: it resumes at the gate and succeeds.
    std::fs::write(&fixed, "").unwrap();
    let by_number = retry(json!({"from_step": 2})).await;
    assert_eq!(
        by_number.status,
        StatusCode::ACCEPTED,
        "{:#}",
        by_number.body
    );
    assert_eq!(
        by_number.body,
        json!({"run_id": run.to_string(), "resumes_at_step": 2, "resumes_at_step_name": "gate"})
    );
    wait::run_state(&db.store, run, RunState::Succeeded, Duration::from_secs(20)).await;
    let retried: Vec<String> = db
        .store
        .events(run, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "run_retried")
        .map(|e| e.message)
        .collect();
    assert_eq!(
        retried,
        [
            "ops retried the run from step 1 (namespace)",
            "ops retried the run from step 2 (gate)"
        ],
        "the timeline numbers steps as people do"
    );
    drop(server);
    db.drop_now().await;
}
