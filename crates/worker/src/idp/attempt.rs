//! What every attempt of the three kinds resolves first (the environment,
//! the sealing keys, the values placeholders fill from) and reads from the
//! database.

use std::sync::Arc;

use hubwright_state::model::Environment;
use hubwright_state::secrets::{SecretKeys, SecretString};
use hubwright_state::store::secrets::{IdpClient, SecretError};
use serde_json::{Value, json};

use super::{IdpShared, dcr};
use crate::step::{StepContext, StepError};
use crate::values::{environment_values, fill};

/// Everything an attempt needs, resolved once.
pub(super) struct Attempt<'a> {
    shared: &'a IdpShared,
    pub(super) ctx: &'a StepContext,
    pub(super) env: Environment,
    pub(super) values: Value,
    pub(super) keys: Arc<SecretKeys>,
}

impl<'a> Attempt<'a> {
    pub(super) async fn new(
        shared: &'a IdpShared,
        ctx: &'a StepContext,
    ) -> Result<Self, StepError> {
        let keys = shared.keys.clone().ok_or_else(|| {
            StepError::permanent(
                "HUBWRIGHT_SECRET_KEY is not configured on this worker; it seals the hub's credentials",
            )
        })?;
        let env = ctx.environment().await?;
        let values =
            environment_values(&ctx.input, &env, shared.clusters.config(&env.cluster).ok());
        Ok(Self {
            shared,
            ctx,
            env,
            values,
            keys,
        })
    }

    pub(super) fn fill(&self, text: &str, place: &str) -> Result<String, StepError> {
        fill(text, &self.values, place)
    }

    pub(super) fn required(
        &self,
        value: &Option<String>,
        place: &str,
    ) -> Result<String, StepError> {
        match value {
            Some(text) => self.fill(text, place),
            None => Err(StepError::permanent(format!(
                "with.{place} is required in mode oidc"
            ))),
        }
    }

    pub(super) fn provider<'p>(&'p self, issuer: &'p str) -> dcr::Provider<'p> {
        dcr::Provider {
            http: &self.shared.http,
            issuer,
        }
    }

    pub(super) async fn record(&self) -> Result<Option<IdpClient>, StepError> {
        self.ctx
            .store
            .idp_client(self.env.id)
            .await
            .map_err(|err| StepError::retryable(format!("reading the IdP client record: {err}")))
    }

    pub(super) async fn secret(&self, name: &str) -> Result<Option<SecretString>, StepError> {
        self.ctx
            .store
            .secret(&self.keys, self.env.id, name)
            .await
            .map_err(secret_error)
    }

    /// The client's name at the provider. The environment id makes an
    /// orphaned registration recognisable.
    pub(super) fn client_name(&self) -> String {
        format!(
            "hubwright {} of {} ({})",
            self.env.name, self.env.owner, self.env.id
        )
    }

    /// The metadata hubwright registers: a confidential web client of the hub.
    pub(super) fn metadata(&self, redirect_uri: &str) -> Value {
        json!({
            "client_name": self.client_name(),
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        })
    }
}

pub(super) fn secret_error(err: SecretError) -> StepError {
    match err {
        SecretError::State(err) => StepError::retryable(format!("reading sealed secrets: {err}")),
        // A key that cannot open the row will not open it on the next attempt.
        other => StepError::permanent(other.to_string()),
    }
}
