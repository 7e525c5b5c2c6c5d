//! `/v1/policy`: the policy file in force, read-only (operators), and
//! `/v1/policy/me`: the caller's own limits and current use. The checks
//! requests go through ([`access`]) live here too; the reload on SIGHUP or a
//! changed file is the [`crate::reload`] module's.

pub(crate) mod access;

use axum::Json;
use axum::extract::State;
use hubwright_state::model::Role;
use hubwright_state::policy::{EffectiveLimits, Policy, ReloadStatus, Usage};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, ProblemDocument};

/// The `/v1/policy` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(me))
}

/// The policy in force, where it came from and how its last reload went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    #[serde(flatten)]
    status: ReloadStatus,
    /// The policy as loaded (defaults filled in).
    policy: Policy,
}

/// One limit that applies to the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitView {
    /// The limit, e.g. `environments`, `per_profile.gpu`, `cpu`, `max_ttl`.
    #[schema(example = "environments")]
    limit: String,
    /// Its value: a count, a quantity or a duration.
    #[schema(value_type = serde_json::Value, example = 25)]
    value: Value,
    /// The current use; `null` for `max_ttl` and `max_extensions`, which
    /// bound each environment.
    #[schema(value_type = serde_json::Value, example = 3)]
    current: Value,
    /// Where the policy file sets it, e.g. `groups.gpu-users.limits.environments`.
    #[schema(example = "defaults.environments")]
    rule: String,
}

/// The caller's groups, limits and current use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyPolicy {
    /// The caller.
    subject: String,
    /// Their groups: their token's and those the policy file declares.
    groups: Vec<String>,
    /// The limits that apply to them (a limit not listed: none).
    limits: Vec<LimitView>,
    /// What their live environments take.
    usage: Usage,
}

/// The rows of [`MyPolicy::limits`].
fn limit_views(limits: &EffectiveLimits, usage: &Usage) -> Vec<LimitView> {
    let mut rows = Vec::new();
    let mut row = |limit: String, value: Value, current: Value, rule: &str| {
        rows.push(LimitView {
            limit,
            value,
            current,
            rule: rule.to_owned(),
        });
    };
    if let Some(b) = &limits.environments {
        row(
            "environments".into(),
            json!(b.value),
            json!(usage.environments),
            &b.rule,
        );
    }
    for (name, b) in &limits.per_template {
        let used = usage.per_template.get(name).copied().unwrap_or(0);
        row(
            format!("per_template.{name}"),
            json!(b.value),
            json!(used),
            &b.rule,
        );
    }
    for (name, b) in &limits.per_profile {
        let used = usage.per_profile.get(name).copied().unwrap_or(0);
        row(
            format!("per_profile.{name}"),
            json!(b.value),
            json!(used),
            &b.rule,
        );
    }
    if let Some(b) = &limits.cpu {
        row(
            "cpu".into(),
            json!(b.value.to_string()),
            json!(usage.cpu.to_string()),
            &b.rule,
        );
    }
    if let Some(b) = &limits.memory {
        row(
            "memory".into(),
            json!(b.value.to_string()),
            json!(usage.memory.to_string()),
            &b.rule,
        );
    }
    if let Some(b) = &limits.max_ttl {
        row(
            "max_ttl".into(),
            json!(crate::templates::duration_text(b.value)),
            Value::Null,
            &b.rule,
        );
    }
    if let Some(b) = &limits.max_extensions {
        row(
            "max_extensions".into(),
            json!(b.value),
            Value::Null,
            &b.rule,
        );
    }
    rows
}

/// The policy file in force, where it came from, and why a changed file is not in force (`last_reload_error`). Operators only.
#[utoipa::path(get, path = "/v1/policy", operation_id = "get_policy", tag = "policy",
    responses((status = 200, body = PolicyView), (status = 403, body = ProblemDocument)),
    security(("bearer" = [])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<PolicyView>> {
    caller.require(Role::Operator)?;
    Ok(Json(PolicyView {
        status: state.policy.status(),
        policy: (*state.policy.current()).clone(),
    }))
}

/// The caller's groups, the limits that apply to them with the rule that sets each, and what their live environments take.
#[utoipa::path(get, path = "/v1/policy/me", operation_id = "get_my_policy", tag = "policy",
    responses((status = 200, body = MyPolicy)),
    security(("bearer" = [])))]
pub(crate) async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<MyPolicy>> {
    let policy = state.policy.current();
    let limits = policy.limits_for(caller.subject(), caller.groups());
    let usage = state.store.usage(caller.subject(), &policy.usage).await?;
    Ok(Json(MyPolicy {
        subject: caller.subject().to_owned(),
        groups: caller.groups().to_vec(),
        limits: limit_views(&limits, &usage),
        usage,
    }))
}
