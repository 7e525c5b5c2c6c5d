//! `hub-assign`: hands a pooled JupyterHub to its owner through the hub's
//! own REST API, with the token of the hub's `hubwright` service (decision
//! 0024).
//!
//! A pool member is built so that only the platform's admins may log in
//! (`allow_existing_users` and an allow list of admins only). The `idp-client`
//! step made the service's token (sealed in Postgres, written into the hub's
//! Secret, read by the hub through `hub.extraEnv`); on a claim, `hub-assign`
//! creates the allowed users and makes the owner an admin, and JupyterHub
//! adds users created through its API to the allowed set.
//!
//! [`api`] speaks the hub's API and classes its answers; [`assign`] is the
//! step.

mod api;
mod assign;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubwright_state::Store;
use hubwright_state::secrets::{SecretKeys, SecretString};
use hubwright_state::store::secrets::SecretError;
use uuid::Uuid;

use crate::registry::Registry;
use crate::step::StepError;

pub use assign::{HubAssignParams, HubAssignStep};

/// The sealed secret (per environment) holding the service's token.
pub const API_TOKEN_SECRET: &str = "hub-api-token";

/// The key of the hub's Secret, and the hub's environment variable, that
/// carry the service's token.
pub const API_TOKEN_KEY: &str = "HUBWRIGHT_API_TOKEN";

/// How long one call to a hub may take.
const HUB_TIMEOUT: Duration = Duration::from_secs(15);

/// What `hub-assign` needs: the keys that open the token, one HTTP client.
#[derive(Debug)]
pub struct HubShared {
    keys: Option<Arc<SecretKeys>>,
    http: reqwest::Client,
}

/// Registers `hub-assign`. Without `keys` it fails permanently, saying the
/// key is not configured.
pub fn register(registry: &mut Registry, keys: Option<Arc<SecretKeys>>) {
    let http = hubwright_http::client_builder()
        .timeout(HUB_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    registry.register(HubAssignStep(Arc::new(HubShared { keys, http })));
}

/// The hub's service token for environment `id`: the sealed one, or a new
/// one sealed now. A retried attempt finds the one an earlier attempt
/// sealed, so the hub's Secret and the sealed copy never disagree.
pub(crate) async fn service_token(
    store: &Store,
    keys: &SecretKeys,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<SecretString, StepError> {
    if let Some(token) = store
        .secret(keys, id, API_TOKEN_SECRET)
        .await
        .map_err(sealed_error)?
    {
        return Ok(token);
    }
    let token = random_token()?;
    store
        .put_secret(keys, id, API_TOKEN_SECRET, &token, now)
        .await
        .map_err(sealed_error)?;
    Ok(token)
}

fn sealed_error(err: SecretError) -> StepError {
    match err {
        SecretError::State(err) => {
            StepError::retryable(format!("reading or sealing the hub's service token: {err}"))
        }
        // A key that cannot open the row will not open it on the next attempt.
        other => StepError::permanent(other.to_string()),
    }
}

/// 43 characters of URL-safe letters, 256 bits: JupyterHub takes any token
/// of 8 characters or more.
fn random_token() -> Result<SecretString, StepError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 43];
    getrandom::fill(&mut bytes)
        .map_err(|err| StepError::retryable(format!("no randomness for a token: {err}")))?;
    // 256 % 62 leaves a slight bias toward the first letters; 250 bits absorb it.
    let token: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(SecretString::new(token))
}
