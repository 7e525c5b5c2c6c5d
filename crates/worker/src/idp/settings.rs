//! What the three kinds read besides their own parameters: how to reach
//! Keycloak's admin API, and secrets from the worker's environment (which
//! never go in a workflow file).

use hubwright_state::model::Environment;
use hubwright_state::secrets::SecretString;
use serde::Deserialize;

use super::keycloak;
use crate::step::StepError;

/// How to reach Keycloak's admin API. The same block goes to
/// `idp-client-update` and `idp-client-delete`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeycloakParams {
    /// Keycloak's base URL, e.g. `https://sso.example.org`.
    pub url: String,
    /// The realm the hubs' clients live in.
    pub realm: String,
    /// The confidential client whose service account manages clients.
    pub admin_client_id: String,
    /// The environment variable holding that client's secret.
    pub admin_client_secret_env: String,
}

impl KeycloakParams {
    /// The issuer of the realm (its endpoints are at fixed paths under it).
    pub(super) fn issuer(&self) -> String {
        format!("{}/realms/{}", self.url.trim_end_matches('/'), self.realm)
    }

    pub(super) fn secret(&self) -> Result<SecretString, StepError> {
        secret_from_env(
            &self.admin_client_secret_env,
            "keycloak.admin_client_secret_env",
        )
    }

    pub(super) fn driver<'a>(
        &'a self,
        http: &'a reqwest::Client,
        secret: &'a SecretString,
    ) -> keycloak::Keycloak<'a> {
        keycloak::Keycloak {
            http,
            base_url: &self.url,
            realm: &self.realm,
            admin_client_id: &self.admin_client_id,
            admin_client_secret: secret,
        }
    }
}

/// Keycloak's client id for an environment: chosen by us, so a retry finds it.
pub(super) fn keycloak_client_id(env: &Environment) -> String {
    format!("hubwright-{}", env.id)
}

/// The Keycloak settings a follow-up step needs for a Keycloak-made client.
pub(super) fn keycloak_settings<'a>(
    settings: Option<&'a KeycloakParams>,
    kind: &str,
) -> Result<&'a KeycloakParams, StepError> {
    settings.ok_or_else(|| {
        StepError::permanent(format!(
            "the OAuth client was made through Keycloak; give {kind} the same `keycloak:` block as idp-client"
        ))
    })
}

/// A secret from the worker's environment variable `variable`, named in `with.<place>`.
pub(super) fn secret_from_env(variable: &str, place: &str) -> Result<SecretString, StepError> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => Ok(SecretString::new(value.trim())),
        _ => Err(StepError::permanent(format!(
            "with.{place} names {variable}, which is not set on this worker"
        ))),
    }
}
