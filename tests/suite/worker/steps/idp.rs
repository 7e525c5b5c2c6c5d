//! `idp-client` in mode `local`: no identity provider, a generated admin
//! password sealed in Postgres and written to the hub's Secret.

use std::sync::Arc;

use hubwright_sandbox::apiserver::TestCluster;
use hubwright_state::ManualClock;
use hubwright_state::model::Environment;
use hubwright_testkit::work::{TestEnvironment, WorkRun};
use hubwright_testkit::{TestDatabase, test_secret_keys};
use hubwright_worker::kubernetes::{ClusterClients, NamespaceStep};
use hubwright_worker::{Registry, StepKind, idp};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::json;

use super::{cluster, done, failed, setup};

/// `idp-client` as a worker registers it, sealing with `keys`.
fn idp_client(clients: &Arc<ClusterClients>, sealing: bool) -> Arc<dyn StepKind> {
    let mut registry = Registry::new();
    let keys = sealing.then(|| Arc::new(test_secret_keys()));
    idp::register(&mut registry, clients, keys);
    Arc::clone(registry.get("idp-client").unwrap())
}

/// A run of an environment whose namespace the `namespace` step made (and
/// the cluster deletes when dropped): where `idp-client` writes its Secret.
async fn with_namespace(
    db: &TestDatabase,
    clock: &ManualClock,
    cluster: &TestCluster,
    clients: &Arc<ClusterClients>,
) -> (WorkRun, Environment, String) {
    let run = WorkRun::builder(&db.store, clock)
        .environment(TestEnvironment::named(&cluster.unique_name("steps")))
        .start()
        .await;
    let env = run.environment().unwrap().clone();
    let namespace = env.namespace.clone().unwrap();
    cluster.delete_on_drop(&namespace);
    done(
        run.work(&NamespaceStep::new(Arc::clone(clients)), json!({}))
            .await,
    );
    (run, env, namespace)
}

#[tokio::test]
async fn local_mode_writes_a_generated_admin_password_sealed_once_and_reused() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let (mut run, env, namespace) = with_namespace(&db, &clock, &cluster, &clients).await;
    let step = idp_client(&clients, true);

    let output = done(run.work(step.as_ref(), json!({ "mode": "local" })).await);
    assert_eq!(
        output,
        json!({ "mode": "local", "secret": idp::DEFAULT_SECRET })
    );

    let secrets = Api::<Secret>::namespaced(cluster.client().await.unwrap(), &namespace);
    let read_password = || async {
        let secret = secrets.get(idp::DEFAULT_SECRET).await.unwrap();
        let data = secret.data.unwrap();
        String::from_utf8(data["ADMIN_PASSWORD"].0.clone()).unwrap()
    };
    let password = read_password().await;
    assert_eq!(password.len(), 32);
    assert!(
        password.chars().all(|c| c.is_ascii_alphanumeric()),
        "{password}"
    );
    let sealed = db
        .store
        .secret(&test_secret_keys(), env.id, "local-admin-password")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealed.expose(), password, "the Secret holds what is sealed");

    // Another attempt finds the sealed password: the hub's login stays the same.
    run.next_attempt();
    done(run.work(step.as_ref(), json!({ "mode": "local" })).await);
    assert_eq!(read_password().await, password);
    db.drop_now().await;
}

#[tokio::test]
async fn a_hub_api_token_is_sealed_once_written_beside_the_credentials_and_never_in_the_output() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let (mut run, env, namespace) = with_namespace(&db, &clock, &cluster, &clients).await;
    let step = idp_client(&clients, true);
    let params = json!({ "mode": "local", "hub_api_token": true });

    let output = done(run.work(step.as_ref(), params.clone()).await);
    assert_eq!(
        output,
        json!({ "mode": "local", "secret": idp::DEFAULT_SECRET, "api_token": true })
    );
    let secrets = Api::<Secret>::namespaced(cluster.client().await.unwrap(), &namespace);
    let read_token = || async {
        let secret = secrets.get(idp::DEFAULT_SECRET).await.unwrap();
        let data = secret.data.unwrap();
        assert!(
            data.contains_key("ADMIN_PASSWORD"),
            "beside the credentials"
        );
        String::from_utf8(data[hubwright_worker::hub::API_TOKEN_KEY].0.clone()).unwrap()
    };
    let token = read_token().await;
    assert!(token.len() >= 32, "{}", token.len());
    assert!(!output.to_string().contains(&token));
    let sealed = db
        .store
        .secret(
            &test_secret_keys(),
            env.id,
            hubwright_worker::hub::API_TOKEN_SECRET,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealed.expose(), token, "the Secret holds what is sealed");

    // Another attempt finds the sealed token: the hub's service keeps it.
    run.next_attempt();
    done(run.work(step.as_ref(), params).await);
    assert_eq!(read_token().await, token);
    db.drop_now().await;
}

#[tokio::test]
async fn idp_client_without_a_secret_key_or_with_an_unknown_mode_fails_permanently() {
    let (db, clock) = setup().await;
    let (cluster, clients) = cluster().await;
    let run = WorkRun::builder(&db.store, &clock)
        .environment(TestEnvironment::named(&cluster.unique_name("steps")))
        .start()
        .await;

    let error = failed(
        run.work(
            idp_client(&clients, false).as_ref(),
            json!({ "mode": "local" }),
        )
        .await,
    );
    assert_eq!(
        error.message,
        "HUBWRIGHT_SECRET_KEY is not configured on this worker; it seals the hub's credentials"
    );
    let error = failed(
        run.work(
            idp_client(&clients, true).as_ref(),
            json!({ "mode": "saml" }),
        )
        .await,
    );
    assert_eq!(
        error.message,
        "with.mode: `saml` is neither `oidc` nor `local`"
    );
    db.drop_now().await;
}
