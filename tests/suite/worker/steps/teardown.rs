//! The teardown kinds decide by what their provisioning counterparts
//! recorded: nothing to undo where the counterpart never called out, even
//! when it started and failed (here: a cluster without a kubeconfig, no
//! helm, no secret key), and the real call once it did.

use std::sync::Arc;

use hubwright_state::clusters::{ClusterConfig, Clusters, DEFAULT_CLUSTER};
use hubwright_testkit::scratch_dir;
use hubwright_testkit::work::{TestEnvironment, WorkRun};
use hubwright_worker::kubernetes::ClusterClients;
use hubwright_worker::{Outcome, Registry};
use serde_json::json;

use super::{failed, setup};

/// The kinds over a cluster whose kubeconfig does not exist, a helm that
/// does not exist, and no secret key: any call out fails.
fn registry() -> Registry {
    let dir = scratch_dir("teardown-kinds");
    let clients = ClusterClients::new(Clusters::single(
        DEFAULT_CLUSTER,
        ClusterConfig {
            kubeconfig: Some(dir.join("no-such-kubeconfig")),
            ..ClusterConfig::default()
        },
    ));
    let mut registry = Registry::with_builtins();
    hubwright_worker::kubernetes::register(&mut registry, &clients);
    hubwright_worker::idp::register(&mut registry, &clients, None::<Arc<_>>);
    hubwright_worker::helm::register_with_bin(
        &mut registry,
        &clients,
        &dir,
        dir.join("no-such-helm"),
    );
    registry
}

const PAIRS: [(&str, &str); 3] = [
    ("namespace", "namespace-delete"),
    ("idp-client", "idp-client-delete"),
    ("helm-release", "helm-uninstall"),
];

#[tokio::test]
async fn teardown_kinds_whose_counterparts_failed_before_calling_out_are_done_without_calling_out()
{
    let (db, clock) = setup().await;
    let registry = registry();
    let run = WorkRun::builder(&db.store, &clock)
        .environment(TestEnvironment::named("never"))
        .start()
        .await;
    let provisioning = [
        json!({}),
        json!({ "mode": "local" }),
        json!({ "chart": "chart", "values": "values.yaml.j2" }),
    ];
    for ((creates, _), params) in PAIRS.iter().zip(provisioning) {
        let kind = registry.get(creates).unwrap();
        failed(run.work(kind.as_ref(), params).await);
    }
    for (_, removes) in PAIRS {
        let kind = registry.get(removes).unwrap();
        assert_eq!(
            run.work(kind.as_ref(), json!({})).await,
            Outcome::never_created(),
            "{removes}"
        );
    }

    // Once a counterpart recorded a call out, the teardown kind makes the
    // real call (which fails here: nothing it needs exists).
    for (creates, removes) in PAIRS {
        run.ctx()
            .calling_out(creates, "a test's record")
            .await
            .unwrap();
        let kind = registry.get(removes).unwrap();
        let error = failed(run.work(kind.as_ref(), json!({})).await);
        assert!(!error.message.is_empty(), "{removes}");
    }
    db.drop_now().await;
}
