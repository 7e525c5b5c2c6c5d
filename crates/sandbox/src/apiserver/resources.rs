//! The table of resource types the stand-in serves. Adding a kind is one row.

/// How the real API server validates a kind's `metadata.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 label: namespaces.
    Dns1123Label,
    /// RFC 1035 label (starts with a letter): services.
    Dns1035Label,
    /// RFC 1123 subdomain: most kinds.
    Dns1123Subdomain,
    /// A path segment (not `.`/`..`, no `/` or `%`): RBAC kinds.
    PathSegment,
}

/// One resource type: where it lives in the API and how it behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Kind, e.g. `ConfigMap`.
    pub kind: &'static str,
    /// Plural resource name used in paths, e.g. `configmaps`.
    pub plural: &'static str,
    /// Lower-case singular name shown in discovery.
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether `/status` is a subresource (then main-resource writes ignore `status`).
    pub status: bool,
    /// Whether the server maintains `metadata.generation` for this kind.
    pub generation: bool,
    /// Whether an immediate DELETE returns the object instead of a `Status`.
    pub returns_deleted: bool,
    /// How `metadata.name` is validated.
    pub names: NameRule,
    /// Short names listed in discovery.
    pub short_names: &'static [&'static str],
}

use NameRule::{Dns1035Label, Dns1123Label, Dns1123Subdomain, PathSegment};

#[allow(clippy::too_many_arguments)] // one table row, positional on purpose
const fn row(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    status: bool,
    generation: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        status,
        generation,
        returns_deleted: false,
        names: Dns1123Subdomain,
        short_names: &[],
    }
}

impl ResourceType {
    const fn names(mut self, names: NameRule) -> Self {
        self.names = names;
        self
    }
    const fn short(mut self, short_names: &'static [&'static str]) -> Self {
        self.short_names = short_names;
        self
    }
    const fn returns_deleted(mut self) -> Self {
        self.returns_deleted = true;
        self
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `configmaps` or `deployments.apps`, as error messages name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `ConfigMap` or `Deployment.apps`, as `Invalid` errors name a kind.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The name of the internal Go package, as decode errors print it.
    pub fn internal_package(&self) -> &'static str {
        match self.group {
            "" => "core",
            // `networking.k8s.io` → `networking`, `rbac.authorization.k8s.io` → `rbac`.
            group => group.split('.').next().unwrap_or(group),
        }
    }
}

/// Every resource type served. (group, version, kind, plural, singular,
/// namespaced, status subresource, generation).
#[rustfmt::skip]
pub static RESOURCES: &[ResourceType] = &[
    row("", "v1", "Namespace", "namespaces", "namespace", false, true, false)
        .names(Dns1123Label)
        .short(&["ns"]),
    row("", "v1", "Secret", "secrets", "secret", true, false, false),
    row("", "v1", "ConfigMap", "configmaps", "configmap", true, false, false).short(&["cm"]),
    row("", "v1", "Service", "services", "service", true, true, false)
        .names(Dns1035Label)
        .short(&["svc"]),
    row("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, false, false)
        .short(&["sa"]),
    row("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, true, false)
        .short(&["pvc"]),
    row("", "v1", "Pod", "pods", "pod", true, true, true)
        .returns_deleted()
        .short(&["po"]),
    row("", "v1", "Event", "events", "event", true, false, false).short(&["ev"]),
    row("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true, true, false)
        .short(&["quota"]),
    row("", "v1", "LimitRange", "limitranges", "limitrange", true, false, false)
        .short(&["limits"]),
    row("apps", "v1", "Deployment", "deployments", "deployment", true, true, true)
        .short(&["deploy"]),
    row("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, true, true)
        .short(&["sts"]),
    row("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, true, true)
        .short(&["ds"]),
    row("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true, false, true)
        .short(&["netpol"]),
    row("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, true, true)
        .short(&["ing"]),
    row("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, false, false)
        .names(PathSegment),
    row("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true, false, false)
        .names(PathSegment),
    row("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true, true, true)
        .short(&["pdb"]),
    row("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, false, false)
        .names(PathSegment),
    row("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false, false, false)
        .names(PathSegment),
    row("batch", "v1", "Job", "jobs", "job", true, true, true),
    row("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false, false, false)
        .short(&["pc"]),
];

/// The resource type served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The namespace resource type.
pub fn namespaces() -> &'static ResourceType {
    &RESOURCES[0]
}

/// The `(group, [versions])` pairs served, core group first, in table order.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}
