//! OpenAPI v3: the `/openapi/v3` index and one document per group-version
//! (`/openapi/v3/api/v1`, `/openapi/v3/apis/apps/v1`, ...), built from the
//! resource table.
//!
//! What clients do with them: client-go's field-validation verifier (used by
//! helm's and kubectl's object builder) looks in a group-version's document
//! for the PATCH operation carrying the kind's `x-kubernetes-group-version-kind`
//! and a `fieldValidation` query parameter; when it is there, the client
//! leaves validation to the server and does no schema validation itself.
//! So the paths and parameters are real, while every kind's schema is
//! permissive: an object with `apiVersion`, `kind` and `metadata` that keeps
//! unknown fields (`x-kubernetes-preserve-unknown-fields`). The real
//! documents carry the full schemas.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use super::discovery;
use super::resources::{RESOURCES, ResourceType, groups};

/// `/openapi/v3`: every served group-version and where its document is.
pub fn index() -> Value {
    let mut paths = Map::new();
    for (group, versions) in groups() {
        for version in versions {
            let key = group_version_path(group, version);
            let Some(doc) = document(group, version) else {
                continue;
            };
            let url = format!("/openapi/v3/{key}?hash={}", hash(&doc));
            paths.insert(key, json!({ "serverRelativeURL": url }));
        }
    }
    json!({ "paths": paths })
}

/// `api/v1` or `apis/apps/v1`.
fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The real server hashes each document with SHA-512; any stable hash does
/// for clients, which only compare and send it back.
fn hash(doc: &Value) -> String {
    let mut h = DefaultHasher::new();
    doc.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// The document for `/openapi/v3/{rest}` (`api/v1`, `apis/apps/v1`), if served.
pub fn document_at(rest: &str) -> Option<Value> {
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", v] => document("", v),
        ["apis", g, v] => document(g, v),
        _ => None,
    }
}

/// The document for one group-version, if served.
pub fn document(group: &str, version: &str) -> Option<Value> {
    let members: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if members.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = meta_schemas();
    for rt in members {
        paths.extend(resource_paths(rt));
        schemas.insert(schema_name(rt, rt.kind), kind_schema(rt));
        schemas.insert(
            schema_name(rt, &format!("{}List", rt.kind)),
            list_schema(rt),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": discovery::version()["gitVersion"] },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": { "type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header" }
            }
        },
        "security": [{ "BearerToken": [] }]
    }))
}

/// `io.k8s.api.core.v1.ConfigMap`, `io.k8s.api.apps.v1.DeploymentList`.
fn schema_name(rt: &ResourceType, kind: &str) -> String {
    format!("io.k8s.api.{}.{}.{kind}", rt.internal_package(), rt.version)
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

fn gvk(rt: &ResourceType, kind: &str) -> Value {
    json!({ "group": rt.group, "version": rt.version, "kind": kind })
}

fn kind_schema(rt: &ResourceType) -> Value {
    json!({
        "description": format!("{} (permissive: the stand-in does not describe its fields).", rt.kind),
        "type": "object",
        "properties": {
            "apiVersion": { "type": "string" },
            "kind": { "type": "string" },
            "metadata": { "allOf": [schema_ref(&format!("{META}.ObjectMeta"))], "default": {} }
        },
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-group-version-kind": [gvk(rt, rt.kind)]
    })
}

fn list_schema(rt: &ResourceType) -> Value {
    let kind = format!("{}List", rt.kind);
    json!({
        "description": format!("A list of {}.", rt.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": { "type": "string" },
            "kind": { "type": "string" },
            "items": { "type": "array", "items": { "allOf": [schema_ref(&schema_name(rt, rt.kind))], "default": {} } },
            "metadata": { "allOf": [schema_ref(&format!("{META}.ListMeta"))], "default": {} }
        },
        "x-kubernetes-group-version-kind": [gvk(rt, &kind)]
    })
}

/// The meta types every document refers to, all permissive.
fn meta_schemas() -> Map<String, Value> {
    let permissive = |what: &str| json!({ "description": what, "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    let mut m = Map::new();
    for (name, what) in [
        ("ObjectMeta", "Standard object metadata."),
        ("ListMeta", "Standard list metadata."),
        (
            "Status",
            "The result of an operation that returns no object.",
        ),
        ("DeleteOptions", "Options for a delete."),
        (
            "Patch",
            "A patch body; its form depends on the Content-Type.",
        ),
    ] {
        m.insert(format!("{META}.{name}"), permissive(what));
    }
    m
}

fn query(name: &str, description: &str, ty: &str) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": { "type": ty, "uniqueItems": true } })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string", "uniqueItems": true } })
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut v = vec![
        query(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
            "string",
        ),
        query(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
            "string",
        ),
        query(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict.",
            "string",
        ),
    ];
    if patch {
        v.push(query(
            "force",
            "Force is going to \"force\" Apply requests. It must be unset for non-apply patch requests.",
            "boolean",
        ));
    }
    v
}

fn json_content(schema: &Value) -> Value {
    json!({
        "application/json": { "schema": schema },
        "application/yaml": { "schema": schema },
        "application/vnd.kubernetes.protobuf": { "schema": schema }
    })
}

/// An operation: `action` is `get`, `list`, `post`, `put`, `patch`,
/// `delete` or `deletecollection`, as `x-kubernetes-action` names them.
fn operation(
    rt: &ResourceType,
    id: &str,
    action: &str,
    params: Vec<Value>,
    body: Option<Value>,
    ok: &Value,
) -> Value {
    let group_tag = if rt.group.is_empty() {
        "core".to_owned()
    } else {
        lower_first(&camel_group(rt.group))
    };
    let mut responses = json!({
        "200": { "description": "OK", "content": json_content(ok) },
        "401": { "description": "Unauthorized" }
    });
    if action == "post" || action == "put" || action == "patch" {
        responses["201"] = json!({ "description": "Created", "content": json_content(ok) });
    }
    if action == "post" || action == "delete" {
        responses["202"] = json!({ "description": "Accepted", "content": json_content(ok) });
    }
    let mut op = json!({
        "tags": [format!("{group_tag}_{}", rt.version)],
        "operationId": id,
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(rt, rt.kind)
    });
    if let Some(body) = body {
        op["requestBody"] = json!({ "content": body, "required": true });
    }
    op
}

/// `rbac.authorization.k8s.io` -> `RbacAuthorization`, `""` -> `Core`.
fn camel_group(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_owned();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(upper_first)
        .collect()
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// The collection, object and status paths of one resource type, with the
/// operations the stand-in serves on them.
fn resource_paths(rt: &ResourceType) -> Map<String, Value> {
    let base = if rt.group.is_empty() {
        format!("/api/{}", rt.version)
    } else {
        format!("/apis/{}/{}", rt.group, rt.version)
    };
    let (collection, scope) = if rt.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", rt.plural),
            "Namespaced",
        )
    } else {
        (format!("{base}/{}", rt.plural), "")
    };
    let prefix = format!("{}{}", camel_group(rt.group), upper_first(rt.version));
    let id = |verb: &str, suffix: &str| format!("{verb}{prefix}{scope}{}{suffix}", rt.kind);
    let object = schema_ref(&schema_name(rt, rt.kind));
    let list = schema_ref(&schema_name(rt, &format!("{}List", rt.kind)));
    let status = schema_ref(&format!("{META}.Status"));
    let body = json_content(&object);
    let patch_body = {
        let patch = schema_ref(&format!("{META}.Patch"));
        json!({
            "application/apply-patch+yaml": { "schema": patch },
            "application/json-patch+json": { "schema": patch },
            "application/merge-patch+json": { "schema": patch },
            "application/strategic-merge-patch+json": { "schema": patch }
        })
    };
    let mut shared = vec![query(
        "pretty",
        "If 'true', then the output is pretty printed.",
        "string",
    )];
    if rt.namespaced {
        shared.insert(
            0,
            path_param(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ),
        );
    }
    let list_params = vec![
        query(
            "labelSelector",
            "A selector to restrict the list of returned objects by their labels.",
            "string",
        ),
        query(
            "fieldSelector",
            "A selector to restrict the list of returned objects by their fields.",
            "string",
        ),
        query(
            "resourceVersion",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
            "string",
        ),
        query(
            "timeoutSeconds",
            "Timeout for the list/watch call.",
            "integer",
        ),
        query(
            "watch",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
            "boolean",
        ),
    ];

    let mut paths = Map::new();
    let mut coll = json!({
        "get": operation(rt, &id("list", ""), "list", list_params.clone(), None, &list),
        "post": operation(rt, &id("create", ""), "post", write_params(false), Some(body.clone()), &object),
        "parameters": shared
    });
    if discovery::verbs(rt).contains(&"deletecollection") {
        coll["delete"] = operation(
            rt,
            &id("deletecollection", ""),
            "deletecollection",
            list_params,
            None,
            &status,
        );
    }
    paths.insert(collection.clone(), coll);

    let mut named = shared.clone();
    named.insert(0, path_param("name", &format!("name of the {}", rt.kind)));
    paths.insert(
        format!("{collection}/{{name}}"),
        json!({
            "get": operation(rt, &id("read", ""), "get", vec![], None, &object),
            "put": operation(rt, &id("replace", ""), "put", write_params(false), Some(body.clone()), &object),
            "patch": operation(rt, &id("patch", ""), "patch", write_params(true), Some(patch_body.clone()), &object),
            "delete": operation(rt, &id("delete", ""), "delete", vec![], Some(json_content(&schema_ref(&format!("{META}.DeleteOptions")))), &status),
            "parameters": named
        }),
    );
    if rt.status {
        paths.insert(
            format!("{collection}/{{name}}/status"),
            json!({
                "get": operation(rt, &id("read", "Status"), "get", vec![], None, &object),
                "put": operation(rt, &id("replace", "Status"), "put", write_params(false), Some(body), &object),
                "patch": operation(rt, &id("patch", "Status"), "patch", write_params(true), Some(patch_body), &object),
                "parameters": named
            }),
        );
    }
    paths
}
