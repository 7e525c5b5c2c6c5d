//! `/v1/tokens`: admins create, list and revoke API tokens. The secret is in
//! the creation answer only; afterwards a token is its id, subject and role.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use hubwright_state::model::Role;
use hubwright_state::store::tokens::TokenInfo;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument};
use crate::json::{ApiPath, OptionalJson};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

/// A request for a token.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Who the token authenticates: a user or service account, 1 to 200
    /// characters; not one of hubwright's own actors (`scheduler`,
    /// `bootstrap`, `system`, `hubwright`, `worker`, `pool`, `pool:…`) nor, when OpenID users
    /// carry a prefix, a name with that prefix.
    #[serde(default)]
    subject: String,
    /// `developer`, `operator` or `admin`.
    #[serde(default)]
    role: Option<Role>,
}

/// A token just created: the only answer that carries its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    token: TokenInfo,
    /// The bearer secret. Shown once; only its hash is stored.
    secret: String,
}

/// Every token, newest first, without secrets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    items: Vec<TokenInfo>,
}

/// Create a token (admin). The answer carries the secret, once.
#[utoipa::path(post, path = "/v1/tokens", operation_id = "create_token", tag = "tokens", request_body = CreateToken,
    params(("Idempotency-Key" = Option<String>, Header, description = "Sent again: no second token, a 409 naming the first")),
    responses((status = 201, body = CreatedToken), (status = 409, body = ProblemDocument, description = "The Idempotency-Key created a token before; its secret is not shown again"), (status = 422, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OptionalJson(request): OptionalJson<CreateToken>,
) -> ApiResult<(
    StatusCode,
    [(HeaderName, &'static str); 1],
    Json<CreatedToken>,
)> {
    caller.require(Role::Admin)?;
    let key = crate::idempotency::key(&headers)?;
    let role = request
        .role
        .ok_or_else(|| Problem::invalid("role", "is required: developer, operator or admin"))?;
    // With a prefix, the provider's users are exactly the subjects that carry
    // it; a token by such a name would pose as one of them.
    if let Some(oidc) = &state.oidc
        && !oidc.username_prefix().is_empty()
        && request.subject.trim().starts_with(oidc.username_prefix())
    {
        return Err(Problem::invalid(
            "subject",
            &format!(
                "must not start with `{}`: that marks users of the OpenID provider",
                oidc.username_prefix()
            ),
        ));
    }
    let now = state.clock.now();
    let issued = state
        .store
        .create_token_as(caller.subject(), &request.subject, role, key, now)
        .await?;
    tracing::info!(token_id = %issued.id, subject = %issued.subject, role = %issued.role, by = caller.subject(), "token created");
    Ok((
        StatusCode::CREATED,
        // The one answer with a secret: no cache, shared or the browser's, keeps it.
        [(header::CACHE_CONTROL, "no-store")],
        Json(CreatedToken {
            token: TokenInfo {
                id: issued.id,
                subject: issued.subject.clone(),
                role: issued.role,
                created_by: caller.subject().to_owned(),
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            },
            secret: issued.secret,
        }),
    ))
}

/// List tokens (admin): who has access, and who made each token.
#[utoipa::path(get, path = "/v1/tokens", operation_id = "list_tokens", tag = "tokens",
    responses((status = 200, body = TokenList)),
    security(("bearer" = [])))]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TokenList>> {
    caller.require(Role::Admin)?;
    Ok(Json(TokenList {
        items: state.store.tokens().await?,
    }))
}

/// Revoke a token (admin): it stops working at once. Revoking it again is harmless.
#[utoipa::path(delete, path = "/v1/tokens/{id}", operation_id = "revoke_token", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 200, body = TokenInfo), (status = 404, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TokenInfo>> {
    caller.require(Role::Admin)?;
    let token = state
        .store
        .revoke_token_as(caller.subject(), id, state.clock.now())
        .await?;
    tracing::info!(token_id = %id, by = caller.subject(), "token revoked");
    Ok(Json(token))
}
