//! `/v1/templates`: what a portal needs to build its request form without
//! hard-coding anything: each template's parameters as a JSON Schema, its
//! time-to-live policy, the clusters it may run on, its workflows, and
//! whether the caller may use it.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::extract::State;
use hubwright_state::policy::Policy;
use hubwright_state::workflow::{
    Bound, Dur, LoadedTemplate, ParameterSpec, ParameterType, QUANTITY_PATTERN, Template,
    TemplatesStatus,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::ApiPath;

/// The `/v1/templates` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
}

/// The JSON Schema dialect of [`TemplateView::parameters`] (the one OpenAPI 3.1 uses).
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// A template as a portal needs it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    /// What a request's `template` names.
    #[schema(example = "jupyterhub")]
    name: String,
    /// One line for humans.
    description: String,
    /// A JSON Schema (2020-12) of a request's `parameters` object: each
    /// parameter's type, description, default, allowed values and bounds
    /// (`minimum`/`maximum`, `maxLength`, `pattern`, `maxItems`); `required`
    /// lists those without a default; no others are accepted. A Kubernetes
    /// quantity is a string with a `pattern` and `x-kubernetes-quantity`
    /// (`kind`, `minimum`, `maximum` as quantities, e.g. `"16Gi"`). A
    /// parameter the platform team sets is `readOnly: true`: a request that
    /// names it is refused.
    #[schema(value_type = Object)]
    parameters: Value,
    /// How long its environments live.
    ttl: TtlView,
    /// The clusters a request for it may name (`cluster`).
    clusters: Vec<String>,
    /// Its workflows, e.g. `provision` and `teardown`.
    workflows: Vec<String>,
    /// Whether the caller may ask for an environment of this template.
    usable: bool,
    /// Why (or why not) the caller may use it, naming the rule of the
    /// policy file that decides.
    #[schema(
        example = "no policy restricts template `jupyterhub`: any authenticated caller may use it"
    )]
    usable_reason: String,
    /// Each value of its profile parameter (the policy file's
    /// `usage.profile`, e.g. `profile`) and whether the caller may choose
    /// it; empty when it has no such parameter with allowed values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profiles: Vec<ProfileView>,
}

/// One profile of a template and whether the caller may choose it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    /// The profile, e.g. `gpu`.
    #[schema(example = "gpu")]
    name: String,
    /// Whether the caller may choose it.
    usable: bool,
    /// Why (or why not), naming the rule of the policy file.
    usable_reason: String,
}

/// A template's time-to-live policy, as durations and in seconds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TtlView {
    /// What an environment gets when the request names no `ttl`.
    #[schema(example = "8h")]
    default: String,
    /// `default` in seconds.
    #[schema(example = 28800)]
    default_seconds: u64,
    /// The longest an environment may live, counted from its creation
    /// (requests and extensions alike).
    #[schema(example = "72h")]
    maximum: String,
    /// `maximum` in seconds.
    #[schema(example = 259200)]
    maximum_seconds: u64,
    /// How many times an environment may be extended; `null`: unlimited
    /// (within `maximum`).
    max_extensions: Option<u32>,
}

/// Every template.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    items: Vec<TemplateView>,
    /// Operators only: where the templates came from and how their last
    /// reload went (`last_reload_error` says why the files on disk are not
    /// in force). Left out for developers.
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<TemplatesStatus>,
}

/// A duration as the API reads it: the largest whole unit (`8h`, `90m`,
/// `45s`), so `72h` stays `72h` rather than `3days`.
pub(crate) fn duration_text(dur: Dur) -> String {
    let d = dur.0;
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        format!("{}ms", d.as_millis())
    } else if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// A bound as JSON: a whole number when it is one (`16`, not `16.0`).
fn number(value: f64) -> Value {
    // Below 2^53 every whole f64 is exactly an i64.
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// A numeric bound as JSON (numeric parameters only take numbers).
fn bound_number(bound: &Bound) -> Value {
    match bound {
        Bound::Number(value) => number(*value),
        Bound::Text(text) => json!(text),
    }
}

/// One parameter's schema.
fn parameter_schema(spec: &ParameterSpec) -> Value {
    let mut schema = Map::new();
    let text_rules = |schema: &mut Map<String, Value>| {
        if let Some(max) = spec.max_length {
            schema.insert("maxLength".into(), json!(max));
        }
        if let Some(pattern) = &spec.pattern {
            schema.insert("pattern".into(), json!(pattern));
        }
    };
    match spec.kind {
        ParameterType::String => {
            schema.insert("type".into(), json!("string"));
            text_rules(&mut schema);
        }
        ParameterType::Integer => {
            schema.insert("type".into(), json!("integer"));
        }
        ParameterType::Number => {
            schema.insert("type".into(), json!("number"));
        }
        ParameterType::Boolean => {
            schema.insert("type".into(), json!("boolean"));
        }
        ParameterType::Strings => {
            schema.insert("type".into(), json!("array"));
            let mut items = Map::from_iter([("type".into(), json!("string"))]);
            text_rules(&mut items);
            schema.insert("items".into(), Value::Object(items));
            if let Some(max) = spec.max_items {
                schema.insert("maxItems".into(), json!(max));
            }
        }
        ParameterType::Quantity => {
            // JSON Schema cannot compare `16Gi` with `100Ti`: the pattern
            // says what a quantity looks like, the extension its bounds.
            schema.insert("type".into(), json!("string"));
            schema.insert("pattern".into(), json!(QUANTITY_PATTERN));
            let mut quantity = Map::new();
            if let Some(kind) = spec.measures {
                quantity.insert("kind".into(), json!(kind.as_str()));
            }
            for (name, bound) in [("minimum", &spec.minimum), ("maximum", &spec.maximum)] {
                if let Some(bound) = bound {
                    quantity.insert(name.into(), json!(bound.to_string()));
                }
            }
            schema.insert("x-kubernetes-quantity".into(), Value::Object(quantity));
        }
    }
    if !spec.description.is_empty() {
        schema.insert("description".into(), json!(spec.description));
    }
    if let Some(default) = &spec.default {
        schema.insert("default".into(), default.clone());
    }
    if let Some(allowed) = &spec.one_of {
        schema.insert("enum".into(), Value::Array(allowed.clone()));
    }
    if matches!(spec.kind, ParameterType::Integer | ParameterType::Number) {
        if let Some(minimum) = &spec.minimum {
            schema.insert("minimum".into(), bound_number(minimum));
        }
        if let Some(maximum) = &spec.maximum {
            schema.insert("maximum".into(), bound_number(maximum));
        }
    }
    if !spec.settable {
        schema.insert("readOnly".into(), json!(true));
    }
    Value::Object(schema)
}

/// The JSON Schema of a request's `parameters` for `template`: what
/// `Template::resolve_parameters` accepts.
pub fn parameters_schema(template: &Template) -> Value {
    let properties: Map<String, Value> = template
        .parameters
        .iter()
        .map(|(name, spec)| (name.clone(), parameter_schema(spec)))
        .collect();
    let required: Vec<&str> = template
        .parameters
        .iter()
        .filter(|(_, spec)| spec.default.is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    json!({
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The profiles of `template` the caller may or may not choose.
fn profiles(policy: &Policy, caller: &Caller, template: &Template) -> Vec<ProfileView> {
    let Some(values) = template
        .parameters
        .get(&policy.usage.profile)
        .and_then(|spec| spec.one_of.as_ref())
    else {
        return Vec::new();
    };
    values
        .iter()
        .filter_map(Value::as_str)
        .map(|name| {
            let access =
                policy.profile_access(&template.name, name, caller.subject(), caller.groups());
            ProfileView {
                name: name.to_owned(),
                usable: access.allowed,
                usable_reason: access.reason,
            }
        })
        .collect()
}

fn view(
    state: &AppState,
    policy: &Policy,
    caller: &Caller,
    loaded: &LoadedTemplate,
) -> TemplateView {
    let template = &loaded.template;
    let ttl = template.ttl;
    let access = policy.template_access(&template.name, caller.subject(), caller.groups());
    TemplateView {
        name: template.name.clone(),
        description: template.description.clone(),
        parameters: parameters_schema(template),
        ttl: TtlView {
            default: duration_text(ttl.default),
            default_seconds: ttl.default.0.as_secs(),
            maximum: duration_text(ttl.maximum),
            maximum_seconds: ttl.maximum.0.as_secs(),
            max_extensions: ttl.max_extensions,
        },
        // Templates do not restrict clusters (yet): every configured one.
        clusters: state
            .clusters
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        workflows: template.workflows.keys().cloned().collect(),
        usable: access.allowed,
        usable_reason: access.reason,
        profiles: profiles(policy, caller, template),
    }
}

/// The templates the caller may use (operators: every template): parameters as JSON Schema, TTL policy, clusters, workflows, and whether the caller may use it and each profile.
#[utoipa::path(get, path = "/v1/templates", operation_id = "list_templates", tag = "templates",
    responses((status = 200, body = TemplateList)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<TemplateList>> {
    let policy = state.policy.current();
    let catalog = state.catalog.current();
    let items = catalog
        .names()
        .into_iter()
        .filter_map(|name| catalog.template(name))
        .map(|loaded| view(&state, &policy, &caller, loaded))
        // Developers see what they may use; operators see every template,
        // with `usable` saying whom the policy leaves out.
        .filter(|view| view.usable || caller.is_operator())
        .collect();
    let files = caller.is_operator().then(|| state.catalog.status());
    Ok(Json(TemplateList { items, files }))
}

/// One template, by name.
#[utoipa::path(get, path = "/v1/templates/{name}", operation_id = "get_template", tag = "templates",
    params(("name" = String, Path, description = "The template's name, e.g. `jupyterhub`")),
    responses((status = 200, body = TemplateView),
        (status = 403, body = ProblemDocument, description = "`template-forbidden`: the policy file does not let the caller use it"),
        (status = 404, body = ProblemDocument)),
    security(("bearer" = [])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<TemplateView>> {
    let catalog = state.catalog.current();
    let loaded = catalog
        .template(&name)
        .ok_or_else(|| Problem::not_found(format!("no template {name}")))?;
    let policy = state.policy.current();
    let view = view(&state, &policy, &caller, loaded);
    if !view.usable && !caller.is_operator() {
        return Err(Problem::template_forbidden(format!(
            "template `{name}` is not permitted: {}",
            view.usable_reason
        )));
    }
    Ok(Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_in_their_largest_whole_unit() {
        assert_eq!(duration_text(Dur::from_secs(8 * 3600)), "8h");
        assert_eq!(duration_text(Dur::from_secs(72 * 3600)), "72h");
        assert_eq!(duration_text(Dur::from_secs(90 * 60)), "90m");
        assert_eq!(duration_text(Dur::from_secs(45)), "45s");
        assert_eq!(duration_text(Dur::from_secs(0)), "0s");
        assert_eq!(duration_text(Dur(Duration::from_millis(1500))), "1500ms");
        for text in ["8h", "90m", "45s", "1500ms"] {
            let parsed: Dur = text.parse().unwrap();
            assert_eq!(duration_text(parsed), text, "reads back");
        }
    }

    #[test]
    fn whole_bounds_are_integers_and_others_stay_fractional() {
        assert_eq!(number(16.0), json!(16));
        assert_eq!(number(0.5), json!(0.5));
        assert_eq!(number(-3.0), json!(-3));
    }
}
