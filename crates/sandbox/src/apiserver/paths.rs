//! What a request's path names, and which verb it is.

use std::collections::HashMap;

use axum::http::Method;

use super::faults::Verb;
use super::resources::{self, ResourceType};

/// What a path names.
#[derive(Debug)]
pub(super) enum Target {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList(String, String),
    OpenApiIndex,
    OpenApiV2,
    OpenApi(String),
    Resource(ResourceTarget),
    PortForward { namespace: String, pod: String },
    Unknown,
}

/// A path under a resource type.
#[derive(Debug)]
pub(super) struct ResourceTarget {
    /// The resource type.
    pub rt: &'static ResourceType,
    /// The namespace in the path, for namespaced kinds.
    pub namespace: Option<String>,
    /// The object's name, when the path names one.
    pub name: Option<String>,
    /// Whether the path ends in `/status`.
    pub status: bool,
}

pub(super) fn parse_path(path: &str) -> Target {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => Target::Version,
        ["api"] => Target::CoreVersions,
        ["api", "v1"] => Target::ResourceList(String::new(), "v1".to_owned()),
        ["api", "v1", "namespaces", ns, "pods", pod, "portforward"] => Target::PortForward {
            namespace: (*ns).to_owned(),
            pod: (*pod).to_owned(),
        },
        ["api", "v1", rest @ ..] => parse_resource("", "v1", rest),
        ["apis"] => Target::Groups,
        ["apis", g] => Target::Group((*g).to_owned()),
        ["apis", g, v] => Target::ResourceList((*g).to_owned(), (*v).to_owned()),
        ["apis", g, v, rest @ ..] => parse_resource(g, v, rest),
        ["openapi", "v2"] => Target::OpenApiV2,
        ["openapi", "v3"] => Target::OpenApiIndex,
        ["openapi", "v3", rest @ ..] => Target::OpenApi(rest.join("/")),
        _ => Target::Unknown,
    }
}

fn parse_resource(group: &str, version: &str, rest: &[&str]) -> Target {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if plural_is_namespaced(group, version, plural) => (
            Some((*ns).to_owned()),
            std::iter::once(*plural)
                .chain(tail.iter().copied())
                .collect::<Vec<_>>(),
        ),
        _ => (None, rest.to_vec()),
    };
    let Some((plural, tail)) = rest.split_first() else {
        return Target::Unknown;
    };
    let Some(rt) = resources::find(group, version, plural) else {
        return Target::Unknown;
    };
    if rt.namespaced != namespace.is_some() && !tail.is_empty() {
        return Target::Unknown;
    }
    if !rt.namespaced && namespace.is_some() {
        return Target::Unknown;
    }
    let (name, status) = match tail {
        [] => (None, false),
        [name] => (Some((*name).to_owned()), false),
        [name, "status"] if rt.status => (Some((*name).to_owned()), true),
        _ => return Target::Unknown,
    };
    Target::Resource(ResourceTarget {
        rt,
        namespace,
        name,
        status,
    })
}

fn plural_is_namespaced(group: &str, version: &str, plural: &str) -> bool {
    resources::find(group, version, plural).is_some_and(|r| r.namespaced)
}

pub(super) fn verb_of(
    method: &Method,
    target: &Target,
    query: &HashMap<String, String>,
) -> Option<Verb> {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match target {
        Target::Resource(t) => Some(match (method.as_str(), t.name.is_some()) {
            ("GET", _) if watch => Verb::Watch,
            ("GET", true) => Verb::Get,
            ("GET", false) => Verb::List,
            ("POST", _) => Verb::Create,
            ("PUT", _) => Verb::Update,
            ("PATCH", _) => Verb::Patch,
            ("DELETE", true) => Verb::Delete,
            ("DELETE", false) => Verb::DeleteCollection,
            _ => return None,
        }),
        // RBAC asks for `create` on `pods/portforward`, whatever the method.
        Target::PortForward { .. } => Some(Verb::Create),
        Target::Unknown => None,
        _ => Some(Verb::Get),
    }
}
