//! `/v1/environments`: conditions that follow the provisioning steps, the
//! `cancelled` phase, and phase filters that find deleted environments.

use super::*;

/// `(type, status, reason)` of each condition, and the messages.
fn conditions(environment: &Value) -> (Vec<(String, String, String)>, Vec<String>) {
    let list = environment["conditions"]
        .as_array()
        .unwrap_or_else(|| panic!("conditions: {environment:#}"));
    for condition in list {
        let at = condition["last_transition_time"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "a timestamp: {at}"
        );
    }
    let field = |c: &Value, name: &str| c[name].as_str().unwrap().to_owned();
    (
        list.iter()
            .map(|c| (field(c, "type"), field(c, "status"), field(c, "reason")))
            .collect(),
        list.iter().map(|c| field(c, "message")).collect(),
    )
}

fn triples(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}

impl Api {
    async fn show(&self, token: &str, id: &str) -> Reply {
        let shown = self
            .call("GET", &format!("/v1/environments/{id}"), token, None)
            .await;
        assert_eq!(shown.status, StatusCode::OK, "{:#}", shown.body);
        shown
    }
}

#[tokio::test]
async fn conditions_follow_the_provisioning_steps_in_show_and_list() {
    let fixed = scratch_dir("conditions-cause").join("fixed");
    let template = format!(
        r#"
name: steps
workflows:
  provision:
    steps:
      - {{ name: namespace, kind: noop }}
      - {{ name: gate, kind: test-fail, with: {{ message: "quota exceeded", until_exists: "{}" }} }}
      - {{ name: hub, kind: test-polls, with: {{ polls: 2, interval: 1s }} }}
  teardown:
    steps:
      - {{ name: remove, kind: noop }}
"#,
        fixed.display()
    );
    let api = Api::with_templates(&[("steps", &template)]).await;
    let alice = api.token("alice", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "steps"}))
        .await;
    let id = environment_id(&created);
    let run: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();

    let (accepted, messages) = conditions(&created.body["environment"]);
    let waiting_to_start = triples(&[
        ("namespace", "Unknown", "Pending"),
        ("gate", "Unknown", "Pending"),
        ("hub", "Unknown", "Pending"),
    ]);
    assert_eq!(
        accepted, waiting_to_start,
        "the answer to the request has them"
    );
    assert_eq!(
        messages,
        ["waiting for a worker", "not started", "not started"]
    );
    assert_eq!(
        conditions(&api.show(&alice, &id).await.body).0,
        waiting_to_start
    );

    let worker = spawn_worker(api.store(), fast_config("w"));
    wait::run_state(api.store(), run, RunState::Failed, Duration::from_secs(20)).await;
    let shown = api.show(&alice, &id).await;
    assert_eq!(shown.body["phase"], "failed");
    let (failed, messages) = conditions(&shown.body);
    assert_eq!(
        failed,
        triples(&[
            ("namespace", "True", "Succeeded"),
            ("gate", "False", "Failed"),
            ("hub", "Unknown", "Pending"),
        ])
    );
    assert_eq!(messages[1], "quota exceeded", "the error verbatim");
    let listed = api.call("GET", "/v1/environments", &alice, None).await;
    assert_eq!(
        listed.body["items"][0]["conditions"], shown.body["conditions"],
        "the list carries the same conditions"
    );

    std::fs::write(&fixed, "").unwrap();
    let retried = api
        .call(
            "POST",
            &format!("/v1/runs/{run}/retry"),
            &ops,
            Some(json!({"from_step": "gate"})),
        )
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{:#}", retried.body);
    let waiting = wait::until_some("the hub step to wait", Duration::from_secs(20), || {
        let api = &api;
        let (alice, id) = (&alice, &id);
        async move {
            let (now, messages) = conditions(&api.show(alice, id).await.body);
            (now[2].2 == "Waiting").then_some((now, messages))
        }
    })
    .await;
    assert_eq!(
        waiting.0,
        triples(&[
            ("namespace", "True", "Succeeded"),
            ("gate", "True", "Succeeded"),
            ("hub", "Unknown", "Waiting"),
        ])
    );
    assert!(
        waiting.1[2].starts_with("not ready yet"),
        "a waiting step says why: {}",
        waiting.1[2]
    );

    api.run_succeeds(run).await;
    worker.shutdown().await.unwrap();
    let ready = api.show(&alice, &id).await;
    assert_eq!(ready.body["phase"], "ready");
    assert_eq!(
        conditions(&ready.body).0,
        triples(&[
            ("namespace", "True", "Succeeded"),
            ("gate", "True", "Succeeded"),
            ("hub", "True", "Succeeded"),
        ])
    );
    api.finish().await;
}

/// A page's conditions are read for all its environments at once: each item
/// must carry its own environment's, from its provisioning run (not a
/// teardown run that came after it), whatever state each is in.
#[tokio::test]
async fn a_page_carries_each_environments_own_conditions() {
    let one = r#"
name: one
workflows:
  provision:
    steps:
      - { name: ready, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;
    let gated = r#"
name: gated
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: gate, kind: test-fail, with: { message: "quota exceeded" } }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;
    let api = Api::with_templates(&[("one", one), ("gated", gated)]).await;
    let alice = api.token("alice", Role::Developer).await;
    let mut runs = Vec::new();
    for (name, template) in [("done", "one"), ("stuck", "gated"), ("gone", "one")] {
        let created = api
            .create(&alice, json!({"name": name, "template": template}))
            .await;
        runs.push(created.body["run_id"].as_str().unwrap().parse().unwrap());
    }
    let worker = spawn_worker(api.store(), fast_config("w"));
    for (run, state) in
        runs.into_iter()
            .zip([RunState::Succeeded, RunState::Failed, RunState::Succeeded])
    {
        wait::run_state(api.store(), run, state, Duration::from_secs(20)).await;
    }
    let listed = api.call("GET", "/v1/environments", &alice, None).await;
    let gone = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "gone")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .unwrap();
    let deleted = api
        .call("DELETE", &format!("/v1/environments/{gone}"), &alice, None)
        .await;
    let teardown = deleted.body["run_id"].as_str().unwrap().parse().unwrap();
    api.run_succeeds(teardown).await;
    worker.shutdown().await.unwrap();
    api.create(&alice, json!({"name": "fresh", "template": "one"}))
        .await;

    let page = api
        .call("GET", "/v1/environments?include_deleted=true", &alice, None)
        .await;
    let items = page.body["items"].as_array().unwrap();
    let expected = [
        ("done", triples(&[("ready", "True", "Succeeded")])),
        (
            "stuck",
            triples(&[
                ("namespace", "True", "Succeeded"),
                ("gate", "False", "Failed"),
                ("hub", "Unknown", "Pending"),
            ]),
        ),
        ("gone", triples(&[("ready", "True", "Succeeded")])),
        ("fresh", triples(&[("ready", "Unknown", "Pending")])),
    ];
    assert_eq!(items.len(), expected.len(), "{:#}", page.body);
    for (name, conditions_expected) in expected {
        let item = items
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {:#}", page.body));
        assert_eq!(conditions(item).0, conditions_expected, "{name}");
        let shown = api.show(&alice, item["id"].as_str().unwrap()).await;
        assert_eq!(
            item["conditions"], shown.body["conditions"],
            "{name}: the page and the environment alone agree"
        );
    }
    api.finish().await;
}

#[tokio::test]
async fn a_cancelled_provisioning_leaves_the_environment_cancelled_and_it_can_be_deleted() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let created = api
        .create(&alice, json!({"name": "stopped", "template": "lab"}))
        .await;
    let id = environment_id(&created);
    let run = created.body["run_id"].as_str().unwrap();

    let cancelled = api
        .call("POST", &format!("/v1/runs/{run}/cancel"), &ops, None)
        .await;
    assert_eq!(
        cancelled.body["status"], "cancelled",
        "{:#}",
        cancelled.body
    );
    let shown = api.show(&alice, &id).await;
    assert_eq!(shown.body["phase"], "cancelled");
    assert_eq!(
        conditions(&shown.body).0,
        triples(&[
            ("namespace", "False", "Cancelled"),
            ("hub", "False", "Cancelled"),
        ])
    );
    let by_phase = api
        .call("GET", "/v1/environments?phase=cancelled", &alice, None)
        .await;
    assert_eq!(names(&by_phase), ["stopped"]);

    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(deleted.body["teardown"], "started", "{:#}", deleted.body);
    let teardown: uuid::Uuid = deleted.body["run_id"].as_str().unwrap().parse().unwrap();
    let worker = spawn_worker(api.store(), fast_config("w"));
    api.run_succeeds(teardown).await;
    worker.shutdown().await.unwrap();
    assert_eq!(api.show(&alice, &id).await.body["phase"], "deleted");
    let gone = api
        .call("GET", "/v1/environments?phase=deleted", &alice, None)
        .await;
    assert_eq!(
        names(&gone),
        ["stopped"],
        "asking for the phase finds deleted environments"
    );
    api.finish().await;
}

#[tokio::test]
async fn a_cancelled_teardown_leaves_the_environment_cancelled_and_a_second_delete_finishes_it() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let created = api
        .create(&alice, json!({"name": "halfway", "template": "lab"}))
        .await;
    let id = environment_id(&created);
    let first = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    let teardown = first.body["run_id"].as_str().unwrap().to_owned();

    let cancelled = api
        .call("POST", &format!("/v1/runs/{teardown}/cancel"), &ops, None)
        .await;
    assert_eq!(
        cancelled.body["status"], "cancelled",
        "{:#}",
        cancelled.body
    );
    assert_eq!(
        api.show(&alice, &id).await.body["phase"],
        "cancelled",
        "not tearing_down forever"
    );

    let second = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(second.body["teardown"], "started", "{:#}", second.body);
    let again: uuid::Uuid = second.body["run_id"].as_str().unwrap().parse().unwrap();
    let worker = spawn_worker(api.store(), fast_config("w"));
    api.run_succeeds(again).await;
    worker.shutdown().await.unwrap();
    assert_eq!(api.show(&alice, &id).await.body["phase"], "deleted");
    api.finish().await;
}
