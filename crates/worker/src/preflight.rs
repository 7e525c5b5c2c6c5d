//! What a worker checks at start-up about the templates it serves: the
//! clusters their Kubernetes steps need and the `helm` their releases need.
//! Nothing here stops the worker (other templates may still work, and a
//! kubeconfig may appear later); `serve` logs each finding as a warning that
//! names the template, what is missing and what to do, instead of letting
//! the first environment fail an hour later.

use std::collections::BTreeMap;
use std::path::Path;

use hubwright_state::workflow::Catalog;

use crate::kubernetes::ClusterClients;

/// Step kinds that call a cluster's API (directly or through helm).
const CLUSTER_KINDS: [&str; 4] = ["namespace", "idp-client", "helm-release", "health-check"];

/// The step kind that runs `helm` to install a release.
const HELM_KIND: &str = "helm-release";

/// Something a template needs that this worker does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The template.
    pub template: String,
    /// What is missing, and what to do about it.
    pub message: String,
}

/// What the templates of `catalog` need and this worker lacks: a usable
/// client for each configured cluster, and the `helm` binary `helm` names
/// (`$HELM_BIN` or `helm` on `PATH`). Reads kubeconfig files; calls no
/// cluster.
pub async fn check(catalog: &Catalog, clusters: &ClusterClients, helm: &Path) -> Vec<Missing> {
    let mut unusable: BTreeMap<String, String> = BTreeMap::new();
    for name in clusters.names() {
        if let Err(err) = clusters.client(&name).await {
            unusable.insert(name, err.message);
        }
    }
    let helm_found = crate::helm::locate(helm).is_some();
    let no_helm = if helm.components().count() > 1 {
        format!("HELM_BIN ({}) is not an executable file", helm.display())
    } else {
        format!(
            "there is no `{}` on PATH and HELM_BIN is not set",
            helm.display()
        )
    };
    let mut missing = Vec::new();
    for name in catalog.names() {
        let Some(loaded) = catalog.template(name) else {
            continue;
        };
        let kinds: Vec<&str> = loaded
            .template
            .workflows
            .values()
            .flat_map(|workflow| workflow.steps.iter().map(|step| step.kind.as_str()))
            .collect();
        if kinds.iter().any(|kind| CLUSTER_KINDS.contains(kind)) {
            for (cluster, reason) in &unusable {
                missing.push(Missing {
                    template: name.to_owned(),
                    // The reason names the cluster already.
                    message: format!(
                        "template `{name}` needs a Kubernetes cluster, and {reason}; give cluster \
                         `{cluster}` a kubeconfig (KUBECONFIG, or --clusters with a clusters file), \
                         or its environments there fail at their first step"
                    ),
                });
            }
        }
        if !helm_found && kinds.contains(&HELM_KIND) {
            missing.push(Missing {
                template: name.to_owned(),
                message: format!(
                    "template `{name}` installs a Helm release, and {no_helm}; install helm 3 \
                     or 4 on PATH or set HELM_BIN, or its environments fail at their \
                     `{HELM_KIND}` step"
                ),
            });
        }
    }
    missing
}
