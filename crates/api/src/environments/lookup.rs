//! Which environment a path segment means: an id, or a name.
//!
//! A segment that parses as a UUID is an id first. Otherwise (or when no
//! environment has that id) it is a name, looked up among the live
//! environments of the caller, or of `?owner=` for operators. Names are
//! unique per owner among live environments, so at most one matches. A name
//! that is not a DNS label names nothing: 404, not 422. Another owner's
//! environment answers 404 with the same detail as a missing one, by id and
//! by name alike, so it cannot be detected.

use hubwright_state::model::Environment;
use hubwright_state::workflow::is_dns_label;
use serde::Deserialize;
use uuid::Uuid;

use super::MAX_NAME;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};

/// `?owner=`: whose environment a name means.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AddressQuery {
    /// Whose live environment the name in the path means (default: the
    /// caller's). Operators may name anyone; a developer naming another owner
    /// finds nothing. With an id, the environment must be this owner's.
    owner: Option<String>,
}

/// The environment `segment` (an id or a name) means for `caller`, or a 404
/// that reads the same whether it is missing or someone else's.
pub(crate) async fn resolve(
    state: &AppState,
    caller: &Caller,
    segment: &str,
    query: &AddressQuery,
) -> ApiResult<Environment> {
    let not_found = || Problem::not_found(format!("no environment {segment}"));
    let owner = query.owner.as_deref();
    if let Ok(id) = Uuid::parse_str(segment) {
        match state.store.environment(id).await {
            Ok(env) if caller.may_see(&env.owner) && owner.is_none_or(|o| o == env.owner) => {
                return Ok(env);
            }
            // A lowercase hyphenated UUID is also a valid name: it may still
            // name one.
            Ok(_) | Err(hubwright_state::Error::EnvironmentNotFound(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let owner = owner.unwrap_or(caller.subject());
    if !caller.may_see(owner) || !is_dns_label(segment, MAX_NAME) {
        return Err(not_found());
    }
    state
        .store
        .live_environment_by_name(owner, segment)
        .await?
        .ok_or_else(not_found)
}
