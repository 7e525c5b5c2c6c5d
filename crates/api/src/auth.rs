//! Bearer-token authentication: every `/v1` handler takes a [`Caller`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use hubwright_state::model::{Principal, Role};
use hubwright_state::store::audit::AuthKind;
use hubwright_state::store::console::SessionAuth;
use hubwright_state::subjects;

use crate::AppState;
use crate::audit::record::{Actor, ActorSlot};
use crate::error::Problem;
use crate::oidc::{OidcVerifier, Rejected};
use crate::ratelimit::CallerKey;

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

    /// The groups the caller belongs to, sorted: an OpenID token's groups
    /// claim, and those the policy file declares for the caller's name.
    pub fn groups(&self) -> &[String] {
        &self.0.groups
    }

    /// Whether the caller belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.0.groups.iter().any(|g| g == group)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    /// Authenticates, then spends one request of the caller's budget
    /// ([`crate::ratelimit`]); a failed sign-in spends the address's.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await {
            Ok((mut principal, key, auth)) => {
                // Who this is, for the audit middleware around the handler.
                if let Some(slot) = parts.extensions.get::<ActorSlot>() {
                    slot.fill(Actor {
                        subject: principal.subject.clone(),
                        role: principal.role,
                        auth,
                    });
                }
                state.limits.admit(&key)?;
                // The policy file's groups join the token's (hubwright's own
                // tokens carry none), read at every request so a reload counts.
                principal
                    .groups
                    .extend(state.policy.current().groups_of(&principal.subject));
                principal.groups.sort();
                principal.groups.dedup();
                Ok(Self(principal))
            }
            Err(problem) if problem.status() == StatusCode::UNAUTHORIZED => {
                Err(state.limits.failed(parts, problem))
            }
            Err(problem) => Err(problem),
        }
    }
}

/// A request the web console makes on behalf of its signed-in user: the
/// console puts this in the request's extensions, which no client can set, in
/// place of a bearer token (docs/decisions/0018-web-console.md). The session
/// holds no credential; it names who signed in and how.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    /// The signed-in user as the session recorded them.
    pub principal: Principal,
    /// How they signed in, for the audit trail and the rate budget.
    pub auth: SessionAuth,
    /// The hash of the session's secret: event streams re-check it.
    pub session_hash: String,
}

/// The principal the request's bearer token names, and whose rate budget it
/// spends.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
) -> Result<(Principal, CallerKey, AuthKind), Problem> {
    if let Some(user) = parts.extensions.get::<ConsoleUser>() {
        // A token session has a budget of its own (keyed by the token's id,
        // as the session never holds the secret); an OpenID user's is theirs.
        let (key, auth) = match user.auth {
            SessionAuth::Token(id) => (state.limits.token_key(&id.to_string()), AuthKind::Token),
            SessionAuth::Oidc => (
                CallerKey::User(user.principal.subject.clone()),
                AuthKind::Oidc,
            ),
        };
        return Ok((user.principal.clone(), key, auth));
    }
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
    let (principal, key, auth) = if let Some(oidc) = &state.oidc
        && OidcVerifier::looks_like_jwt(token)
    {
        match oidc.verify(token).await {
            // A name that cannot be stored or printed names no one.
            Ok(principal) if principal.subject.chars().any(char::is_control) => {
                return Err(Problem::unauthorized(
                    "the token's username holds control characters",
                ));
            }
            Ok(principal) => {
                let key = CallerKey::User(principal.subject.clone());
                (principal, key, AuthKind::Oidc)
            }
            Err(Rejected::Token(why)) => return Err(Problem::unauthorized(why)),
            Err(Rejected::Provider(why)) => {
                tracing::warn!(%why, "cannot check an OpenID token");
                return Err(Problem::unavailable());
            }
        }
    } else {
        let principal = state
            .store
            .authenticate(token, state.clock.now())
            .await?
            .ok_or_else(|| Problem::unauthorized("the token is unknown or revoked"))?;
        (principal, state.limits.token_key(token), AuthKind::Token)
    };
    // hubwright's own actors own and start runs under these names; a caller
    // by such a name (a token made before they were refused, an OpenID user
    // called `scheduler`) would read and act as them.
    if subjects::is_reserved(&principal.subject) {
        return Err(Problem::unauthorized(format!(
            "`{}` is reserved for hubwright's own actors and cannot call the API",
            principal.subject
        )));
    }
    Ok((principal, key, auth))
}
