//! A hand-over that fails for good leaves the environment failed, never
//! ready, with nobody let in; members built from an older template, and
//! members idle past `max_idle`, are torn down (their hubs stop) and
//! replaced by new hubs.

use std::collections::BTreeSet;

use hubwright_state::clusters::Clusters;
use hubwright_state::secrets::SecretString;
use hubwright_testkit::harness::registry_with_clusters;
use hubwright_testkit::server::StatusCode;
use hubwright_testkit::{test_secret_keys, wait};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{HubPool, WITHIN, log_in, template};

fn id(environment: &Value) -> String {
    environment["id"].as_str().unwrap().to_owned()
}

/// Waits until the pool's one ready member is another than every one of
/// `seen`; returns it.
async fn new_member(pool: &HubPool, seen: &BTreeSet<String>) -> Value {
    pool.until_ready_members(1).await;
    let members = pool.members().await;
    assert_eq!(members.len(), 1, "{members:#?}");
    assert!(!seen.contains(&id(&members[0])), "{:#}", members[0]);
    members[0].clone()
}

#[tokio::test]
async fn a_failed_hand_over_is_never_ready_and_old_or_idle_members_are_replaced_by_new_hubs() {
    let single = [("  size: 2\n", "  size: 1\n")];
    let Some(mut pool) = HubPool::start(&single).await else {
        return;
    };
    let mut seen = BTreeSet::new();
    pool.pass().await;
    let member = new_member(&pool, &seen).await;
    seen.insert(id(&member));

    // The hub no longer takes the token hubwright holds (as if it had been
    // built with another): the hub refuses the hand-over, for good.
    let member_id: Uuid = id(&member).parse().unwrap();
    pool.lab
        .store()
        .put_secret(
            &test_secret_keys(),
            member_id,
            hubwright_worker::hub::API_TOKEN_SECRET,
            &SecretString::new("not-the-hubs-token".to_owned()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let reply = pool.request("alice", "lab", json!({})).await;
    assert_eq!(id(&reply.body["environment"]), id(&member));
    let failed = pool.until_phase(&id(&member), "failed").await;
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("403"), "{failed:#}");
    // Only the assign run can make a claimed member ready, and it failed.
    assert_eq!(failed["current_run"]["workflow"], "assign", "{failed:#}");
    assert_eq!(failed["current_run"]["state"], "failed", "{failed:#}");
    let (status, _) = log_in(member["url"].as_str().unwrap(), &pool.provider, "alice").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the owner of a failed hand-over"
    );

    // The claimed member is replaced.
    pool.pass().await;
    let replacement = new_member(&pool, &seen).await;
    seen.insert(id(&replacement));
    let namespace = replacement["namespace"].as_str().unwrap().to_owned();
    assert!(pool.farm.running().contains(&namespace));

    // A template change recycles it.
    let changed = template(
        pool.provider.issuer(),
        &[
            single[0],
            (
                "admin_users: [platform-admin] }",
                "admin_users: [platform-admin], idle_cull_timeout: 1800 }",
            ),
        ],
    );
    std::fs::write(pool.lab.workflows.join("hub.yaml"), changed).unwrap();
    let clusters = Clusters::load(&pool.lab.clusters_file).unwrap();
    let mut catalog = registry_with_clusters(&clusters, &pool.lab.workflows)
        .load_catalog(&pool.lab.workflows)
        .unwrap();
    catalog.register(pool.lab.store()).await.unwrap();
    pool.use_catalog(&catalog).await;
    pool.pass().await;
    pool.until_phase(&id(&replacement), "deleted").await;
    wait::until("the recycled member's hub stopped", WITHIN, || async {
        !pool.farm.running().contains(&namespace)
    })
    .await;
    let rebuilt = new_member(&pool, &seen).await;
    seen.insert(id(&rebuilt));
    let shown = pool.environment(&id(&rebuilt)).await;
    assert_eq!(shown["parameters"]["idle_cull_timeout"], 1800, "{shown:#}");

    // Idle past max_idle (12h): torn down and replaced.
    pool.clock
        .advance(chrono::Duration::hours(12) + chrono::Duration::minutes(1));
    assert!(pool.pass().await >= 1, "the idle member expired");
    pool.until_phase(&id(&rebuilt), "deleted").await;
    pool.pass().await;
    let fresh = new_member(&pool, &seen).await;
    let (status, _) = log_in(fresh["url"].as_str().unwrap(), &pool.provider, "alice").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a fresh member is nobody's");
}
