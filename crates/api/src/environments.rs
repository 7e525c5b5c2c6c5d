//! `/v1/environments`: developers ask for environments, see their own, extend
//! and delete them; operators see all.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hubwright_state::model::{Environment, EnvironmentPhase, Run, Step};
use hubwright_state::store::environments::{
    Accepted, EnvironmentFilter, Idempotency, NewEnvironment, TeardownRequest, request_hash,
};
use hubwright_state::workflow::{Dur, LoadedTemplate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::{ApiPath, OptionalJson};

/// The `/v1/environments` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/environments", post(create).get(list))
        .route("/v1/environments/{id}", get(show).delete(delete))
        .route("/v1/environments/{id}/extend", post(extend))
}

/// Names are DNS-1123 labels (they become namespace and host names), short
/// enough to leave room for the prefixes built from them.
const MAX_NAME: usize = 40;

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
    /// The template (default `jupyterhub`).
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
    /// The template's declared parameters.
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

fn check_label(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if hubwright_state::workflow::is_dns_label(value, max) {
        Ok(())
    } else {
        Err(Problem::invalid(
            field,
            &format!(
                "must be a DNS-1123 label: 1 to {max} lowercase letters, digits or `-`, starting and ending with a letter or digit (got `{value}`)"
            ),
        ))
    }
}

fn template<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a LoadedTemplate> {
    state.catalog.template(name).ok_or_else(|| {
        Problem::invalid(
            "template",
            &format!(
                "no template named `{name}` (known: {})",
                state.catalog.names().join(", ")
            ),
        )
    })
}

fn parse_ttl(text: &str) -> ApiResult<Dur> {
    let ttl: Dur = text
        .parse()
        .map_err(|rule: String| Problem::invalid("ttl", &rule))?;
    if ttl.is_zero() {
        return Err(Problem::invalid("ttl", "must be above zero"));
    }
    Ok(ttl)
}

/// The latest `expires_at` a template allows for an environment created at `created_at`.
fn latest_expiry(loaded: &LoadedTemplate, created_at: DateTime<Utc>) -> DateTime<Utc> {
    created_at + loaded.template.ttl.maximum.to_chrono()
}

/// `Idempotency-Key`: printable ASCII, at most 200 characters.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty() && key.len() <= 200 && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key))
        }
        _ => Err(Problem::invalid(
            "Idempotency-Key",
            "must be 1 to 200 printable ASCII characters without spaces",
        )),
    }
}

/// Ask for an environment: validated, then stored with its provisioning run in one transaction.
#[utoipa::path(post, path = "/v1/environments", operation_id = "create_environment", tag = "environments", request_body = CreateEnvironment,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same answer")),
    responses((status = 202, body = Accepted), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OptionalJson(request): OptionalJson<CreateEnvironment>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let key = idempotency_key(&headers)?;
    check_label("name", &request.name, MAX_NAME)?;
    let loaded = template(&state, &request.template)?;
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
    let policy = loaded.template.ttl;
    let ttl = match &request.ttl {
        Some(text) => parse_ttl(text)?,
        None => policy.default,
    };
    if ttl > policy.maximum {
        return Err(Problem::invalid(
            "ttl",
            &format!(
                "{ttl} is beyond the maximum of template `{}` ({})",
                request.template, policy.maximum
            ),
        ));
    }
    let provision = state
        .catalog
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
    let now = state.clock.now();
    // Defaults are filled in before hashing, so leaving out a default and
    // spelling it out count as the same request.
    let hash = request_hash(&serde_json::to_value(&request).unwrap_or(Value::Null));
    let idempotency = key.map(|key| Idempotency {
        key,
        request_hash: &hash,
    });
    let accepted = state
        .store
        .request_environment(
            &NewEnvironment {
                id,
                name: &request.name,
                owner: caller.subject(),
                template: &request.template,
                cluster: &request.cluster,
                namespace: &namespace,
                parameters: Value::Object(parameters),
                expires_at: now + ttl.to_chrono(),
            },
            provision,
            idempotency,
            now,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// `?owner=&phase=&template=&expiring_within=&cursor=&limit=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    owner: Option<String>,
    /// Only in this phase; `deleted` finds deleted environments.
    phase: Option<EnvironmentPhase>,
    template: Option<String>,
    /// Only environments that expire within this long from now (e.g. `2h`)
    /// and whose teardown has not been requested yet.
    #[param(example = "2h")]
    expiring_within: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Page size.
    #[serde(default = "default_page")]
    #[param(minimum = 1, maximum = 200)]
    limit: i64,
    /// Include deleted environments (implied by a `phase` filter).
    #[serde(default)]
    include_deleted: bool,
}

fn default_page() -> i64 {
    50
}

/// A page of environments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page {
    items: Vec<Environment>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<Uuid>,
}

/// List environments (a developer's own; everyone's for operators), oldest first.
#[utoipa::path(get, path = "/v1/environments", operation_id = "list_environments", tag = "environments", params(ListQuery),
    responses((status = 200, body = Page), (status = 422, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Page>> {
    let Query(query) = query.map_err(|err| Problem::invalid("query", &err.body_text()))?;
    if !(1..=200).contains(&query.limit) {
        return Err(Problem::invalid("limit", "must be between 1 and 200"));
    }
    // Developers list only their own: asking for another owner finds nothing.
    let owner = if caller.is_operator() {
        query.owner
    } else {
        match query.owner {
            Some(owner) if owner != caller.subject() => {
                return Ok(Json(Page {
                    items: Vec::new(),
                    next_cursor: None,
                }));
            }
            _ => Some(caller.subject().to_owned()),
        }
    };
    let expires_before = match &query.expiring_within {
        Some(text) => {
            let within: Dur = text
                .parse()
                .map_err(|rule: String| Problem::invalid("expiring_within", &rule))?;
            Some(
                state
                    .clock
                    .now()
                    .checked_add_signed(within.to_chrono())
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            )
        }
        None => None,
    };
    let filter = EnvironmentFilter {
        owner,
        phase: query.phase,
        template: query.template,
        include_deleted: query.include_deleted,
        expires_before,
    };
    // One extra row tells whether another page follows.
    let mut items = state
        .store
        .list_environments(&filter, query.cursor, query.limit + 1)
        .await?;
    let more = items.len() > usize::try_from(query.limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}

/// An environment the caller may see; others' are 404 so they cannot be detected.
async fn visible(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<Environment> {
    match state.store.environment(id).await {
        Ok(env) if caller.may_see(&env.owner) => Ok(env),
        Ok(_) | Err(hubwright_state::Error::EnvironmentNotFound(_)) => {
            Err(Problem::not_found(format!("no environment {id}")))
        }
        Err(err) => Err(err.into()),
    }
}

/// An environment with its current run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvironmentView {
    #[serde(flatten)]
    environment: Environment,
    current_run: Option<RunWithSteps>,
}

/// A run with its steps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunWithSteps {
    #[serde(flatten)]
    run: Run,
    steps: Vec<Step>,
}

/// An environment with its current run and steps.
#[utoipa::path(get, path = "/v1/environments/{id}", operation_id = "get_environment", tag = "environments", params(("id" = Uuid, Path)),
    responses((status = 200, body = EnvironmentView), (status = 404, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<EnvironmentView>> {
    let environment = visible(&state, &caller, id).await?;
    let current_run = match state.store.latest_run_id(id).await? {
        Some(run_id) => Some(RunWithSteps {
            run: state.store.run(run_id).await?,
            steps: state.store.steps(run_id).await?,
        }),
        None => None,
    };
    Ok(Json(EnvironmentView {
        environment,
        current_run,
    }))
}

/// What a delete did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeardownAccepted {
    environment_id: Uuid,
    /// `started`, `waiting` (for the active run to stop) or `already_requested`.
    teardown: &'static str,
    run_id: Option<Uuid>,
}

/// Tear an environment down (cancels provisioning first). Repeating it is harmless.
#[utoipa::path(delete, path = "/v1/environments/{id}", operation_id = "delete_environment", tag = "environments", params(("id" = Uuid, Path)),
    responses((status = 202, body = TeardownAccepted), (status = 404, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<TeardownAccepted>)> {
    let environment = visible(&state, &caller, id).await?;
    let (_, teardown_id) = state
        .catalog
        .definition(&environment.template, "teardown")
        .ok_or_else(|| {
            Problem::conflict(format!(
                "template `{}` has no `teardown` workflow",
                environment.template
            ))
        })?;
    let outcome = state
        .store
        .request_teardown(id, teardown_id, caller.subject(), state.clock.now())
        .await?;
    let (teardown, run_id) = match outcome {
        TeardownRequest::Started(run_id) => ("started", Some(run_id)),
        TeardownRequest::Waiting => ("waiting", None),
        TeardownRequest::AlreadyRequested => ("already_requested", None),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(TeardownAccepted {
            environment_id: id,
            teardown,
            run_id,
        }),
    ))
}

/// A new time-to-live.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extend {
    /// New time-to-live, counted from now.
    #[serde(default)]
    ttl: String,
}

/// A new time-to-live from now, within the template's maximum from creation
/// (and its `max_extensions`, when it sets one).
#[utoipa::path(post, path = "/v1/environments/{id}/extend", operation_id = "extend_environment", tag = "environments", params(("id" = Uuid, Path)),
    request_body = Extend,
    responses((status = 200, body = Environment), (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn extend(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(request): OptionalJson<Extend>,
) -> ApiResult<Json<Environment>> {
    let environment = visible(&state, &caller, id).await?;
    if request.ttl.is_empty() {
        return Err(Problem::invalid("ttl", "is required, e.g. \"4h\""));
    }
    let ttl = parse_ttl(&request.ttl)?;
    let now = state.clock.now();
    let loaded = template(&state, &environment.template)?;
    let latest = latest_expiry(loaded, environment.created_at);
    // A TTL of centuries does not fit a timestamp: it is beyond any maximum.
    let expires_at = now
        .checked_add_signed(ttl.to_chrono())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if expires_at > latest {
        return Err(Problem::invalid(
            "ttl",
            &format!(
                "would expire at {expires_at}, beyond the template's maximum of {} from creation ({latest})",
                loaded.template.ttl.maximum
            ),
        ));
    }
    Ok(Json(
        state
            .store
            .extend_environment(
                id,
                expires_at,
                loaded.template.ttl.max_extensions,
                caller.subject(),
                now,
            )
            .await?,
    ))
}
