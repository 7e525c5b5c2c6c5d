//! Request handling: authentication, the request log, faults, path parsing and
//! dispatch to discovery, the store and watch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::Notify;

use super::discovery;
use super::faults::{self, Fault, FaultAction, RequestRecord, Verb};
use super::fields::Scope;
use super::openapi;
use super::openapi_v2;
use super::paths::{ResourceTarget, Target, parse_path, verb_of};
use super::portforward::{self, Forwards};
use super::protobuf;
use super::resources::{self, ResourceType};
use super::selector::Selector;
use super::status::{ApiError, ApiResult, Cause};
use super::store::Store;
use super::watch;
use super::watch_options::{self, WatchRequest};
use super::write::{Patch, WriteCtx};

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    /// The objects.
    pub store: Arc<Store>,
    /// The bearer token clients must present.
    pub token: String,
    /// Fault rules, in the order added.
    pub faults: Mutex<Vec<Fault>>,
    /// Every request received, in order.
    pub log: Mutex<Vec<RequestRecord>>,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// `127.0.0.1:PORT`, for `/api`'s `serverAddressByClientCIDRs`.
    pub address: String,
    /// Where pods' ports lead, for `pods/{name}/portforward`.
    pub forwards: Mutex<Forwards>,
}

/// Largest request body accepted (the real server's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

fn json_response(code: u16, value: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(value.to_string()))
        .unwrap_or_default()
}

fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.body);
    if let Some(s) = e.retry_after
        && let Ok(v) = s.to_string().parse()
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The real server's default field manager: the User-Agent up to the first `/`.
fn field_manager(query: &HashMap<String, String>, headers: &HeaderMap) -> String {
    query.get("fieldManager").cloned().unwrap_or_else(|| {
        let ua = header_str(headers, header::USER_AGENT).unwrap_or("");
        ua.split('/')
            .next()
            .unwrap_or("")
            .chars()
            .take(128)
            .collect()
    })
}

/// Handles one request. `kill` closes the connection (for the drop fault).
pub async fn handle(shared: Arc<Shared>, kill: Arc<Notify>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let query: HashMap<String, String> = axum::extract::Query::try_from_uri(&parts.uri)
        .map(|q: axum::extract::Query<HashMap<String, String>>| q.0)
        .unwrap_or_default();
    let target = parse_path(&path);
    let verb = verb_of(&parts.method, &target, &query);
    let (resource, namespace, name) = match &target {
        Target::Resource(t) => (Some(t.rt.plural), t.namespace.clone(), t.name.clone()),
        Target::PortForward { namespace, pod } => {
            (Some("pods"), Some(namespace.clone()), Some(pod.clone()))
        }
        _ => (None, None, None),
    };
    shared
        .log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(RequestRecord {
            method: parts.method.to_string(),
            path: path.clone(),
            query: raw_query.clone(),
            verb,
            resource: resource.map(str::to_owned),
            namespace: namespace.clone(),
            name: name.clone(),
            field_manager: query.get("fieldManager").cloned(),
            content_type: header_str(&parts.headers, header::CONTENT_TYPE).map(str::to_owned),
        });

    let auth = header_str(&parts.headers, header::AUTHORIZATION);
    let public = matches!(target, Target::Version) && auth.is_none();
    if !public && auth != Some(&format!("Bearer {}", shared.token)) {
        return error_response(&ApiError::unauthorized());
    }

    let (delay, action) = {
        let mut rules = shared.faults.lock().unwrap_or_else(PoisonError::into_inner);
        faults::take(&mut rules, verb, resource, name.as_deref())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match action {
        Some(FaultAction::Drop) => {
            kill.notify_one();
            return std::future::pending().await;
        }
        Some(FaultAction::Status { code, retry_after }) => {
            let rt = match &target {
                Target::Resource(t) => Some(t.rt),
                _ => None,
            };
            return error_response(&ApiError::generic(
                code,
                rt,
                name.as_deref().unwrap_or(""),
                retry_after,
            ));
        }
        Some(FaultAction::Forbidden { user }) => {
            return error_response(&forbidden(&target, verb, &user));
        }
        Some(FaultAction::Latency(_)) | None => {}
    }

    let accept = header_str(&parts.headers, header::ACCEPT).unwrap_or("");
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let result = match target {
        Target::Version => Ok((200, discovery::version())),
        Target::CoreVersions if aggregated => return aggregated_response(true),
        Target::CoreVersions => Ok((200, discovery::core_versions(&shared.address))),
        Target::Groups if aggregated => return aggregated_response(false),
        Target::Groups => Ok((200, discovery::group_list())),
        Target::Group(g) => discovery::group(&g)
            .map(|v| (200, v))
            .ok_or_else(ApiError::unknown_path),
        Target::ResourceList(g, v) => discovery::resource_list(&g, &v)
            .map(|v| (200, v))
            .ok_or_else(ApiError::unknown_path),
        Target::OpenApiIndex => Ok((200, openapi::index())),
        Target::OpenApiV2 => return openapi_v2::respond(accept),
        Target::OpenApi(rest) => openapi::document_at(&rest)
            .map(|v| (200, v))
            .ok_or_else(ApiError::unknown_path),
        Target::Unknown => Err(ApiError::unknown_path()),
        Target::PortForward { namespace, pod } => {
            let mut parts = parts;
            return match port_forward(&shared, &mut parts, &raw_query, &namespace, &pod) {
                Ok(response) => response,
                Err(e) => error_response(&e),
            };
        }
        Target::Resource(t) => {
            if verb == Some(Verb::Watch) {
                let request = selector(&watch_options::by_name(&t, &query)).and_then(|sel| {
                    WatchRequest::from_query(&t, &query, sel, shared.bookmark_interval)
                });
                return match request {
                    Ok(w) => watch::respond(&shared.store, w),
                    Err(e) => error_response(&e),
                };
            }
            let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
                Ok(b) => b,
                Err(_) => {
                    return error_response(&ApiError::bad_request(
                        "request body too large or unreadable",
                    ));
                }
            };
            resource_request(&shared, &parts.method, &parts.headers, &query, &t, &bytes)
        }
    };
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error_response(&e),
    }
}

/// Upgrades to a port-forward stream into `pod`, which must exist.
fn port_forward(
    shared: &Shared,
    parts: &mut axum::http::request::Parts,
    raw_query: &str,
    namespace: &str,
    pod: &str,
) -> ApiResult<Response> {
    let pods = resources::find("", "v1", "pods").ok_or_else(ApiError::unknown_path)?;
    shared.store.get(pods, namespace, pod)?;
    let ports = portforward::parse_ports(raw_query)?;
    let targets = {
        let forwards = shared
            .forwards
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ports
            .into_iter()
            .map(|port| {
                let key = (namespace.to_owned(), pod.to_owned(), port);
                (port, forwards.get(&key).copied())
            })
            .collect()
    };
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    portforward::respond(&parts.headers, upgrade, pod, targets)
}

fn aggregated_response(core: bool) -> Response {
    let mut r = json_response(200, &discovery::aggregated(core));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(discovery::AGGREGATED),
    );
    r
}

fn forbidden(target: &Target, verb: Option<Verb>, user: &str) -> ApiError {
    let verb = verb.map_or("get", Verb::as_str);
    let Target::Resource(t) = target else {
        return ApiError::new(
            403,
            "Forbidden",
            &format!("forbidden: User {user:?} cannot {verb} path \"/\""),
            Some(serde_json::json!({})),
        );
    };
    let resource = if t.status {
        format!("{}/status", t.rt.plural)
    } else {
        t.rt.plural.to_owned()
    };
    let scope = match &t.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".to_owned(),
    };
    let why = format!(
        "User {user:?} cannot {verb} resource {resource:?} in API group {:?} {scope}",
        t.rt.group
    );
    ApiError::forbidden(t.rt, t.name.as_deref().unwrap_or(""), &why, &[])
}

fn parse_body(bytes: &[u8], rt: &ResourceType) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(&format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {e}",
            rt.kind
        ))
    })
}

/// A POST, PUT or DELETE body: JSON, or protobuf for the kinds
/// [`protobuf`] knows.
fn body_value(headers: &HeaderMap, bytes: &[u8], rt: &ResourceType) -> ApiResult<Value> {
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    if content_type.split(';').next().map(str::trim) == Some(protobuf::CONTENT_TYPE) {
        return protobuf::decode(bytes);
    }
    parse_body(bytes, rt)
}

fn selector(query: &HashMap<String, String>) -> ApiResult<Selector> {
    Selector::parse(
        query.get("labelSelector").map(String::as_str),
        query.get("fieldSelector").map(String::as_str),
    )
}

fn patch_options_invalid(field: &str, reason: &'static str, message: &str) -> ApiError {
    ApiError::options_invalid(
        "PatchOptions",
        &[Cause {
            reason,
            message: message.to_owned(),
            field: field.to_owned(),
        }],
    )
}

fn resource_request(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    t: &ResourceTarget,
    bytes: &[u8],
) -> ApiResult<(u16, Value)> {
    if query.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::bad_request(
            "dryRun is not supported by the hubwright API server stand-in",
        ));
    }
    let store = &shared.store;
    let rt = t.rt;
    let ns = t.namespace.as_deref().unwrap_or("");
    let scope = if t.status {
        Scope::Status
    } else {
        Scope::Main {
            status_subresource: rt.status,
        }
    };
    let force = query.get("force").is_some_and(|f| f == "true");
    let ctx = WriteCtx {
        manager: field_manager(query, headers),
        force,
        scope,
    };
    match (method.as_str(), t.name.as_deref()) {
        ("GET", Some(name)) => store.get(rt, ns, name).map(|v| (200, v)),
        ("GET", None) => {
            watch_options::forbid_initial_events_on_list(query)?;
            let sel = selector(query)?;
            Ok((200, store.list(rt, t.namespace.as_deref(), &sel)))
        }
        ("POST", None) if !t.status => store
            .create(rt, ns, body_value(headers, bytes, rt)?, &ctx)
            .map(|v| (201, v)),
        ("PUT", Some(name)) => store
            .replace(rt, ns, name, body_value(headers, bytes, rt)?, &ctx)
            .map(|v| (200, v)),
        ("PATCH", Some(name)) => {
            let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
            let media = content_type.split(';').next().unwrap_or("").trim();
            let patch = match media {
                "application/apply-patch+yaml" => {
                    if ctx.manager.is_empty() || !query.contains_key("fieldManager") {
                        return Err(patch_options_invalid(
                            "fieldManager",
                            "FieldValueRequired",
                            "Required value: is required for apply patch",
                        ));
                    }
                    let v: Value = serde_yaml_ng::from_slice(bytes)
                        .map_err(|e| ApiError::bad_request(&format!("error decoding YAML: {e}")))?;
                    Patch::Apply(v)
                }
                _ if query.contains_key("force") => {
                    return Err(patch_options_invalid(
                        "force",
                        "FieldValueForbidden",
                        "Forbidden: may not be specified for non-apply patch",
                    ));
                }
                "application/merge-patch+json" => Patch::Merge(parse_body(bytes, rt)?),
                "application/strategic-merge-patch+json" => {
                    Patch::Strategic(parse_body(bytes, rt)?)
                }
                "application/json-patch+json" => Patch::Json(parse_body(bytes, rt)?),
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            store.patch(rt, ns, name, patch, &ctx)
        }
        ("DELETE", Some(name)) if !t.status => {
            let options = if bytes.is_empty() {
                Value::Null
            } else {
                body_value(headers, bytes, rt)?
            };
            store.delete(rt, ns, name, &options).map(|v| (200, v))
        }
        ("DELETE", None) if rt.plural != "namespaces" => {
            let sel = selector(query)?;
            Ok((
                200,
                store.delete_collection(rt, t.namespace.as_deref(), &sel),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
