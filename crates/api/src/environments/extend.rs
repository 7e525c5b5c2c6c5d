//! `POST /v1/environments/{id-or-name}/extend`: a new time-to-live.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use hubwright_state::model::Environment;
use serde::Deserialize;

use super::lookup::{AddressQuery, resolve};
use super::{parse_ttl, template};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::{ApiPath, ApiQuery, OptionalJson};
use crate::policy::access;

/// A new time-to-live.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extend {
    /// New time-to-live, counted from now.
    #[serde(default)]
    ttl: String,
}

/// A new time-to-live from now, within the template's maximum from creation
/// (and its `max_extensions`, when it sets one), and within the owner's
/// `max_ttl` and `max_extensions` of the policy file (403 `limit-exceeded`).
#[utoipa::path(post, path = "/v1/environments/{id}/extend", operation_id = "extend_environment", tag = "environments",
    params(("id" = String, Path, description = "The environment's id, or its name among the live environments of the caller (or of `owner`)"), AddressQuery),
    request_body = Extend,
    responses((status = 200, body = Environment),
        (status = 403, body = ProblemDocument, description = "`limit-exceeded`: past the owner's `max_ttl` or `max_extensions` of the policy file"),
        (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)),
    security(("bearer" = [])))]
pub(crate) async fn extend(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(segment): ApiPath<String>,
    ApiQuery(query): ApiQuery<AddressQuery>,
    OptionalJson(request): OptionalJson<Extend>,
) -> ApiResult<Json<Environment>> {
    let environment = resolve(&state, &caller, &segment, &query).await?;
    if request.ttl.is_empty() {
        return Err(Problem::invalid("ttl", "is required, e.g. \"4h\""));
    }
    let ttl = parse_ttl(&request.ttl)?;
    let now = state.clock.now();
    let catalog = state.catalog.current();
    let loaded = template(&catalog, &environment.template)?;
    // The maximum counts from creation.
    let latest = environment
        .created_at
        .checked_add_signed(loaded.template.ttl.maximum.to_chrono())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    // A TTL of centuries does not fit a timestamp: it is beyond any maximum.
    let expires_at = now
        .checked_add_signed(ttl.to_chrono())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    // The policy's limits are the owner's, whoever extends.
    let policy = state.policy.current();
    let groups = access::owner_groups(&policy, &caller, &environment.owner);
    let limits = policy.limits_for(&environment.owner, &groups);
    if expires_at > latest {
        return Err(Problem::invalid(
            "ttl",
            &format!(
                "would expire at {expires_at}, beyond the template's maximum of {} from creation ({latest})",
                loaded.template.ttl.maximum
            ),
        ));
    }
    access::check_life(&limits, environment.created_at, expires_at, ttl)?;
    if limits.max_extensions.is_some() {
        access::check_extensions(&limits, state.store.extensions(environment.id).await?)?;
    }
    // The store re-checks the count in its UPDATE, so concurrent extensions
    // cannot pass the smaller of the two maxima.
    let max_extensions = match (loaded.template.ttl.max_extensions, &limits.max_extensions) {
        (Some(template), Some(policy)) => Some(template.min(policy.value)),
        (template, policy) => template.or(policy.as_ref().map(|bound| bound.value)),
    };
    Ok(Json(
        state
            .store
            .extend_environment(
                environment.id,
                expires_at,
                max_extensions,
                caller.subject(),
                now,
            )
            .await?,
    ))
}
