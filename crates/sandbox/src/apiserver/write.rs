//! Writes with the real server's semantics: create, replace, patch (merge,
//! strategic-as-merge, JSON, server-side apply), delete with finalizers.

use serde_json::{Map, Value, json};

use super::fields::{self, Scope, Writer};
use super::patch;
use super::resources::{self, ResourceType};
use super::status::{ApiError, ApiResult, Cause};
use super::store::{EventType, Inner, Key, Store};
use super::validate::name_errors;

/// The body of a PATCH, by content type.
#[derive(Debug, Clone)]
pub enum Patch {
    /// `application/merge-patch+json`.
    Merge(Value),
    /// `application/strategic-merge-patch+json`, applied as a merge patch.
    Strategic(Value),
    /// `application/json-patch+json`.
    Json(Value),
    /// `application/apply-patch+yaml`: server-side apply.
    Apply(Value),
}

/// Who writes and how: field manager, `force` for apply, and the subresource.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    /// The field manager (already defaulted from the User-Agent).
    pub manager: String,
    /// `force=true` on an apply.
    pub force: bool,
    /// Main resource or `/status`.
    pub scope: Scope,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub(super) fn finalizers(obj: &Value, pointer: &str) -> Vec<String> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn is_namespace(rt: &ResourceType) -> bool {
    rt == resources::namespaces()
}

/// Checks `apiVersion`/`kind` of a body against the URL; fills them when absent.
fn check_type(rt: &ResourceType, body: &mut Value, required: bool) -> ApiResult<()> {
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
    if !api_version.is_empty() && api_version != rt.api_version() {
        return Err(ApiError::bad_request(&format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if !kind.is_empty() && kind != rt.kind {
        return Err(ApiError::bad_request(&format!(
            "{kind} in version {:?} cannot be handled as a {}: converting ({}.{kind}) to ({}.{}): unknown conversion",
            rt.version,
            rt.kind,
            rt.version,
            rt.internal_package(),
            rt.kind
        )));
    }
    m.insert("apiVersion".to_owned(), json!(rt.api_version()));
    m.insert("kind".to_owned(), json!(rt.kind));
    if !m.get("metadata").is_some_and(Value::is_object) {
        m.insert("metadata".to_owned(), json!({}));
    }
    Ok(())
}

/// Checks the body's name and namespace against the URL.
fn check_identity(rt: &ResourceType, body: &mut Value, ns: &str, name: &str) -> ApiResult<()> {
    let body_name = meta_str(body, "name").to_owned();
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(&format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    body["metadata"]["name"] = json!(name);
    set_namespace(rt, body, ns)
}

fn set_namespace(rt: &ResourceType, body: &mut Value, ns: &str) -> ApiResult<()> {
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

fn generate_suffix() -> String {
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
fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
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
fn admit_create(inner: &Inner, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<()> {
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

/// Everything but `metadata` and `status`, to decide whether `generation` moves.
fn spec_part(obj: &Value) -> Map<String, Value> {
    match obj {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    }
}

const SYSTEM_FIELDS: &[&str] = &[
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// What a main-resource or status write may not change: reset it from `old`.
fn reset_from_old(rt: &ResourceType, old: &Value, new: &mut Value, scope: Scope) {
    if scope == Scope::Status {
        let status = new.get("status").cloned();
        let managed = new.pointer("/metadata/managedFields").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Value::Object(m) = new {
                    m.remove("status");
                }
            }
        }
        if let Some(m) = managed {
            new["metadata"]["managedFields"] = m;
        }
        return;
    }
    if rt.status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Value::Object(m) = new {
                    m.remove("status");
                }
            }
        }
    }
    if is_namespace(rt) {
        match old.pointer("/spec/finalizers") {
            Some(f) => new["spec"]["finalizers"] = f.clone(),
            None => {
                if let Some(Value::Object(spec)) = new.get_mut("spec") {
                    spec.remove("finalizers");
                }
            }
        }
    }
    if let (Some(Value::Object(om)), Some(Value::Object(nm))) =
        (old.get("metadata"), new.get_mut("metadata"))
    {
        for f in SYSTEM_FIELDS {
            match om.get(*f) {
                Some(v) => nm.insert((*f).to_owned(), v.clone()),
                None => nm.remove(*f),
            };
        }
        if !nm.contains_key("managedFields")
            && let Some(mf) = om.get("managedFields")
        {
            nm.insert("managedFields".to_owned(), mf.clone());
        }
    }
}

/// Defaults the real server applies before field tracking.
fn default_object(rt: &ResourceType, obj: &mut Value) {
    if is_namespace(rt) {
        let name = meta_str(obj, "name").to_owned();
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    }
}

/// Conversions the real server makes on every write: a Secret's `stringData`
/// is base64-encoded into `data` and not stored; its `type` defaults to `Opaque`.
fn normalize(rt: &ResourceType, obj: &mut Value) {
    if rt.kind != "Secret" || !rt.group.is_empty() {
        return;
    }
    let Value::Object(m) = obj else { return };
    if let Some(Value::Object(plain)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        for (k, v) in plain {
            data[k] = json!(base64(v.as_str().unwrap_or("").as_bytes()));
        }
    }
    m.entry("type").or_insert_with(|| json!("Opaque"));
}

/// Standard base64 with padding, as Go's `encoding/json` writes `[]byte`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// System fields of a new object (`PrepareForCreate`).
fn prepare_create(rt: &ResourceType, obj: &mut Value) {
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        for f in SYSTEM_FIELDS {
            meta.remove(*f);
        }
        meta.insert("uid".to_owned(), json!(uuid::Uuid::now_v7().to_string()));
        meta.insert("creationTimestamp".to_owned(), json!(now()));
        if rt.generation {
            meta.insert("generation".to_owned(), json!(1));
        }
    }
    if rt.status {
        obj["status"] = json!({});
    }
    if is_namespace(rt) {
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
        obj["status"] = json!({ "phase": "Active" });
    }
}

impl Store {
    /// POST: creates `body` in `ns`.
    pub fn create(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut body: Value,
        ctx: &WriteCtx,
    ) -> ApiResult<Value> {
        check_type(rt, &mut body, false)?;
        set_namespace(rt, &mut body, ns)?;
        if meta_str(&body, "name").is_empty() {
            let prefix = meta_str(&body, "generateName").to_owned();
            if !prefix.is_empty() {
                body["metadata"]["name"] = json!(format!("{prefix}{}", generate_suffix()));
            }
        }
        let name = meta_str(&body, "name").to_owned();
        validate_name(rt, &name)?;
        let mut inner = self.lock();
        admit_create(&inner, rt, ns, &name)?;
        let key = Key::new(rt, ns, &name);
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        if let Some(Value::Object(meta)) = body.get_mut("metadata") {
            meta.remove("managedFields");
        }
        default_object(rt, &mut body);
        let at = now();
        let writer = Writer {
            manager: &ctx.manager,
            api_version: &rt.api_version(),
            now: &at,
            scope: ctx.scope,
        };
        fields::record_update(None, &mut body, &writer);
        prepare_create(rt, &mut body);
        normalize(rt, &mut body);
        Ok(inner.commit(key, body, EventType::Added))
    }

    /// PUT: replaces the object (or its status) with `body`.
    pub fn replace(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut body: Value,
        ctx: &WriteCtx,
    ) -> ApiResult<Value> {
        check_type(rt, &mut body, false)?;
        check_identity(rt, &mut body, ns, name)?;
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(&Key::new(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let wanted_rv = meta_str(&body, "resourceVersion");
        if !wanted_rv.is_empty() && wanted_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(rt, name));
        }
        reset_from_old(rt, &old, &mut body, ctx.scope);
        let at = now();
        let writer = Writer {
            manager: &ctx.manager,
            api_version: &rt.api_version(),
            now: &at,
            scope: ctx.scope,
        };
        fields::record_update(Some(&old), &mut body, &writer);
        finish_update(&mut inner, rt, ns, name, &old, body)
    }

    /// PATCH: applies `patch`; returns the HTTP code (201 when an apply created
    /// the object) and the object.
    pub fn patch(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        patch: Patch,
        ctx: &WriteCtx,
    ) -> ApiResult<(u16, Value)> {
        let mut inner = self.lock();
        let key = Key::new(rt, ns, name);
        let old = inner.objects.get(&key).cloned();
        let at = now();
        let api_version = rt.api_version();
        let writer = Writer {
            manager: &ctx.manager,
            api_version: &api_version,
            now: &at,
            scope: ctx.scope,
        };
        if let Patch::Apply(mut applied) = patch {
            check_type(rt, &mut applied, true)?;
            check_identity(rt, &mut applied, ns, name)?;
            let wanted_rv = meta_str(&applied, "resourceVersion").to_owned();
            if let Some(Value::Object(meta)) = applied.get_mut("metadata") {
                for f in SYSTEM_FIELDS.iter().chain(&["managedFields"]) {
                    meta.remove(*f);
                }
            }
            let Some(old) = old else {
                if ctx.scope == Scope::Status {
                    return Err(ApiError::not_found(rt, name));
                }
                validate_name(rt, name)?;
                admit_create(&inner, rt, ns, name)?;
                if !wanted_rv.is_empty() {
                    return Err(ApiError::not_found(rt, name));
                }
                let mut obj =
                    fields::apply(None, &applied, ctx.force, &writer).map_err(apply_conflict)?;
                obj["apiVersion"] = json!(api_version);
                obj["kind"] = json!(rt.kind);
                obj["metadata"]["name"] = json!(name);
                set_namespace(rt, &mut obj, ns)?;
                default_object(rt, &mut obj);
                prepare_create(rt, &mut obj);
                normalize(rt, &mut obj);
                return Ok((201, inner.commit(key, obj, EventType::Added)));
            };
            if !wanted_rv.is_empty() && wanted_rv != meta_str(&old, "resourceVersion") {
                return Err(ApiError::stale(rt, name));
            }
            let mut new =
                fields::apply(Some(&old), &applied, ctx.force, &writer).map_err(apply_conflict)?;
            reset_from_old(rt, &old, &mut new, ctx.scope);
            return finish_update(&mut inner, rt, ns, name, &old, new).map(|v| (200, v));
        }
        let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut new = old.clone();
        match patch {
            Patch::Merge(p) | Patch::Strategic(p) => {
                if !p.is_object() {
                    return Err(ApiError::bad_request(
                        "json: cannot unmarshal array into Go value of type map[string]interface {}",
                    ));
                }
                patch::merge_patch(&mut new, &p);
            }
            Patch::Json(p) => patch::json_patch(&mut new, &p)?,
            Patch::Apply(_) => {}
        }
        check_type(rt, &mut new, false)?;
        check_identity(rt, &mut new, ns, name)?;
        let wanted_rv = meta_str(&new, "resourceVersion");
        if !wanted_rv.is_empty() && wanted_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(rt, name));
        }
        reset_from_old(rt, &old, &mut new, ctx.scope);
        fields::record_update(Some(&old), &mut new, &writer);
        finish_update(&mut inner, rt, ns, name, &old, new).map(|v| (200, v))
    }

    /// DELETE: removes the object, or marks it deleting while it has finalizers.
    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        options: &Value,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        let key = Key::new(rt, ns, name);
        let old = inner
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        check_preconditions(rt, name, &old, options)?;
        delete_locked(&mut inner, rt, key, old)
    }
}

fn check_preconditions(
    rt: &ResourceType,
    name: &str,
    old: &Value,
    options: &Value,
) -> ApiResult<()> {
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        if let Some(want) = options
            .pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
        {
            let have = meta_str(old, field);
            if want != have {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn apply_conflict(conflicts: Vec<fields::Conflict>) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({ "reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.path }))
        .collect();
    ApiError::new(
        409,
        "Conflict",
        &fields::conflict_message(&conflicts),
        Some(json!({ "causes": causes })),
    )
}

/// Whether a deleting object may now go: no finalizers left (for namespaces
/// also no `spec.finalizers`).
pub(super) fn ready_to_go(rt: &ResourceType, obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
        && finalizers(obj, "/metadata/finalizers").is_empty()
        && (!is_namespace(rt) || finalizers(obj, "/spec/finalizers").is_empty())
}

/// The tail of every update: generation, finalizer rules, no-op detection, commit.
fn finish_update(
    inner: &mut Inner,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    old: &Value,
    mut new: Value,
) -> ApiResult<Value> {
    normalize(rt, &mut new);
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let before = finalizers(old, "/metadata/finalizers");
        let added: Vec<String> = finalizers(&new, "/metadata/finalizers")
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                rt,
                name,
                vec![Cause {
                    reason: "FieldValueForbidden",
                    message: format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                    field: "metadata.finalizers".to_owned(),
                }],
            ));
        }
    }
    if let Some(g) = old.pointer("/metadata/generation").and_then(Value::as_i64) {
        let bump = spec_part(old) != spec_part(&new);
        new["metadata"]["generation"] = json!(if bump { g + 1 } else { g });
    }
    new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if &new == old {
        return Ok(new);
    }
    let key = Key::new(rt, ns, name);
    if ready_to_go(rt, &new) {
        return Ok(inner.commit(key, new, EventType::Deleted));
    }
    Ok(inner.commit(key, new, EventType::Modified))
}

/// Deletes (or starts deleting) `old` at `key`; the lock is held.
pub fn delete_locked(
    inner: &mut Inner,
    rt: &ResourceType,
    key: Key,
    old: Value,
) -> ApiResult<Value> {
    let name = key.name.clone();
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        if is_namespace(rt) && !finalizers(&old, "/spec/finalizers").is_empty() {
            return Err(ApiError::conflict(
                rt,
                &name,
                "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
            ));
        }
        return Ok(old);
    }
    let pending = !finalizers(&old, "/metadata/finalizers").is_empty() || is_namespace(rt);
    if pending {
        let mut new = old.clone();
        new["metadata"]["deletionTimestamp"] = json!(now());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if let Some(g) = old.pointer("/metadata/generation").and_then(Value::as_i64) {
            new["metadata"]["generation"] = json!(g + 1);
        }
        if is_namespace(rt) {
            new["status"]["phase"] = json!("Terminating");
        }
        if ready_to_go(rt, &new) {
            return Ok(inner.commit(key, new, EventType::Deleted));
        }
        return Ok(inner.commit(key, new, EventType::Modified));
    }
    let uid = meta_str(&old, "uid").to_owned();
    let gone = inner.commit(key, old, EventType::Deleted);
    if rt.returns_deleted {
        return Ok(gone);
    }
    let mut details = json!({ "name": name, "kind": rt.plural, "uid": uid });
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    Ok(
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details }),
    )
}
