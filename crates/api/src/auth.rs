//! Bearer-token authentication: every `/v1` handler takes a [`Caller`].

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use hubwright_state::model::{Principal, Role};

use crate::AppState;
use crate::error::Problem;
use crate::oidc::{OidcVerifier, Rejected};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Refuses with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.0.has(role) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this needs the {role} role; {} is a {}",
                self.0.subject, self.0.role
            )))
        }
    }

    /// Whether the caller sees everything (operators and admins).
    pub fn is_operator(&self) -> bool {
        self.0.has(Role::Operator)
    }

    /// Whether the caller may see something `owner` created: their own, or
    /// anything for operators and admins.
    pub fn may_see(&self, owner: &str) -> bool {
        self.0.has(Role::Operator) || self.0.subject == owner
    }

    /// The caller's name, for the timeline.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Problem::unauthorized("send `Authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        if let Some(oidc) = &state.oidc
            && OidcVerifier::looks_like_jwt(token)
        {
            return match oidc.verify(token).await {
                Ok(principal) => Ok(Self(principal)),
                Err(Rejected::Token(why)) => Err(Problem::unauthorized(why)),
                Err(Rejected::Provider(why)) => {
                    tracing::warn!(%why, "cannot check an OpenID token");
                    Err(Problem::unavailable())
                }
            };
        }
        match state.store.authenticate(token, state.clock.now()).await? {
            Some(principal) => Ok(Self(principal)),
            None => Err(Problem::unauthorized("the token is unknown or revoked")),
        }
    }
}
