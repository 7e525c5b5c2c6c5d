//! The policy checks a request goes through: template and profile access
//! (403 `template-forbidden`) and the limits that bound one environment's
//! life (403 `limit-exceeded`). Counting limits are checked by the store,
//! under a lock ([`hubwright_state::store::admission`]).

use chrono::{DateTime, Utc};
use hubwright_state::policy::{Breach, EffectiveLimits, Policy};
use hubwright_state::workflow::Dur;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::templates::duration_text;

/// The groups whose limits bind `owner`: the caller's own when the caller is
/// the owner; otherwise those the policy file declares for the owner (an
/// operator acting for someone does not hold their token's groups).
pub(crate) fn owner_groups(policy: &Policy, caller: &Caller, owner: &str) -> Vec<String> {
    if caller.subject() == owner {
        caller.groups().to_vec()
    } else {
        policy.groups_of(owner)
    }
}

/// 403 unless the caller may use `template`.
pub(crate) fn check_template(policy: &Policy, caller: &Caller, template: &str) -> ApiResult<()> {
    let access = policy.template_access(template, caller.subject(), caller.groups());
    if access.allowed {
        Ok(())
    } else {
        Err(Problem::template_forbidden(format!(
            "template `{template}` is not permitted: {}",
            access.reason
        )))
    }
}

/// 403 unless the caller may choose the profile `parameters` (resolved, so
/// a default profile counts) name.
pub(crate) fn check_profile(
    policy: &Policy,
    caller: &Caller,
    template: &str,
    parameters: &Map<String, Value>,
) -> ApiResult<()> {
    let Some(profile) = parameters
        .get(&policy.usage.profile)
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let access = policy.profile_access(template, profile, caller.subject(), caller.groups());
    if access.allowed {
        Ok(())
    } else {
        Err(Problem::template_forbidden(format!(
            "profile `{profile}` of template `{template}` is not permitted: {}",
            access.reason
        )))
    }
}

/// 403 when an environment created at `created_at` would live until
/// `expires_at`, longer than the policy's `max_ttl` allows; `asked` is the
/// TTL the request named.
pub(crate) fn check_life(
    limits: &EffectiveLimits,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    asked: Dur,
) -> ApiResult<()> {
    let Some(bound) = &limits.max_ttl else {
        return Ok(());
    };
    let life = (expires_at - created_at).to_std().unwrap_or_default();
    if life <= bound.value.0 {
        return Ok(());
    }
    // Whole seconds: the milliseconds since creation are noise to a reader.
    let life = std::time::Duration::from_secs(life.as_secs());
    if life <= bound.value.0 {
        return Ok(());
    }
    Err(Problem::limit_exceeded(Breach {
        limit: "max_ttl".to_owned(),
        value: json!(duration_text(bound.value)),
        current: json!(duration_text(Dur(life))),
        requested: json!(duration_text(asked)),
        rule: bound.rule.clone(),
    }))
}

/// 403 when an environment extended `done` times may not be extended again.
pub(crate) fn check_extensions(limits: &EffectiveLimits, done: i64) -> ApiResult<()> {
    match &limits.max_extensions {
        Some(bound) if done >= i64::from(bound.value) => Err(Problem::limit_exceeded(Breach {
            limit: "max_extensions".to_owned(),
            value: json!(bound.value),
            current: json!(done),
            requested: json!(1),
            rule: bound.rule.clone(),
        })),
        _ => Ok(()),
    }
}
