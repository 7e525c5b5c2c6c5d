//! An extension reaches the cluster: workers bring the namespace's
//! `hubwright.io/expires-at` label, and its objects', up to the new expiry.

use hubwright_sandbox::apiserver::{Fault, Verb};
use hubwright_state::SystemClock;
use hubwright_state::clusters::Clusters;
use hubwright_state::{Clock, model::Environment};
use hubwright_worker::kubernetes::{ClusterClients, ExpiryLabels, Relabelled};
use kube::ResourceExt;

use crate::BIN;

use super::*;

fn label(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H-%M-%SZ").to_string()
}

impl Lab {
    fn expiry_labels(&self) -> ExpiryLabels {
        let clusters = Clusters::load(&self.clusters_file).unwrap();
        ExpiryLabels::new(
            self.store().clone(),
            ClusterClients::new(clusters),
            Duration::from_secs(3600),
        )
    }

    /// A ready environment and what the store says of it.
    async fn ready(&self) -> Environment {
        let requested = self.0.request(json!({})).await;
        wait::run_state(self.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
        self.store().environment(requested.id).await.unwrap()
    }

    /// Extends `env` by a day, as the API does.
    async fn extend(&self, env: &Environment) -> Environment {
        let later = env.expires_at + chrono::Duration::days(1);
        self.store()
            .extend_environment(env.id, later, None, "alice", SystemClock.now())
            .await
            .unwrap()
    }

    /// The expiry label of the namespace and of each object in it.
    async fn expiry_labels_of(&self, namespace: &str) -> BTreeMap<String, String> {
        let client = self.client().await;
        let key = "hubwright.io/expires-at";
        let mut labels = BTreeMap::new();
        let ns = self.namespaces().await.get(namespace).await.unwrap();
        labels.insert("namespace".to_owned(), ns.labels()[key].clone());
        let quota = Api::<ResourceQuota>::namespaced(client.clone(), namespace)
            .get("hubwright")
            .await
            .unwrap();
        labels.insert("quota".to_owned(), quota.labels()[key].clone());
        let limits = Api::<LimitRange>::namespaced(client.clone(), namespace)
            .get("hubwright")
            .await
            .unwrap();
        labels.insert("limits".to_owned(), limits.labels()[key].clone());
        for policy in Api::<NetworkPolicy>::namespaced(client, namespace)
            .list(&Default::default())
            .await
            .unwrap()
        {
            labels.insert(policy.name_any(), policy.labels()[key].clone());
        }
        labels
    }
}

#[tokio::test]
async fn an_extension_reaches_the_labels_of_the_namespace_and_its_objects_and_nothing_else() {
    let lab = Lab::new().await;
    let _worker = lab.worker("w1");
    let env = lab.ready().await;
    let namespace = env.namespace.clone().unwrap();
    let relabel = lab.expiry_labels();
    assert_eq!(
        relabel.pass().await.unwrap(),
        Relabelled::default(),
        "the namespace step recorded the expiry it labelled: nothing lags"
    );

    let quota_before = Api::<ResourceQuota>::namespaced(lab.client().await, &namespace)
        .get("hubwright")
        .await
        .unwrap();
    let extended = lab.extend(&env).await;
    let old = lab.expiry_labels_of(&namespace).await;
    assert!(
        old.values().all(|value| *value == label(env.expires_at)),
        "{old:?}"
    );

    assert_eq!(
        relabel.pass().await.unwrap(),
        Relabelled { done: 1, failed: 0 }
    );
    let new = lab.expiry_labels_of(&namespace).await;
    assert_eq!(
        new.len(),
        5,
        "namespace, quota, limits, two policies: {new:?}"
    );
    assert!(
        new.values()
            .all(|value| *value == label(extended.expires_at)),
        "{new:?}"
    );
    // Only the label moved: the other labels and the quota's limits stay.
    let ns = lab.namespaces().await.get(&namespace).await.unwrap();
    assert_eq!(ns.labels()["hubwright.io/owner"], "alice_example.com");
    let quota = Api::<ResourceQuota>::namespaced(lab.client().await, &namespace)
        .get("hubwright")
        .await
        .unwrap();
    assert_eq!(quota.spec, quota_before.spec);

    assert_eq!(
        relabel.pass().await.unwrap(),
        Relabelled::default(),
        "recorded: the next pass has nothing to do"
    );
}

#[tokio::test]
async fn a_cluster_that_fails_is_tried_again_and_a_namespace_not_the_environments_is_left_alone() {
    let lab = Lab::new().await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    let _worker = lab.worker("w1");
    let env = lab.ready().await;
    let namespace = env.namespace.clone().unwrap();
    let relabel = lab.expiry_labels();
    let extended = lab.extend(&env).await;

    standin.inject(
        Fault::status(503)
            .on_verb(Verb::Patch)
            .on_resource("namespaces")
            .times(1),
    );
    assert_eq!(
        relabel.pass().await.unwrap(),
        Relabelled { done: 0, failed: 1 }
    );
    assert_eq!(
        lab.expiry_labels_of(&namespace).await["namespace"],
        label(env.expires_at)
    );
    assert_eq!(
        relabel.pass().await.unwrap(),
        Relabelled { done: 1, failed: 0 }
    );
    assert_eq!(
        lab.expiry_labels_of(&namespace).await["namespace"],
        label(extended.expires_at)
    );

    // Someone relabels the namespace as another environment's: hubwright
    // never changes it again, and does not try every pass either.
    lab.namespaces()
        .await
        .patch(
            &namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": {
                "hubwright.io/environment": Uuid::now_v7().to_string()
            } } })),
        )
        .await
        .unwrap();
    let again = lab.extend(&extended).await;
    assert_eq!(
        relabel.pass().await.unwrap(),
        Relabelled { done: 1, failed: 0 }
    );
    assert_eq!(
        lab.expiry_labels_of(&namespace).await["namespace"],
        label(extended.expires_at),
        "not relabelled to {}",
        again.expires_at
    );
    assert_eq!(relabel.pass().await.unwrap(), Relabelled::default());
}

#[tokio::test]
async fn a_worker_process_carries_an_extension_to_the_namespace_label() {
    let lab = Lab::new().await;
    let _worker = lab.worker_process(
        BIN,
        "worker",
        &[("HUBWRIGHT_EXPIRY_LABEL_INTERVAL", "200ms")],
    );
    let env = lab.ready().await;
    let namespace = env.namespace.clone().unwrap();
    let extended = lab.extend(&env).await;
    let want = label(extended.expires_at);
    let namespaces = lab.namespaces().await;
    wait::until(
        "the namespace's expiry label to say the extension",
        WITHIN,
        || async {
            let ns = namespaces.get(&namespace).await.unwrap();
            ns.labels().get("hubwright.io/expires-at") == Some(&want)
        },
    )
    .await;
}
