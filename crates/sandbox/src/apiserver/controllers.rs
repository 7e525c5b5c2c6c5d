//! What a real cluster's controllers put in every namespace, and the objects
//! every cluster starts with: the root CA publisher's `kube-root-ca.crt`
//! ConfigMap, the service account controller's `default` ServiceAccount, and
//! the built-in `system-*` PriorityClasses.

use serde_json::{Value, json};

use super::fields::Scope;
use super::resources::{self, ResourceType};
use super::store::{Key, Store};
use super::write::{Patch, WriteCtx};

/// The name of the ConfigMap the root CA publisher keeps in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

fn kind(group: &str, plural: &str) -> Option<&'static ResourceType> {
    resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

fn controller() -> WriteCtx {
    WriteCtx {
        manager: "kube-controller-manager".to_owned(),
        force: false,
        scope: Scope::Main {
            status_subresource: false,
        },
    }
}

impl Store {
    /// One pass of the root CA publisher and the service account controller:
    /// each active namespace gets `kube-root-ca.crt` (holding `ca_pem`; put
    /// back when deleted or changed) and the `default` ServiceAccount (put
    /// back when deleted). Races with deletion end in 403 or 409, as on a
    /// real cluster, and are ignored.
    pub fn publish_namespace_defaults(&self, ca_pem: &str) {
        let (Some(cms), Some(sas)) = (kind("", "configmaps"), kind("", "serviceaccounts")) else {
            return;
        };
        let nsrt = resources::namespaces();
        let wanted_data = json!({ "ca.crt": ca_pem });
        let (missing_ca, changed_ca, missing_sa) = {
            let inner = self.lock();
            let active: Vec<String> = inner
                .objects
                .iter()
                .filter(|(k, v)| {
                    super::store::in_scope(k, nsrt, None)
                        && v.pointer("/metadata/deletionTimestamp").is_none()
                })
                .map(|(k, _)| k.name.clone())
                .collect();
            let ca = |ns: &String| inner.objects.get(&Key::new(cms, ns, ROOT_CA_CONFIG_MAP));
            let missing_ca: Vec<String> = active
                .iter()
                .filter(|ns| ca(ns).is_none())
                .cloned()
                .collect();
            // The patch that puts the data back: the CA, and null for any other key.
            let changed_ca: Vec<(String, Value)> = active
                .iter()
                .filter_map(|ns| {
                    let data = ca(ns)?.get("data").cloned().unwrap_or(Value::Null);
                    if data == wanted_data {
                        return None;
                    }
                    let mut reset = json!({ "ca.crt": ca_pem });
                    for key in data.as_object().into_iter().flat_map(|m| m.keys()) {
                        if key != "ca.crt" {
                            reset[key] = Value::Null;
                        }
                    }
                    Some((ns.clone(), json!({ "data": reset })))
                })
                .collect();
            let missing_sa: Vec<String> = active
                .iter()
                .filter(|ns| !inner.objects.contains_key(&Key::new(sas, ns, "default")))
                .cloned()
                .collect();
            (missing_ca, changed_ca, missing_sa)
        };
        let ctx = controller();
        for ns in missing_ca {
            let cm = json!({
                "metadata": {
                    "name": ROOT_CA_CONFIG_MAP,
                    "annotations": { "kubernetes.io/description": ROOT_CA_DESCRIPTION },
                },
                "data": wanted_data,
            });
            let _ = self.create(cms, &ns, cm, &ctx);
        }
        for (ns, reset) in changed_ca {
            let _ = self.patch(cms, &ns, ROOT_CA_CONFIG_MAP, Patch::Merge(reset), &ctx);
        }
        for ns in missing_sa {
            let sa = json!({ "metadata": { "name": "default" } });
            let _ = self.create(sas, &ns, sa, &ctx);
        }
    }

    /// Creates the PriorityClasses every cluster has (`system-cluster-critical`,
    /// `system-node-critical`), as the API server does at start-up.
    pub fn create_builtin_objects(&self) {
        let Some(pcs) = kind("scheduling.k8s.io", "priorityclasses") else {
            return;
        };
        let ctx = WriteCtx {
            manager: "kube-apiserver".to_owned(),
            ..controller()
        };
        for (name, value, description) in [
            (
                "system-cluster-critical",
                2_000_000_000,
                "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
            ),
            (
                "system-node-critical",
                2_000_001_000,
                "Used for system critical pods that must not be moved from their current node.",
            ),
        ] {
            let pc = json!({
                "metadata": { "name": name },
                "value": value,
                "description": description,
                "globalDefault": false,
                "preemptionPolicy": "PreemptLowerPriority",
            });
            let _ = self.create(pcs, "", pc, &ctx);
        }
    }
}
