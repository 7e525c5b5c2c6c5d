//! A claim hands a warm hub to its requester: before it nobody but the
//! platform's admin gets in; after it exactly the owner (as an admin), the
//! allowed users, the members of the allowed provider groups and the
//! platform's admin do. The pool refills, and two
//! requests for its last member get it once and a cold hub.

use std::time::Instant;

use serde_json::{Value, json};

use super::{HubPool, PLATFORM_ADMIN, log_in};
use hubwright_testkit::server::StatusCode;

fn url(environment: &Value) -> String {
    environment["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url: {environment:#}"))
        .to_owned()
}

#[tokio::test]
async fn a_claimed_pool_hub_lets_in_its_owner_as_admin_and_its_allowed_users_and_nobody_else() {
    let Some(pool) = HubPool::start(&[]).await else {
        return;
    };
    assert_eq!(pool.pass().await, 0);
    pool.until_ready_members(2).await;
    let members = pool.members().await;
    assert_eq!(members.len(), 2, "{members:#?}");
    let (first, second) = (url(&members[0]), url(&members[1]));
    assert_ne!(first, second, "each member is a hub of its own");

    // Before any claim, a member is nobody's: only the platform's admin.
    let (status, me) = log_in(&first, &pool.provider, PLATFORM_ADMIN).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(me["admin"], true, "{me}");
    for user in ["alice", "carol", "dana"] {
        let (status, _) = log_in(&first, &pool.provider, user).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{user} before the claim");
    }

    let asked = Instant::now();
    let reply = pool
        .request(
            "alice",
            "lab",
            json!({ "allowed_users": ["carol"], "allowed_groups": ["physics"] }),
        )
        .await;
    let id = reply.body["environment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, members[0]["id"].as_str().unwrap(), "the oldest member");
    assert_eq!(reply.body["environment"]["phase"], "provisioning");
    let ready = pool.until_phase(&id, "ready").await;
    eprintln!(
        "pool hit: ready {:.2}s after the request",
        asked.elapsed().as_secs_f64()
    );
    assert_eq!(ready["owner"], "alice");
    assert_eq!(url(&ready), first, "the member's hub, unmoved");
    let kinds = pool.event_kinds(&id).await;
    assert!(kinds.contains(&"pool_claimed".to_owned()), "{kinds:?}");
    // Its namespace is labelled for its new owner, for cost tools.
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(pool.lab.client().await);
    let namespace = namespaces
        .get(ready["namespace"].as_str().unwrap())
        .await
        .unwrap();
    let labels = namespace.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("hubwright.io/owner").map(String::as_str),
        Some("alice"),
        "{labels:?}"
    );

    // After it: the owner as an admin, the allowed user, the platform's
    // admin, and nobody else.
    let (status, me) = log_in(&first, &pool.provider, "alice").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        (me["name"].clone(), me["admin"].clone()),
        (json!("alice"), json!(true))
    );
    let (status, me) = log_in(&first, &pool.provider, "carol").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(me["admin"], false, "{me}");
    let (status, me) = log_in(&first, &pool.provider, "dana").await;
    assert_eq!(status, StatusCode::FOUND, "dana is in physics");
    assert_eq!(me["admin"], false, "{me}");
    for stranger in ["mallory", "frank"] {
        let (status, _) = log_in(&first, &pool.provider, stranger).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{stranger}");
    }
    let (status, _) = log_in(&first, &pool.provider, PLATFORM_ADMIN).await;
    assert_eq!(status, StatusCode::FOUND);
    // The other member is still nobody's.
    let (status, _) = log_in(&second, &pool.provider, "alice").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "alice at the unclaimed member"
    );

    // The pool refills.
    pool.pass().await;
    pool.until_ready_members(2).await;
    let figures = pool.figures().await;
    assert_eq!(
        (figures["claims"].clone(), figures["misses"].clone()),
        (json!(1), json!(0))
    );

    // One member left, two requests at once: one takes it, one goes cold.
    let bob = pool.request("bob", "lab", json!({})).await;
    let bob = bob.body["environment"]["id"].as_str().unwrap().to_owned();
    pool.until_phase(&bob, "ready").await;
    pool.until_ready_members(1).await;
    let (dave, erin) = tokio::join!(
        pool.request("dave", "lab", json!({})),
        pool.request("erin", "lab", json!({})),
    );
    let mut outcomes = Vec::new();
    for (owner, reply) in [("dave", dave), ("erin", erin)] {
        let id = reply.body["environment"]["id"].as_str().unwrap().to_owned();
        let ready = pool.until_phase(&id, "ready").await;
        let kinds = pool.event_kinds(&id).await;
        let claimed = kinds.contains(&"pool_claimed".to_owned());
        let missed = kinds.contains(&"pool_miss".to_owned());
        assert!(claimed != missed, "{owner}: {kinds:?}");
        // Either way the owner lands as the hub's admin.
        let (status, me) = log_in(&url(&ready), &pool.provider, owner).await;
        assert_eq!(status, StatusCode::FOUND, "{owner} at {}", url(&ready));
        assert_eq!(me["admin"], true, "{owner}: {me}");
        let (status, _) = log_in(&url(&ready), &pool.provider, "mallory").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a stranger at {owner}'s hub");
        outcomes.push(claimed);
    }
    outcomes.sort();
    assert_eq!(outcomes, [false, true], "one claim and one cold hub");
    let figures = pool.figures().await;
    assert_eq!(
        (figures["claims"].clone(), figures["misses"].clone()),
        (json!(3), json!(1))
    );
}
