//! `POST /v1/environments`: validated, then stored with its provisioning run
//! in one transaction; the answer points at both.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::AppendHeaders;
use axum::{Extension, Json};
use hubwright_state::policy::{Demand, EffectiveLimits, Policy};
use hubwright_state::pools::PoolPlan;
use hubwright_state::store::admission::Quota;
use hubwright_state::store::environments::{
    Accepted, Admission, Idempotency, NewEnvironment, request_hash,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Links, MAX_NAME, check_label, environment_path, parse_ttl, template};
use crate::AppState;
use crate::audit::record::AuditTrail;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::OptionalJson;
use crate::policy::access;

/// A request for an environment.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    /// DNS-1123 label of at most 40 characters, unique among the owner's live environments.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 40,
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )]
    name: String,
    /// The template (default `jupyterhub`); `GET /v1/templates` lists them.
    #[serde(default = "default_template")]
    template: String,
    /// The target cluster (default `default`).
    #[serde(default = "default_cluster")]
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )]
    cluster: String,
    /// The template's declared parameters; `GET /v1/templates/{name}` gives
    /// their JSON Schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    parameters: Map<String, Value>,
    /// e.g. "8h"; the template's default when absent.
    #[serde(default)]
    ttl: Option<String>,
}

fn default_template() -> String {
    "jupyterhub".to_owned()
}

fn default_cluster() -> String {
    "default".to_owned()
}

/// What the new environment takes, for the limits. A parameter the policy
/// counts as CPU or memory must read as a quantity when such a limit applies
/// (422 naming it); without one it counts as nothing.
fn demand(
    policy: &Policy,
    limits: &EffectiveLimits,
    template: &str,
    parameters: &Value,
) -> ApiResult<Demand> {
    match policy.usage.demand(template, parameters) {
        Ok(demand) => Ok(demand),
        Err((name, rule)) if limits.cpu.is_some() || limits.memory.is_some() => {
            Err(Problem::invalid_at(
                &format!("parameters.{name}"),
                crate::error::json_pointer(["parameters", name.as_str()]),
                &rule,
            ))
        }
        Err(_) => Ok(Demand {
            template: template.to_owned(),
            profile: parameters
                .get(&policy.usage.profile)
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..Demand::default()
        }),
    }
}

/// The environment as created, its provisioning run, and links to both.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvironmentAccepted {
    #[serde(flatten)]
    accepted: Accepted,
    links: Links,
}

/// Ask for an environment: validated, then stored with its provisioning run in one transaction.
#[utoipa::path(post, path = "/v1/environments", operation_id = "create_environment", tag = "environments", request_body = CreateEnvironment,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same answer")),
    responses((status = 202, body = EnvironmentAccepted,
            headers(("Location" = String, description = "The environment: `/v1/environments/{id}`"))),
        (status = 403, body = ProblemDocument, description = "`limit-exceeded`: past a limit of the policy file (the document's `limit` names it, its value and the current use); `template-forbidden`: the policy does not let the caller use the template or profile"),
        (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    trail: Option<Extension<AuditTrail>>,
    headers: HeaderMap,
    OptionalJson(request): OptionalJson<CreateEnvironment>,
) -> ApiResult<(
    StatusCode,
    AppendHeaders<[(header::HeaderName, String); 1]>,
    Json<EnvironmentAccepted>,
)> {
    let key = crate::idempotency::key(&headers)?;
    check_label("name", &request.name, MAX_NAME)?;
    let catalog = state.catalog.current();
    let loaded = template(&catalog, &request.template)?;
    let policy = state.policy.current();
    access::check_template(&policy, &caller, &request.template)?;
    if state.clusters.get(&request.cluster).is_none() {
        return Err(Problem::invalid(
            "cluster",
            &format!(
                "no cluster named `{}` (known: {})",
                request.cluster,
                state.clusters.names().join(", ")
            ),
        ));
    }
    let id = hubwright_state::store::enqueue::new_id();
    let namespace = loaded.template.namespace_for(&request.name, id);
    check_label("name", &namespace, 63).map_err(|_| {
        Problem::invalid(
            "name",
            &format!(
                "makes namespace `{namespace}` (template `{}`), longer than the 63 characters Kubernetes allows",
                request.template
            ),
        )
    })?;
    let parameters = loaded.template.resolve_parameters(&request.parameters)?;
    access::check_profile(&policy, &caller, &request.template, &parameters)?;
    let ttl_policy = loaded.template.ttl;
    let ttl = match &request.ttl {
        Some(text) => parse_ttl(text)?,
        None => ttl_policy.default,
    };
    if ttl > ttl_policy.maximum {
        return Err(Problem::invalid(
            "ttl",
            &format!(
                "{ttl} is beyond the maximum of template `{}` ({})",
                request.template, ttl_policy.maximum
            ),
        ));
    }
    let limits = policy.limits_for(caller.subject(), caller.groups());
    let now = state.clock.now();
    access::check_life(&limits, now, now + ttl.to_chrono(), ttl)?;
    let parameters = Value::Object(parameters);
    let demand = demand(&policy, &limits, &request.template, &parameters)?;
    let provision = catalog
        .definition(&request.template, "provision")
        .ok_or_else(|| {
            Problem::invalid(
                "template",
                &format!(
                    "template `{}` has no `provision` workflow",
                    request.template
                ),
            )
        })?;
    // Defaults are filled in before hashing, so leaving out a default and
    // spelling it out count as the same request.
    let hash = request_hash(&serde_json::to_value(&request).unwrap_or(Value::Null));
    let idempotency = key.map(|key| Idempotency {
        key,
        request_hash: &hash,
    });
    // The request's span: the provisioning run continues its trace.
    let traceparent = hubwright_telemetry::TraceParent::current().map(|tp| tp.to_string());
    let new_environment = NewEnvironment {
        id,
        name: &request.name,
        owner: caller.subject(),
        template: &request.template,
        cluster: &request.cluster,
        namespace: &namespace,
        parameters,
        expires_at: now + ttl.to_chrono(),
        traceparent: traceparent.as_deref(),
    };
    // Counted and inserted under the owner's lock: race-free.
    let quota = Some(Quota {
        limits: &limits,
        counting: &policy.usage,
        demand: &demand,
    });
    let plan = PoolPlan::of(&catalog, &request.template, &request.cluster);
    let pool_request = plan.as_ref().and_then(|plan| {
        let requested = new_environment.parameters.as_object()?;
        plan.request(requested)
            .inspect_err(|why| tracing::debug!(pool = plan.template(), why, "pool cannot serve"))
            .ok()
    });
    // The creation's audit record commits with it; a refusal or a replay is
    // recorded by the middleware, as every other call is.
    let record = trail
        .as_ref()
        .map(|Extension(trail)| trail.success(now, StatusCode::ACCEPTED));
    let admission = Admission {
        pool: pool_request,
        idempotency,
        quota,
        audit: record.as_ref(),
    };
    let admitted = state
        .store
        .admit_environment(&new_environment, provision, admission, now)
        .await?;
    if !admitted.replayed
        && let Some(Extension(trail)) = &trail
    {
        trail.mark_recorded();
    }
    let accepted = admitted.accepted;
    // A replayed answer names the environment it created then, not `id`.
    let environment_id = accepted
        .environment
        .get("id")
        .and_then(Value::as_str)
        .and_then(|text| text.parse().ok())
        .unwrap_or(id);
    let links = Links::new(environment_id, Some(accepted.run_id));
    Ok((
        StatusCode::ACCEPTED,
        AppendHeaders([(header::LOCATION, environment_path(environment_id))]),
        Json(EnvironmentAccepted { accepted, links }),
    ))
}
