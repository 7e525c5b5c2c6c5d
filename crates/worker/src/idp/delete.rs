//! `idp-client-delete`: deletes the OAuth client at the provider and forgets
//! every credential hubwright sealed for the environment.

use std::sync::Arc;

use hubwright_state::store::secrets::{IdpClient, IdpClientState};
use serde::Deserialize;
use serde_json::json;

use super::attempt::Attempt;
use super::settings::{KeycloakParams, keycloak_client_id, keycloak_settings};
use super::{ADMIN_PASSWORD, CLIENT_SECRET, IdpShared, REGISTRATION_TOKEN};
use crate::step::{Outcome, Step, StepContext, StepError};

/// `idp-client-delete`: deletes the OAuth client at the provider and forgets
/// its credentials. Already gone (401 or 404) is done; so is a client the
/// `idp-client` step never called out to register.
#[derive(Debug, Clone)]
pub struct IdpClientDeleteStep(pub(super) Arc<IdpShared>);

/// Parameters of `idp-client-delete`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpClientDeleteParams {
    /// The `keycloak` block of `idp-client`, when it registered through Keycloak.
    #[serde(default)]
    pub keycloak: Option<KeycloakParams>,
}

impl Step for IdpClientDeleteStep {
    const KIND: &'static str = "idp-client-delete";
    type Params = IdpClientDeleteParams;

    async fn run(
        &self,
        ctx: &StepContext,
        params: IdpClientDeleteParams,
    ) -> Result<Outcome, StepError> {
        // Never registered, sealed or written anything: nothing to remove,
        // and no secret key or provider needed to say so.
        if !ctx.ever_called_out(super::IdpClientStep::KIND).await? {
            return Ok(Outcome::never_created());
        }
        let attempt = Attempt::new(&self.0, ctx).await?;
        let env_id = attempt.env.id;
        let record = attempt.record().await?;
        let mut deleted_at_provider = false;
        if let Some(record) = record
            .as_ref()
            .filter(|r| r.driver == "keycloak" && r.state != IdpClientState::Deleted)
        {
            let settings = keycloak_settings(params.keycloak.as_ref(), "idp-client-delete")?;
            let admin_secret = settings.secret()?;
            deleted_at_provider = settings
                .driver(&self.0.http, &admin_secret)
                .delete(&keycloak_client_id(&attempt.env))
                .await?;
            tracing::info!(environment = %env_id, client_id = ?record.client_id, deleted_at_provider, "Keycloak client removed");
            ctx.store
                .mark_idp_client_deleted(env_id, ctx.now())
                .await
                .map_err(|err| StepError::retryable(format!("recording the deletion: {err}")))?;
        } else if let Some(IdpClient {
            state: IdpClientState::Registered,
            registration_client_uri: Some(uri),
            client_id,
            ..
        }) = &record
        {
            if let Some(token) = attempt.secret(REGISTRATION_TOKEN).await? {
                let issuer = uri.clone();
                deleted_at_provider = attempt.provider(&issuer).delete(uri, &token).await?;
                tracing::info!(environment = %env_id, client_id = ?client_id, deleted_at_provider, "OAuth client removed");
            }
            ctx.store
                .mark_idp_client_deleted(env_id, ctx.now())
                .await
                .map_err(|err| StepError::retryable(format!("recording the deletion: {err}")))?;
        }
        ctx.store
            .delete_secrets(env_id, &[CLIENT_SECRET, REGISTRATION_TOKEN, ADMIN_PASSWORD])
            .await
            .map_err(|err| StepError::retryable(format!("forgetting sealed secrets: {err}")))?;
        Ok(Outcome::Done(json!({
            "deleted_at_provider": deleted_at_provider,
            "client_id": record.and_then(|record| record.client_id),
        })))
    }
}
