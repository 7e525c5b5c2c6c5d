//! The console's pools page: what an operator sees of a filling and a
//! claimed pool, and that a developer is turned away.

use hubwright_state::model::Role;
use hubwright_testkit::console::ConsoleUser;
use hubwright_testkit::server::{StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::json;

use super::{WARM, request, until_phase, until_ready_members, whole_system};

#[tokio::test]
async fn operators_see_each_pools_members_and_claims_and_developers_are_refused() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("pools");
    write_workflow(&dir, "warm", WARM);
    let server = whole_system(&db, &dir).await;
    let ops_token = token(&db.store, "ops", Role::Operator).await;
    let alice_token = token(&db.store, "alice", Role::Developer).await;
    let ops = ConsoleUser::sign_in(&server, &ops_token).await;
    let alice = ConsoleUser::sign_in(&server, &alice_token).await;

    let refused = alice.get("/pools").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.assert_says("this needs the operator role");

    until_ready_members(&server, &ops_token, 2).await;
    let full = ops.get("/pools").await;
    assert_eq!(full.status, StatusCode::OK);
    full.assert_says("<h1>Pools</h1>");
    full.assert_says("<th scope=\"row\"><code>warm</code></th>");
    full.assert_says("<td><code>default</code></td>");
    full.assert_says("href=\"/environments?owner=pool%3Awarm&amp;cluster=default\"");
    assert!(
        !full.html.contains("no ready member"),
        "a full pool is not short: {}",
        full.html
    );

    let reply = request(
        &server,
        &alice_token,
        json!({"name": "lab", "template": "warm"}),
    )
    .await;
    let id = reply.body["environment"]["id"].as_str().unwrap().to_owned();
    until_phase(&server, &alice_token, &id, "ready").await;
    let claimed = ops.get("/pools").await;
    claimed.assert_says("<td>100%</td>");

    let members = ops
        .get("/environments?owner=pool%3Awarm&cluster=default")
        .await;
    assert_eq!(members.status, StatusCode::OK);
    members.assert_says("pool:warm");
}
