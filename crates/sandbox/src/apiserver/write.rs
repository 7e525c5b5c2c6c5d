//! Writes with the real server's semantics: create, replace, patch (merge,
//! strategic-as-merge, JSON, server-side apply), delete with finalizers.

use serde_json::{Value, json};

use super::apply;
use super::body::{
    admit_create, check_identity, check_type, generate_suffix, meta_str, set_namespace,
    validate_name,
};
use super::fields::{self, Scope, Writer};
use super::normalize::{
    SYSTEM_FIELDS, default_object, normalize, now, omit_empty, prepare_create, reset_from_old,
    spec_part,
};
use super::patch;
use super::resources::{self, ResourceType};
use super::status::{ApiError, ApiResult, Cause};
use super::store::{EventType, Inner, Key, Store};

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

pub(super) fn is_namespace(rt: &ResourceType) -> bool {
    rt == resources::namespaces()
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
        // Field tracking sees the object as decoded into the Go types.
        omit_empty(&mut body);
        fields::record_update(None, &mut body, &writer);
        prepare_create(rt, &mut body);
        normalize(rt, &mut body);
        let created = inner.commit(key, body, EventType::Added);
        if is_namespace(rt) {
            self.wake_controllers();
        }
        Ok(created)
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
        // Field tracking sees the object as decoded into the Go types.
        omit_empty(&mut body);
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
                    apply::apply(None, &applied, ctx.force, &writer).map_err(apply_conflict)?;
                obj["apiVersion"] = json!(api_version);
                obj["kind"] = json!(rt.kind);
                obj["metadata"]["name"] = json!(name);
                set_namespace(rt, &mut obj, ns)?;
                default_object(rt, &mut obj);
                prepare_create(rt, &mut obj);
                normalize(rt, &mut obj);
                let created = inner.commit(key, obj, EventType::Added);
                if is_namespace(rt) {
                    self.wake_controllers();
                }
                return Ok((201, created));
            };
            if !wanted_rv.is_empty() && wanted_rv != meta_str(&old, "resourceVersion") {
                return Err(ApiError::stale(rt, name));
            }
            let mut new =
                apply::apply(Some(&old), &applied, ctx.force, &writer).map_err(apply_conflict)?;
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
        // Field tracking sees the object as decoded into the Go types.
        omit_empty(&mut new);
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

fn apply_conflict(conflicts: Vec<apply::Conflict>) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({ "reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.path }))
        .collect();
    ApiError::new(
        409,
        "Conflict",
        &apply::conflict_message(&conflicts),
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
