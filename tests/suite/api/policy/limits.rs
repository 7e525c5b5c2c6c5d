//! Limits: refused past them with the limit named, counted race-free.

use super::*;

#[tokio::test]
async fn the_26th_environment_past_a_limit_of_25_is_refused_with_the_limit_named() {
    let api = Guarded::start("defaults: { environments: 25 }\n", &[]).await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let mut first = None;
    for n in 1..=25 {
        let reply = api
            .create(&alice, hub(&format!("hub-{n}"), json!({})))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "#{n}: {:#}", reply.body);
        first.get_or_insert_with(|| reply.body["environment"]["id"].as_str().unwrap().to_owned());
    }

    let refused = api.create(&alice, hub("hub-26", json!({}))).await;
    assert_limit(
        &refused,
        "environments",
        json!(25),
        json!(25),
        "defaults.environments",
    );
    assert_eq!(refused.body["limit"]["requested"], 1);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM environments WHERE owner = 'alice'")
        .fetch_one(api.db.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 25, "nothing is stored for a refused request");

    // Another owner has slots of their own; a deleted environment frees one.
    let other = api.create(&bob, hub("hub-1", json!({}))).await;
    assert_eq!(other.status, StatusCode::ACCEPTED, "{:#}", other.body);
    let first = first.unwrap();
    let deleted = api
        .server
        .delete(&format!("/v1/environments/{first}"))
        .token(&alice)
        .send()
        .await;
    assert!(deleted.status.is_success(), "{:#}", deleted.body);
    let again = api.create(&alice, hub("hub-26", json!({}))).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{:#}", again.body);

    let me = api.get(&alice, "/v1/policy/me").await;
    assert_eq!(me.status, StatusCode::OK, "{:#}", me.body);
    assert_eq!(
        me.body["limits"],
        json!([{"limit": "environments", "value": 25, "current": 25, "rule": "defaults.environments"}])
    );
    assert_eq!(me.body["usage"]["per_template"], json!({"hub": 25}));
    api.finish().await;
}

#[tokio::test]
async fn two_concurrent_requests_for_the_last_slot_admit_exactly_one() {
    let api = Guarded::start("defaults: { environments: 3 }\n", &[]).await;
    // Several owners race at once, each two requests for their last slot.
    let owners = ["ann", "ben", "cat", "dan", "eve"];
    let mut tokens = Vec::new();
    for owner in owners {
        let token = api.token(owner, Role::Developer).await;
        for n in 1..=2 {
            let reply = api
                .create(&token, hub(&format!("hub-{n}"), json!({})))
                .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
        }
        tokens.push(token);
    }

    let mut racing = tokio::task::JoinSet::new();
    for (owner, token) in owners.iter().zip(&tokens) {
        for name in ["left", "right"] {
            let call = api
                .server
                .post("/v1/environments")
                .token(token)
                .json(&hub(name, json!({})));
            let owner = owner.to_string();
            racing.spawn(async move { (owner, call.send().await) });
        }
    }
    let mut admitted = std::collections::BTreeMap::<String, usize>::new();
    while let Some(result) = racing.join_next().await {
        let (owner, reply) = result.unwrap();
        match reply.status {
            StatusCode::ACCEPTED => *admitted.entry(owner).or_default() += 1,
            _ => assert_limit(
                &reply,
                "environments",
                json!(3),
                json!(3),
                "defaults.environments",
            ),
        }
    }
    for owner in owners {
        assert_eq!(admitted.get(owner), Some(&1), "{owner}: {admitted:?}");
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM environments WHERE owner = $1")
            .bind(owner)
            .fetch_one(api.db.store.pool())
            .await
            .unwrap();
        assert_eq!(stored, 3, "{owner}");
    }
    api.finish().await;
}

#[tokio::test]
async fn group_and_owner_limits_override_the_defaults_and_name_their_rule() {
    let api = Guarded::start(
        r#"
defaults: { environments: 1, cpu: "2", per_profile: { gpu: 0 } }
groups:
  gpu-users:
    members: [alice]
    limits: { per_profile: { gpu: 1 }, environments: 5 }
  big:
    members: [alice]
    limits: { environments: 3 }
owners:
  carol: { environments: unlimited, cpu: unlimited }
"#,
        &[],
    )
    .await;
    let alice = api.token("alice", Role::Developer).await;
    let carol = api.token("carol", Role::Developer).await;

    // The most generous group wins: 5 (gpu-users) over 3 (big) and 1 (defaults).
    let me = api.get(&alice, "/v1/policy/me").await;
    assert_eq!(
        me.body["groups"],
        json!(["big", "gpu-users"]),
        "{:#}",
        me.body
    );
    let limits = me.body["limits"].as_array().unwrap();
    let environments = limits
        .iter()
        .find(|l| l["limit"] == "environments")
        .unwrap();
    assert_eq!(environments["rule"], "groups.gpu-users.limits.environments");

    let gpu = api
        .create(&alice, hub("gpu-1", json!({"profile": "gpu"})))
        .await;
    assert_eq!(gpu.status, StatusCode::ACCEPTED, "{:#}", gpu.body);
    let second = api
        .create(
            &alice,
            hub("gpu-2", json!({"profile": "gpu", "cpu_limit": 0.5})),
        )
        .await;
    assert_limit(
        &second,
        "per_profile.gpu",
        json!(1),
        json!(1),
        "groups.gpu-users.limits.per_profile.gpu",
    );

    // CPU is summed from `cpu_limit`: 1 in use, 1.5 more passes 2.
    let cpu = api
        .create(&alice, hub("cpu", json!({"cpu_limit": 1.5})))
        .await;
    assert_limit(&cpu, "cpu", json!("2"), json!("1"), "defaults.cpu");
    assert_eq!(cpu.body["limit"]["requested"], "1500m");

    for n in 1..=3 {
        let reply = api
            .create(&carol, hub(&format!("c-{n}"), json!({"cpu_limit": 8})))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "owners.carol lifts the defaults: {:#}",
            reply.body
        );
    }
    api.finish().await;
}

#[tokio::test]
async fn the_policy_bounds_time_to_live_and_extensions_below_the_templates() {
    let api = Guarded::start("defaults: { max_ttl: 2h, max_extensions: 1 }\n", &[]).await;
    let alice = api.token("alice", Role::Developer).await;

    let long = api
        .create(
            &alice,
            json!({"name": "long", "template": "hub", "ttl": "3h"}),
        )
        .await;
    assert_limit(
        &long,
        "max_ttl",
        json!("2h"),
        json!("3h"),
        "defaults.max_ttl",
    );

    let created = api
        .create(
            &alice,
            json!({"name": "short", "template": "hub", "ttl": "1h"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let id = created.body["environment"]["id"].as_str().unwrap();
    let extend = |ttl: &str| {
        api.server
            .post(&format!("/v1/environments/{id}/extend"))
            .token(&alice)
            .json(&json!({"ttl": ttl}))
            .send()
    };
    let too_long = extend("3h").await;
    assert_limit(
        &too_long,
        "max_ttl",
        json!("2h"),
        json!("3h"),
        "defaults.max_ttl",
    );
    let once = extend("90m").await;
    assert_eq!(once.status, StatusCode::OK, "{:#}", once.body);
    let twice = extend("90m").await;
    assert_limit(
        &twice,
        "max_extensions",
        json!(1),
        json!(1),
        "defaults.max_extensions",
    );
    api.finish().await;
}

#[tokio::test]
async fn a_counted_parameter_that_is_not_a_quantity_is_a_422_naming_it() {
    const SIZED: &str = r#"
name: sized
parameters:
  memory_limit: { type: string, default: 1Gi }
workflows:
  provision:
    steps:
      - { name: a, kind: noop }
"#;
    let db = TestDatabase::create().await;
    let (workflows, policy) = files("defaults: { memory: 8Gi }\n");
    write_workflow(&workflows, "sized", SIZED);
    let policy = policy.display().to_string();
    let server = ApiServer::start(&db, &workflows, &["--policy", &policy]).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let reply = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({"name": "x", "template": "sized", "parameters": {"memory_limit": "lots"}}))
        .send()
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        reply.body["errors"][0]["pointer"],
        "/parameters/memory_limit"
    );
    assert!(
        reply.detail().contains("memory limit"),
        "{}",
        reply.detail()
    );
    drop(server);
    db.drop_now().await;
}
