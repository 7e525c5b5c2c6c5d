//! `/v1/environments`: the phase following the runs, and deletion.

use super::*;

#[tokio::test]
async fn deleting_cancels_provisioning_tears_down_and_a_second_delete_is_harmless() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "short-lived", "template": "lab"}))
        .await;
    let id = environment_id(&created);
    let provision: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();

    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(
        deleted.body["teardown"], "started",
        "the idle provisioning run was cancelled first"
    );
    assert_eq!(
        api.store().run(provision).await.unwrap().state,
        RunState::Cancelled
    );
    let stopped = api.store().events(provision, 0, 100).await.unwrap();
    assert!(
        stopped
            .iter()
            .any(|e| e.kind == "run_cancelled" && e.actor == "alice"),
        "who stopped it is on the run's timeline"
    );
    let again = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["teardown"], "already_requested");

    let worker = spawn_worker(api.store(), fast_config("w"));
    let teardown: uuid::Uuid = deleted.body["run_id"].as_str().unwrap().parse().unwrap();
    api.run_succeeds(teardown).await;
    worker.shutdown().await.unwrap();
    let env = api.store().environment(id.parse().unwrap()).await.unwrap();
    assert_eq!(env.phase.to_string(), "deleted");
    let listed = api.call("GET", "/v1/environments", &alice, None).await;
    assert_eq!(
        listed.body["items"],
        json!([]),
        "deleted environments are not listed by default"
    );
    let with_deleted = api
        .call("GET", "/v1/environments?include_deleted=true", &alice, None)
        .await;
    assert_eq!(names(&with_deleted), ["short-lived"]);
    api.finish().await;
}

#[tokio::test]
async fn the_phase_follows_the_runs_from_requested_to_ready() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id: uuid::Uuid = environment_id(&created).parse().unwrap();
    let run: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();

    let worker = spawn_worker(api.store(), fast_config("w"));
    api.run_succeeds(run).await;
    worker.shutdown().await.unwrap();
    assert_eq!(
        api.store().environment(id).await.unwrap().phase.to_string(),
        "ready"
    );
    let shown = api
        .call("GET", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(shown.body["phase"], "ready", "{:#}", shown.body);
    let ready = api
        .call("GET", "/v1/environments?phase=ready", &alice, None)
        .await;
    assert_eq!(names(&ready), ["lab"]);
    api.finish().await;
}

#[tokio::test]
async fn deleting_during_provisioning_stops_the_step_then_tears_down_without_waiting_for_the_sweep()
{
    let api = Api::with_templates(&[(
        "slow",
        r#"
name: slow
workflows:
  provision:
    steps:
      - { name: long, kind: test-block, with: { duration: 30s } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#,
    )])
    .await;
    let alice = api.token("alice", Role::Developer).await;
    let mut config = fast_config("w");
    // The sweep would take a minute: only the worker's own follow-up can be quick.
    config.rescue_interval = Duration::from_secs(60);
    let worker = spawn_worker(api.store(), config);

    let created = api
        .create(&alice, json!({"name": "slow", "template": "slow"}))
        .await;
    let id: uuid::Uuid = environment_id(&created).parse().unwrap();
    let provision: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();
    wait::run_state(
        api.store(),
        provision,
        RunState::Running,
        Duration::from_secs(20),
    )
    .await;

    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(
        deleted.body["teardown"], "waiting",
        "the step in flight must stop first"
    );
    wait::run_state(
        api.store(),
        provision,
        RunState::Cancelled,
        Duration::from_secs(10),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.store().environment(id).await.unwrap().phase.to_string() != "deleted" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "teardown did not follow the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await.unwrap();
    api.finish().await;
}
