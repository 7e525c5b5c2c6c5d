//! `202` answers say where to look next: `Location` and `links`.

use super::*;

fn location(reply: &Reply) -> &str {
    reply
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a Location header: {:?}", reply.headers))
}

#[tokio::test]
async fn a_request_answers_with_the_location_of_its_environment_and_a_link_to_its_run() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "linked", "template": "lab"}))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    let id = environment_id(&created);
    let run = created.body["run_id"].as_str().unwrap();
    assert_eq!(location(&created), format!("/v1/environments/{id}"));
    assert_eq!(
        created.body["links"],
        json!({"environment": format!("/v1/environments/{id}"), "run": format!("/v1/runs/{run}")})
    );
    // Both lead somewhere.
    let followed = api.call("GET", location(&created), &alice, None).await;
    assert_eq!(followed.status, StatusCode::OK);
    let run_link = created.body["links"]["run"].as_str().unwrap();
    let run_reply = api.call("GET", run_link, &alice, None).await;
    assert_eq!(run_reply.status, StatusCode::OK);
    assert_eq!(run_reply.body["id"], run);

    // A replay under the same Idempotency-Key points at the same places.
    let body = json!({"name": "keyed", "template": "lab"});
    let first = api.create_with_key(&alice, "k-1", body.clone()).await;
    let replay = api.create_with_key(&alice, "k-1", body).await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(location(&replay), location(&first));
    assert_eq!(replay.body["links"], first.body["links"]);
    api.finish().await;
}

#[tokio::test]
async fn a_delete_that_starts_a_teardown_answers_with_the_location_of_its_run() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "doomed", "template": "lab"}))
        .await;
    let id = environment_id(&created);
    let deleted = api
        .call("DELETE", "/v1/environments/doomed", &alice, None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(deleted.body["teardown"], "started");
    let run = deleted.body["run_id"].as_str().unwrap();
    assert_eq!(location(&deleted), format!("/v1/runs/{run}"));
    assert_eq!(
        deleted.body["links"],
        json!({"environment": format!("/v1/environments/{id}"), "run": format!("/v1/runs/{run}")})
    );
    let teardown = api.call("GET", location(&deleted), &alice, None).await;
    assert_eq!(teardown.body["workflow"], "teardown");

    let again = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(again.body["teardown"], "already_requested");
    assert!(
        again.headers.get("location").is_none(),
        "no run started, so no Location"
    );
    assert_eq!(
        again.body["links"],
        json!({"environment": format!("/v1/environments/{id}")})
    );
    api.finish().await;
}
