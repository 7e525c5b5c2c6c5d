//! `/v1/environments`: owners isolated from each other, operators over everyone, names unique per owner.

use super::*;

#[tokio::test]
async fn a_name_is_unique_per_owner_among_live_environments() {
    // A second template whose namespace pattern has no `{suffix}`: its
    // namespaces can collide across owners.
    let shared = LAB
        .replace("name: lab", "name: lab-b")
        .replace("ttl:", "namespace: lab-b-{name}\nttl:");
    let api = Api::with_templates(&[("lab", LAB), ("lab-b", &shared)]).await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let body = json!({"name": "lab", "template": "lab"});

    let first = api.create(&alice, body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let namespace = first.body["environment"]["namespace"].as_str().unwrap();
    assert!(
        namespace.starts_with("jh-lab-") && namespace.len() == "jh-lab-".len() + 8,
        "the default pattern is jh-{{name}}-{{suffix}}: {namespace}"
    );
    let taken = api.create(&alice, body.clone()).await;
    taken.assert_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        taken.body["detail"],
        "name: alice already has an environment named `lab`"
    );
    let elsewhere = json!({"name": "lab", "template": "lab-b"});
    let still_taken = api.create(&alice, elsewhere.clone()).await;
    still_taken.assert_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        still_taken.body["detail"], "name: alice already has an environment named `lab`",
        "a name is the owner's across templates"
    );
    // bob's names are his own, and the default namespaces never collide, so
    // bob cannot learn from a refusal that alice has a `lab`.
    let bobs = api.create(&bob, body).await;
    assert_eq!(bobs.status, StatusCode::ACCEPTED, "{:?}", bobs.body);
    assert_ne!(bobs.body["environment"]["namespace"], namespace);

    // A template without `{suffix}` shares namespaces across owners; the
    // second is refused up front and is not told whose it is.
    assert_eq!(
        api.create(&alice, json!({"name": "shared", "template": "lab-b"}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let namespace_taken = api
        .create(&bob, json!({"name": "shared", "template": "lab-b"}))
        .await;
    namespace_taken.assert_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        namespace_taken.body["detail"],
        "name: namespace `lab-b-shared` on cluster `default` belongs to another live environment; choose another name"
    );
    assert!(!namespace_taken.detail().contains("alice"));
    assert_eq!(api.environments().await, 3);
    api.finish().await;
}

#[tokio::test]
async fn a_developer_cannot_read_delete_extend_or_even_detect_anothers_environment() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let admin = api.token("root", Role::Admin).await;
    let created = api
        .create(&alice, json!({"name": "private", "template": "lab"}))
        .await;
    let id = environment_id(&created);
    let run = created.body["run_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/environments/{id}");
    let missing = format!("/v1/environments/{}", uuid::Uuid::now_v7());

    for (method, suffix, body) in [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/extend", Some(json!({"ttl": "2h"}))),
    ] {
        let theirs = api
            .call(method, &format!("{path}{suffix}"), &bob, body.clone())
            .await;
        let nobodys = api
            .call(method, &format!("{missing}{suffix}"), &bob, body)
            .await;
        assert_eq!(
            theirs.status,
            StatusCode::NOT_FOUND,
            "{method} {path}{suffix}"
        );
        theirs.assert_problem(StatusCode::NOT_FOUND, "not-found");
        assert_eq!(nobodys.status, StatusCode::NOT_FOUND);
        assert_eq!(
            theirs.detail().split(' ').take(2).collect::<Vec<_>>(),
            nobodys.detail().split(' ').take(2).collect::<Vec<_>>(),
            "the answer for someone else's environment reads like the one for a missing one"
        );
    }
    // Its provisioning run is just as invisible.
    for suffix in ["", "/events"] {
        let theirs = api
            .call("GET", &format!("/v1/runs/{run}{suffix}"), &bob, None)
            .await;
        theirs.assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    let listed = api.call("GET", "/v1/environments", &bob, None).await;
    assert_eq!(listed.body["items"], json!([]));
    let asked = api
        .call("GET", "/v1/environments?owner=alice", &bob, None)
        .await;
    assert_eq!(asked.body["items"], json!([]));

    for caller in [&ops, &admin] {
        let operator = api.call("GET", &path, caller, None).await;
        assert_eq!(operator.status, StatusCode::OK, "operators see everything");
        let everyone = api
            .call("GET", "/v1/environments?owner=alice", caller, None)
            .await;
        assert_eq!(names(&everyone), ["private"], "and list anyone's");
        let run = api
            .call("GET", &format!("/v1/runs/{run}"), caller, None)
            .await;
        assert_eq!(run.status, StatusCode::OK);
    }
    assert_eq!(
        api.store()
            .environment(id.parse().unwrap())
            .await
            .unwrap()
            .phase
            .to_string(),
        "requested"
    );
    api.finish().await;
}

#[tokio::test]
async fn an_operator_extends_and_deletes_anyones_environment() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id = environment_id(&created);

    let extended = api.extend(&ops, &id, json!({"ttl": "2h"})).await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &ops, None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:#}", deleted.body);
    let shown = api
        .call("GET", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(shown.body["phase"], "tearing_down");
    api.finish().await;
}
