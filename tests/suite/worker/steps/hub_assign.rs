//! `hub-assign` against a real JupyterHub built from the values a pool
//! member gets (`workflows/jupyterhub/values.yaml.j2`, local mode): it makes
//! the owner and the admins admins and the allowed users users, a second
//! attempt converges, and the hub's refusals and absence are classed.

use std::path::Path;
use std::sync::Arc;

use hubwright_sandbox::jupyterhub::{JupyterHub, Options, free_port};
use hubwright_state::secrets::SecretString;
use hubwright_testkit::test_secret_keys;
use hubwright_testkit::work::{TestEnvironment, WorkRun};
use hubwright_worker::helm::values::render;
use hubwright_worker::hub::{self, API_TOKEN_KEY, API_TOKEN_SECRET};
use hubwright_worker::{Registry, StepKind};
use serde_json::{Value, json};

use super::{done, failed, retried, setup};

const TOKEN: &str = "a-service-token-for-hubwright-0123456789";
const ADMIN_PASSWORD: &str = "correct-horse-battery-staple-0123456789";

/// A hub as a pool member's values make it, its service token [`TOKEN`].
async fn member_hub() -> JupyterHub {
    let context = json!({
        "params": {
            "image": "quay.io/jupyter/scipy-notebook", "image_tag": "2024-10-07", "profile": "minimal",
            "cpu_guarantee": 0.5, "cpu_limit": 2, "memory_guarantee": "1G", "memory_limit": "4G",
            "storage": "10Gi", "admin_users": ["platform-admin"], "allowed_users": [],
            "auth_mode": "local", "idle_cull_timeout": 1800,
            "allowed_groups": [], "admin_groups": [], "groups_claim": "groups",
            "scopes": ["openid", "profile", "email"],
        },
        "env": { "id": "0190a6b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", "name": "pool-4e5f6a7b", "owner": "pool:jupyterhub", "namespace": "jh-pool-4e5f6a7b", "template": "jupyterhub" },
        "cluster": { "name": "default", "base_domain": null, "tls_issuer": null, "ingress_class": null },
        "release": "jh-pool-4e5f6a7b",
        "steps": { "idp": { "mode": "local", "secret": "hubwright-oauth", "api_token": true } },
    });
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub/values.yaml.j2");
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&render(&path, &context).unwrap()).unwrap();
    let values = serde_json::to_value(&yaml["hub"]).unwrap();
    let env = [
        ("HUBWRIGHT_ADMIN_PASSWORD", ADMIN_PASSWORD),
        (API_TOKEN_KEY, TOKEN),
    ];
    JupyterHub::start_with(&values["config"], &env, Options::from_hub_values(&values))
        .await
        .unwrap()
}

fn assign_kind() -> Arc<dyn StepKind> {
    let mut registry = Registry::new();
    hub::register(&mut registry, Some(Arc::new(test_secret_keys())));
    Arc::clone(registry.get("hub-assign").unwrap())
}

/// The hub's users as its API lists them: name → admin.
async fn users(hub: &JupyterHub) -> Vec<(String, bool)> {
    let list: Vec<Value> = hubwright_http::client()
        .get(format!("{}/hub/api/users", hub.url()))
        .header("Authorization", format!("token {TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut users: Vec<(String, bool)> = list
        .iter()
        .map(|u| (u["name"].as_str().unwrap().to_owned(), u["admin"] == true))
        .collect();
    users.sort();
    users
}

/// A run of `hub-assign` for `alice`'s environment `name` with `input` (its
/// parameters), the environment's sealed token being `token`.
async fn run_for_alice(
    db: &hubwright_testkit::TestDatabase,
    clock: &hubwright_state::ManualClock,
    name: &str,
    input: Value,
    token: Option<&str>,
) -> WorkRun {
    let mut environment = TestEnvironment::named(name).with_parameters(input);
    environment.owner = "alice".to_owned();
    let run = WorkRun::builder(&db.store, clock)
        .environment(environment)
        .start()
        .await;
    if let Some(token) = token {
        let id = run.environment().unwrap().id;
        db.store
            .put_secret(
                &test_secret_keys(),
                id,
                API_TOKEN_SECRET,
                &SecretString::new(token.to_owned()),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }
    run
}

#[tokio::test]
async fn hub_assign_makes_the_owner_and_admins_admins_and_the_allowed_users_users_and_converges() {
    let (db, clock) = setup().await;
    let hub = member_hub().await;
    assert_eq!(users(&hub).await, [("platform-admin".to_owned(), true)]);
    let input = json!({
        "admin_users": ["bob"],
        "allowed_users": ["carol", "bob", "alice"],
        "allowed_groups": ["physics"],
    });
    let mut run = run_for_alice(&db, &clock, "lab", input, Some(TOKEN)).await;
    let kind = assign_kind();
    let params = json!({ "url": hub.url() });

    let output = done(run.work(kind.as_ref(), params.clone()).await);
    assert_eq!(output["owner"], "alice");
    assert!(!output.to_string().contains(TOKEN));
    let expected = [
        ("alice".to_owned(), true),
        ("bob".to_owned(), true),
        ("carol".to_owned(), false),
        ("platform-admin".to_owned(), true),
    ];
    assert_eq!(users(&hub).await, expected);
    let group: Value = hubwright_http::client()
        .get(format!("{}/hub/api/groups/physics", hub.url()))
        .header("Authorization", format!("token {TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(group["properties"]["hubwright_allowed"], true, "{group}");

    // Every user and group exists now: a second attempt converges to the same hub.
    run.next_attempt();
    done(run.work(kind.as_ref(), params).await);
    assert_eq!(users(&hub).await, expected);
    db.drop_now().await;
}

#[tokio::test]
async fn hub_assign_fails_for_good_when_refused_and_retries_a_hub_it_cannot_reach() {
    let (db, clock) = setup().await;
    let hub = member_hub().await;
    let kind = assign_kind();
    let params = json!({ "url": hub.url() });

    let wrong = run_for_alice(&db, &clock, "wrong", json!({}), Some("not-the-token")).await;
    let error = failed(wrong.work(kind.as_ref(), params.clone()).await);
    assert!(error.message.contains("403"), "{error:?}");
    assert!(!error.message.contains("not-the-token"), "{error:?}");

    let without = run_for_alice(&db, &clock, "without", json!({}), None).await;
    let error = failed(without.work(kind.as_ref(), params).await);
    assert!(error.message.contains("hub_api_token"), "{error:?}");

    let gone = format!("http://127.0.0.1:{}", free_port().unwrap());
    let unreachable = run_for_alice(&db, &clock, "gone", json!({}), Some(TOKEN)).await;
    let error = retried(
        unreachable
            .work(kind.as_ref(), json!({ "url": gone }))
            .await,
    );
    assert!(error.message.contains("cannot reach the hub"), "{error:?}");
    assert_eq!(users(&hub).await, [("platform-admin".to_owned(), true)]);
    db.drop_now().await;
}
