//! Reading a request body as the real server's decoder and admission do:
//! type and identity against the URL, names, and the namespace lifecycle.

use serde_json::{Value, json};

use super::resources::{self, ResourceType};
use super::status::{ApiError, ApiResult, Cause};
use super::store::{Inner, Key};
use super::validate::name_errors;

pub(super) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Checks `apiVersion`/`kind` of a body against the URL; fills them when absent.
pub(super) fn check_type(rt: &ResourceType, body: &mut Value, required: bool) -> ApiResult<()> {
    let Value::Object(m) = body else {
        return Err(ApiError::bad_request(&format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error",
            rt.kind
        )));
    };
    let api_version = m
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let kind = m
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if required && (api_version.is_empty() || kind.is_empty()) {
        return Err(ApiError::bad_request(&format!(
            "invalid object type: {api_version}, Kind={kind}"
        )));
    }
    let api_version = if api_version.is_empty() {
        rt.api_version()
    } else {
        api_version
    };
    let kind = if kind.is_empty() {
        rt.kind.to_owned()
    } else {
        kind
    };
    if api_version != rt.api_version() || kind != rt.kind {
        return Err(ApiError::bad_request(&wrong_type(rt, &api_version, &kind)));
    }
    m.insert("apiVersion".to_owned(), json!(rt.api_version()));
    m.insert("kind".to_owned(), json!(rt.kind));
    if !m.get("metadata").is_some_and(Value::is_object) {
        m.insert("metadata".to_owned(), json!({}));
    }
    Ok(())
}

/// Where the real server's scheme is named in decode errors (kubeadm's
/// kube-apiserver; other distributions name another file).
const SCHEME: &str = "k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30";

/// The 400 message for a body of `api_version`/`kind` sent to `rt`'s URL, as
/// the decoder words it (`transformDecodeError` around the scheme's error).
fn wrong_type(rt: &ResourceType, api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let registered = resources::RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version && r.kind == kind);
    if registered && kind == rt.kind {
        return format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        );
    }
    let why = if registered {
        // Decoded as its own type, then converted to the URL's internal type.
        format!(
            "converting ({version}.{kind}) to ({}.{}): unknown conversion",
            rt.internal_package(),
            rt.kind
        )
    } else {
        format!("no kind {kind:?} is registered for version {api_version:?} in scheme {SCHEME:?}")
    };
    format!(
        "{kind} in version {version:?} cannot be handled as a {}: {why}",
        rt.kind
    )
}

/// Checks the body's name and namespace against the URL.
pub(super) fn check_identity(
    rt: &ResourceType,
    body: &mut Value,
    ns: &str,
    name: &str,
) -> ApiResult<()> {
    let body_name = meta_str(body, "name").to_owned();
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(&format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    body["metadata"]["name"] = json!(name);
    set_namespace(rt, body, ns)
}

pub(super) fn set_namespace(rt: &ResourceType, body: &mut Value, ns: &str) -> ApiResult<()> {
    let body_ns = meta_str(body, "namespace").to_owned();
    if rt.namespaced {
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        body["metadata"]["namespace"] = json!(ns);
    } else if let Some(Value::Object(meta)) = body.get_mut("metadata") {
        meta.remove("namespace");
    }
    Ok(())
}

pub(super) fn generate_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bits = uuid::Uuid::now_v7().as_u128();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u128) as usize] as char;
            bits /= ALPHABET.len() as u128;
            c
        })
        .collect()
}

/// Validates `metadata.name` (422 with `FieldValueInvalid` causes).
pub(super) fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
    if name.is_empty() {
        return Err(ApiError::invalid(
            rt,
            name,
            vec![Cause {
                reason: "FieldValueRequired",
                message: "Required value: name or generateName is required".to_owned(),
                field: "metadata.name".to_owned(),
            }],
        ));
    }
    let errors = name_errors(rt.names, name);
    if errors.is_empty() {
        return Ok(());
    }
    let causes = errors
        .into_iter()
        .map(|e| Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {name:?}: {e}"),
            field: "metadata.name".to_owned(),
        })
        .collect();
    Err(ApiError::invalid(rt, name, causes))
}

/// The namespace lifecycle admission check for creating `name` in `ns`.
pub(super) fn admit_create(
    inner: &Inner,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    let nsrt = resources::namespaces();
    match inner.objects.get(&Key::new(nsrt, "", ns)) {
        None => Err(ApiError::not_found(nsrt, ns)),
        Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::forbidden(
            rt,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
            &[Cause {
                reason: "NamespaceTerminating",
                message: format!("namespace {ns} is being terminated"),
                field: "metadata.namespace".to_owned(),
            }],
        )),
        Some(_) => Ok(()),
    }
}
