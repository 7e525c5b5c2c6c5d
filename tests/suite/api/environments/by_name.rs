//! `/v1/environments/{id-or-name}`: an owner names their live environments;
//! operators name anyone's with `?owner=`; nobody detects another's.

use super::*;

#[tokio::test]
async fn an_owner_reads_extends_and_deletes_an_environment_by_its_name() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "alice-lab", "template": "lab"}))
        .await;
    let id = environment_id(&created);

    let by_name = api
        .call("GET", "/v1/environments/alice-lab", &alice, None)
        .await;
    assert_eq!(by_name.status, StatusCode::OK, "{:#}", by_name.body);
    let by_id = api
        .call("GET", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(
        by_name.body, by_id.body,
        "the name and the id are one environment"
    );

    let extended = api.extend(&alice, "alice-lab", json!({"ttl": "3h"})).await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    assert_eq!(extended.body["id"], id.as_str());

    let deleted = api
        .call("DELETE", "/v1/environments/alice-lab", &alice, None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:#}", deleted.body);
    assert_eq!(deleted.body["environment_id"], id.as_str());
    assert_eq!(deleted.body["teardown"], "started");
    api.finish().await;
}

#[tokio::test]
async fn a_developer_naming_anothers_environment_gets_the_404_of_a_missing_one() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    api.create(&alice, json!({"name": "private", "template": "lab"}))
        .await;

    for (method, suffix, body) in [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/extend", Some(json!({"ttl": "2h"}))),
    ] {
        for path in [
            "/v1/environments/private",
            "/v1/environments/private?owner=alice",
        ] {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            let target = format!("{path}{suffix}?{query}");
            let theirs = api.call(method, &target, &bob, body.clone()).await;
            theirs.assert_problem(StatusCode::NOT_FOUND, "not-found");
            assert_eq!(
                theirs.detail(),
                "no environment private",
                "{method} {target}"
            );
        }
        let nobodys = api
            .call(
                method,
                &format!("/v1/environments/{}{suffix}", uuid::Uuid::now_v7()),
                &bob,
                body,
            )
            .await;
        nobodys.assert_problem(StatusCode::NOT_FOUND, "not-found");
        assert!(
            nobodys.detail().starts_with("no environment "),
            "by name and by id, the same shape: {}",
            nobodys.detail()
        );
    }
    let still = api
        .call("GET", "/v1/environments/private", &alice, None)
        .await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(
        still.body["phase"], "requested",
        "bob's delete changed nothing"
    );
    api.finish().await;
}

#[tokio::test]
async fn an_operator_names_anothers_environment_with_owner() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id = environment_id(&created);

    let own = api.call("GET", "/v1/environments/lab", &ops, None).await;
    own.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(
        own.detail(),
        "no environment lab",
        "without owner, a name is the caller's own"
    );
    let shown = api
        .call("GET", "/v1/environments/lab?owner=alice", &ops, None)
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:#}", shown.body);
    assert_eq!(shown.body["id"], id.as_str());
    let extended = api
        .call(
            "POST",
            "/v1/environments/lab/extend?owner=alice",
            &ops,
            Some(json!({"ttl": "2h"})),
        )
        .await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    // An id with another owner does not match it.
    let mismatched = api
        .call(
            "GET",
            &format!("/v1/environments/{id}?owner=bob"),
            &ops,
            None,
        )
        .await;
    mismatched.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let deleted = api
        .call("DELETE", "/v1/environments/lab?owner=alice", &ops, None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:#}", deleted.body);
    assert_eq!(deleted.body["environment_id"], id.as_str());
    let unknown = api
        .call(
            "GET",
            "/v1/environments/lab?owner=alice&colour=red",
            &ops,
            None,
        )
        .await;
    unknown.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(unknown.body["errors"][0]["parameter"], "colour");
    api.finish().await;
}

#[tokio::test]
async fn a_name_that_is_no_dns_label_names_nothing() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    for segment in [
        "Lab",
        "my_lab",
        "lab.example",
        "-lab",
        "l%C3%A4b",
        &"a".repeat(41),
    ] {
        let reply = api
            .call("GET", &format!("/v1/environments/{segment}"), &alice, None)
            .await;
        reply.assert_problem(StatusCode::NOT_FOUND, "not-found");
        let extend = api.extend(&alice, segment, json!({"ttl": "1h"})).await;
        extend.assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    api.finish().await;
}

#[tokio::test]
async fn a_name_means_the_live_environment_and_is_free_again_once_it_is_deleted() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let first = api
        .create(&alice, json!({"name": "again", "template": "lab"}))
        .await;
    let first_id = environment_id(&first);
    let deleted = api
        .call("DELETE", "/v1/environments/again", &alice, None)
        .await;
    let teardown: uuid::Uuid = deleted.body["run_id"].as_str().unwrap().parse().unwrap();
    let tearing = api
        .call("GET", "/v1/environments/again", &alice, None)
        .await;
    assert_eq!(
        tearing.body["phase"], "tearing_down",
        "a name still means an environment being torn down"
    );

    let worker = spawn_worker(api.store(), fast_config("w"));
    api.run_succeeds(teardown).await;
    worker.shutdown().await.unwrap();
    let gone = api
        .call("GET", "/v1/environments/again", &alice, None)
        .await;
    gone.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let by_id = api
        .call("GET", &format!("/v1/environments/{first_id}"), &alice, None)
        .await;
    assert_eq!(by_id.body["phase"], "deleted", "its id still finds it");

    let second = api
        .create(&alice, json!({"name": "again", "template": "lab"}))
        .await;
    assert_eq!(second.status, StatusCode::ACCEPTED);
    let now = api
        .call("GET", "/v1/environments/again", &alice, None)
        .await;
    assert_eq!(now.body["id"], environment_id(&second).as_str());
    api.finish().await;
}

#[tokio::test]
async fn a_name_that_looks_like_an_id_still_finds_its_environment() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let name = uuid::Uuid::now_v7().to_string();
    let created = api
        .create(&alice, json!({"name": name, "template": "lab"}))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let shown = api
        .call("GET", &format!("/v1/environments/{name}"), &alice, None)
        .await;
    assert_eq!(
        shown.status,
        StatusCode::OK,
        "no environment has that id; the name has"
    );
    assert_eq!(shown.body["id"], environment_id(&created).as_str());
    api.finish().await;
}
