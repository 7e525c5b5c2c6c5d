//! The Kubernetes clusters environments may be placed on, by name: a request's
//! `cluster` must be one of them. Read from `clusters.yaml` (`--clusters`);
//! without a file there is one cluster, `default`, reached the way kubectl
//! would (`$KUBECONFIG`, `~/.kube/config`, or the pod's service account).
//!
//! This is configuration only; the worker builds the clients.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::workflow::is_dns_label;

/// The name of the cluster used when no file configures any.
pub const DEFAULT_CLUSTER: &str = "default";

/// How to reach one cluster, and facts about it later steps use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// A kubeconfig file; relative paths are relative to the clusters file.
    /// Left out: `$KUBECONFIG` or `~/.kube/config`, or in-cluster.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; left out: its current context.
    #[serde(default)]
    pub context: Option<String>,
    /// Use the pod's service account (hubwright running inside this cluster).
    #[serde(default)]
    pub in_cluster: bool,
    /// Hubs get `{name}.{base_domain}` as their ingress host.
    #[serde(default)]
    pub base_domain: Option<String>,
    /// cert-manager issuer for TLS on that host; without one, hubs are
    /// served over plain `http` at their ingress host.
    #[serde(default)]
    pub tls_issuer: Option<String>,
    /// The IngressClass hubs' Ingresses name; left out: the cluster's
    /// default class.
    #[serde(default)]
    pub ingress_class: Option<String>,
}

/// Every configured cluster by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clusters {
    clusters: BTreeMap<String, ClusterConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClustersFile {
    clusters: BTreeMap<String, ClusterConfig>,
}

/// A clusters file that cannot be used; names the file, the place and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}: {rule}")]
pub struct ClustersError {
    /// The file.
    pub file: String,
    /// Where in it.
    pub place: String,
    /// What is wrong.
    pub rule: String,
}

impl Default for Clusters {
    fn default() -> Self {
        Self::single(DEFAULT_CLUSTER, ClusterConfig::default())
    }
}

impl Clusters {
    /// Reads and checks a clusters file.
    pub fn load(path: &Path) -> Result<Self, ClustersError> {
        let error = |place: &str, rule: String| ClustersError {
            file: path.display().to_string(),
            place: place.to_owned(),
            rule,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|err| error("(file)", format!("cannot read it: {err}")))?;
        let file: ClustersFile = serde_yaml_ng::from_str(&text)
            .map_err(|err| error("(file)", format!("not a clusters file: {err}")))?;
        if file.clusters.is_empty() {
            return Err(error(
                "clusters",
                "must name at least one cluster".to_owned(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut clusters = BTreeMap::new();
        for (name, mut config) in file.clusters {
            let place = format!("clusters.{name}");
            if !is_dns_label(&name, 63) {
                return Err(error(
                    &place,
                    "a cluster name must be a DNS-1123 label (lowercase letters, digits, `-`)"
                        .to_owned(),
                ));
            }
            if config.in_cluster && (config.kubeconfig.is_some() || config.context.is_some()) {
                return Err(error(
                    &place,
                    "in_cluster cannot be combined with kubeconfig or context".to_owned(),
                ));
            }
            if let Some(file) = &config.kubeconfig {
                let resolved = base.join(file);
                if !resolved.is_file() {
                    return Err(error(
                        &format!("{place}.kubeconfig"),
                        format!("{} is not a file", resolved.display()),
                    ));
                }
                config.kubeconfig = Some(resolved);
            }
            clusters.insert(name, config);
        }
        Ok(Self { clusters })
    }

    /// One cluster, configured in code (tests, the demo).
    pub fn single(name: &str, config: ClusterConfig) -> Self {
        Self {
            clusters: BTreeMap::from([(name.to_owned(), config)]),
        }
    }

    /// The cluster called `name`.
    pub fn get(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.get(name)
    }

    /// Every cluster's name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.clusters.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("clusters.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn scratch() -> PathBuf {
        std::env::temp_dir().join(format!(
            "hubwright-clusters-{}",
            uuid::Uuid::now_v7().simple()
        ))
    }

    #[test]
    fn a_clusters_file_resolves_kubeconfigs_next_to_it() {
        let dir = scratch();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("east.kubeconfig"), "apiVersion: v1\n").unwrap();
        let path = write(
            &dir,
            "clusters:\n  east:\n    kubeconfig: east.kubeconfig\n    context: kind-east\n    base_domain: east.example.org\n  home:\n    in_cluster: true\n",
        );
        let clusters = Clusters::load(&path).unwrap();
        assert_eq!(clusters.names(), ["east", "home"]);
        let east = clusters.get("east").unwrap();
        assert_eq!(
            east.kubeconfig.as_deref(),
            Some(dir.join("east.kubeconfig").as_path())
        );
        assert_eq!(east.context.as_deref(), Some("kind-east"));
        assert!(clusters.get("home").unwrap().in_cluster);
        assert!(clusters.get("west").is_none());
    }

    #[test]
    fn a_bad_clusters_file_names_the_place_and_the_rule() {
        let dir = scratch();
        let cases = [
            ("clusters: {}\n", "clusters", "at least one"),
            ("clusters:\n  East_1: {}\n", "clusters.East_1", "DNS-1123"),
            (
                "clusters:\n  a: { kubeconfig: missing.yaml }\n",
                "clusters.a.kubeconfig",
                "is not a file",
            ),
            (
                "clusters:\n  a: { in_cluster: true, context: x }\n",
                "clusters.a",
                "cannot be combined",
            ),
            (
                "clusters:\n  a: { server: x }\n",
                "(file)",
                "unknown field `server`",
            ),
        ];
        for (text, place, rule) in cases {
            let err = Clusters::load(&write(&dir, text)).unwrap_err();
            assert_eq!(err.place, place, "{text}: {err}");
            assert!(err.rule.contains(rule), "{text}: {err}");
        }
    }
}
