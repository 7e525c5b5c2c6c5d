//! `/v1/environments`: time-to-live: extension within the maximum, expiring soon, the API's clock.

use super::*;

#[tokio::test]
async fn ttl_extensions_stay_within_the_templates_maximum() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id = environment_id(&created);

    let extended = api.extend(&alice, &id, json!({"ttl": "3h"})).await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    let before: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(created.body["environment"]["expires_at"].clone()).unwrap();
    let after: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(extended.body["expires_at"].clone()).unwrap();
    assert!(
        after - before >= chrono::Duration::hours(2),
        "{before} → {after}"
    );

    let too_long = api.extend(&alice, &id, json!({"ttl": "5h"})).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        too_long
            .detail()
            .contains("beyond the template's maximum of 4h from creation")
    );
    let missing = api.extend(&alice, &id, json!({})).await;
    assert_eq!(missing.body["detail"], "ttl: is required, e.g. \"4h\"");
    api.finish().await;
}

#[tokio::test]
async fn expiring_within_lists_only_what_expires_soon_and_refuses_a_bad_duration() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    for (name, ttl) in [("soon", "1h"), ("later", "3h"), ("sooner", "30m")] {
        let created = api
            .create(&alice, json!({"name": name, "template": "lab", "ttl": ttl}))
            .await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    }
    let within = api
        .call("GET", "/v1/environments?expiring_within=2h", &alice, None)
        .await;
    assert_eq!(within.status, StatusCode::OK, "{:#}", within.body);
    assert_eq!(names(&within), ["soon", "sooner"]);
    let none = api
        .call("GET", "/v1/environments?expiring_within=10m", &alice, None)
        .await;
    assert!(names(&none).is_empty());
    let bad = api
        .call("GET", "/v1/environments?expiring_within=soon", &alice, None)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.detail().starts_with("expiring_within:"),
        "{}",
        bad.detail()
    );
    api.finish().await;
}

const LIMITED: &str = r#"
name: limited
ttl: { default: 1h, maximum: 8h, max_extensions: 2 }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

#[tokio::test]
async fn max_extensions_refuses_the_extension_after_the_last_allowed_one() {
    let api = Api::with_templates(&[("limited", LIMITED)]).await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "limited"}))
        .await;
    let id = environment_id(&created);
    let extend = || async { api.extend(&alice, &id, json!({"ttl": "2h"})).await };
    assert_eq!(extend().await.status, StatusCode::OK);
    assert_eq!(extend().await.status, StatusCode::OK);
    let third = extend().await;
    assert_eq!(third.status, StatusCode::CONFLICT, "{:#}", third.body);
    assert!(
        third
            .detail()
            .contains("was extended 2 times already, the most its template allows"),
        "{}",
        third.detail()
    );
    api.finish().await;
}

#[tokio::test]
async fn ttls_count_from_the_apis_clock_to_the_microsecond() {
    use hubwright_state::{Clock, ManualClock, SystemClock};
    let db = TestDatabase::create().await;
    let dir = write_workflow(&scratch_dir("env-api-clock"), "lab", LAB);
    // A whole second, so what Postgres stores (microseconds) compares equal.
    let start = chrono::DateTime::from_timestamp(SystemClock.now().timestamp(), 0).unwrap();
    let clock = ManualClock::new(start);
    let server =
        ApiServer::start_with_clock(&db, &dir, &[], std::sync::Arc::new(clock.clone())).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let expires_at = |body: &Value| -> chrono::DateTime<chrono::Utc> {
        serde_json::from_value(body["expires_at"].clone()).unwrap()
    };

    let created = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({"name": "lab", "template": "lab"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let environment = &created.body["environment"];
    assert_eq!(expires_at(environment), start + chrono::Duration::hours(1));

    clock.advance(chrono::Duration::minutes(30));
    let id = environment["id"].as_str().unwrap();
    let extend = |ttl: &'static str| {
        server
            .post(&format!("/v1/environments/{id}/extend"))
            .token(&alice)
            .json(&json!({ "ttl": ttl }))
            .send()
    };
    let extended = extend("3h").await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    assert_eq!(
        expires_at(&extended.body),
        start + chrono::Duration::minutes(210),
        "three hours from the API's now, not the wall clock's"
    );
    // 4h from now is 4h30m from creation: past the template's maximum.
    let too_long = extend("4h").await;
    too_long.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(
        too_long
            .detail()
            .contains("beyond the template's maximum of 4h from creation"),
        "{}",
        too_long.detail()
    );
    drop(server);
    db.drop_now().await;
}
