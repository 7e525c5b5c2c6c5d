//! Template and profile access: who may see and use what.

use super::*;

const ACCESS: &str = r#"
groups:
  gpu-users: { members: [alice] }
  science: { members: [alice] }
templates:
  hub:
    profiles: { gpu: [gpu-users] }
  lab:
    groups: [science]
"#;

#[tokio::test]
async fn a_developer_outside_the_gpu_group_gets_403_for_the_gpu_profile() {
    let api = Guarded::start(ACCESS, &[]).await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;

    let refused = api
        .create(&bob, hub("gpu", json!({"profile": "gpu"})))
        .await;
    refused.assert_problem(StatusCode::FORBIDDEN, "template-forbidden");
    let detail = refused.detail();
    assert!(
        detail.contains("templates.hub.profiles.gpu allows only members of gpu-users")
            && detail.contains("`bob`"),
        "{detail}"
    );
    let small = api
        .create(&bob, hub("small", json!({"profile": "small"})))
        .await;
    assert_eq!(small.status, StatusCode::ACCEPTED, "{:#}", small.body);
    let gpu = api
        .create(&alice, hub("gpu", json!({"profile": "gpu"})))
        .await;
    assert_eq!(gpu.status, StatusCode::ACCEPTED, "{:#}", gpu.body);

    // The template list says which profiles each caller may choose.
    let listed = api.get(&bob, "/v1/templates/hub").await;
    assert_eq!(listed.status, StatusCode::OK, "{:#}", listed.body);
    let profiles = &listed.body["profiles"];
    assert_eq!(profiles[0]["name"], "small");
    assert_eq!(profiles[0]["usable"], true);
    assert_eq!(profiles[1]["name"], "gpu");
    assert_eq!(profiles[1]["usable"], false);
    assert!(
        profiles[1]["usable_reason"]
            .as_str()
            .unwrap()
            .contains("templates.hub.profiles.gpu")
    );
    api.finish().await;
}

#[tokio::test]
async fn a_template_restricted_to_a_group_is_hidden_from_others_and_refused_naming_the_rule() {
    let api = Guarded::start(ACCESS, &[]).await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let carol = api.token("carol", Role::Operator).await;
    let names = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };

    assert_eq!(
        names(&api.get(&alice, "/v1/templates").await),
        ["hub", "lab"]
    );
    assert_eq!(names(&api.get(&bob, "/v1/templates").await), ["hub"]);
    let operator = api.get(&carol, "/v1/templates").await;
    assert_eq!(
        names(&operator),
        ["hub", "lab"],
        "operators see every template"
    );
    assert_eq!(operator.body["items"][1]["usable"], false);

    let shown = api.get(&bob, "/v1/templates/lab").await;
    shown.assert_problem(StatusCode::FORBIDDEN, "template-forbidden");
    let refused = api
        .create(&bob, json!({"name": "lab", "template": "lab"}))
        .await;
    refused.assert_problem(StatusCode::FORBIDDEN, "template-forbidden");
    assert!(
        refused
            .detail()
            .contains("templates.lab.groups allows only members of science"),
        "{}",
        refused.detail()
    );
    let allowed = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    assert_eq!(allowed.status, StatusCode::ACCEPTED, "{:#}", allowed.body);
    api.finish().await;
}

#[tokio::test]
async fn operators_read_the_whole_policy_and_developers_their_own_limits() {
    let api = Guarded::start(ACCESS, &[]).await;
    let bob = api.token("bob", Role::Developer).await;
    let carol = api.token("carol", Role::Operator).await;

    api.get(&bob, "/v1/policy")
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let whole = api.get(&carol, "/v1/policy").await;
    assert_eq!(whole.status, StatusCode::OK, "{:#}", whole.body);
    assert_eq!(whole.body["source"], api.policy.display().to_string());
    assert_eq!(whole.body["last_reload_error"], Value::Null);
    assert_eq!(
        whole.body["policy"]["templates"]["lab"]["groups"],
        json!(["science"])
    );
    assert_eq!(whole.body["policy"]["usage"]["profile"], "profile");

    let mine = api.get(&bob, "/v1/policy/me").await;
    assert_eq!(mine.status, StatusCode::OK, "{:#}", mine.body);
    assert_eq!(mine.body["subject"], "bob");
    assert_eq!(mine.body["groups"], json!([]));
    assert_eq!(mine.body["limits"], json!([]), "no limits set: none apply");
    api.finish().await;
}
