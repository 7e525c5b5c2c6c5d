//! `idp-client-update`: points the registered client at the hub's final
//! callback once the hub's address is known.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::attempt::Attempt;
use super::settings::{KeycloakParams, keycloak_client_id, keycloak_settings};
use super::{IdpShared, REGISTRATION_TOKEN};
use crate::step::{Outcome, Step, StepContext, StepError};
use crate::values::fill;

/// Parameters of `idp-client-update`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpClientUpdateParams {
    /// The hub's callback once its address is known: placeholders allowed,
    /// including earlier outputs, e.g. `{steps.health.url}/hub/oauth_callback`.
    pub redirect_uri: String,
    /// The `keycloak` block of `idp-client`, when it registered through Keycloak.
    #[serde(default)]
    pub keycloak: Option<KeycloakParams>,
}

/// `idp-client-update`: points the registered client at the hub's final
/// callback (RFC 7592 PUT), for hubs whose address is known only after the
/// Helm release. Does nothing in mode `local`.
#[derive(Debug, Clone)]
pub struct IdpClientUpdateStep(pub(super) Arc<IdpShared>);

impl Step for IdpClientUpdateStep {
    const KIND: &'static str = "idp-client-update";
    type Params = IdpClientUpdateParams;

    async fn run(
        &self,
        ctx: &StepContext,
        params: IdpClientUpdateParams,
    ) -> Result<Outcome, StepError> {
        let attempt = Attempt::new(&self.0, ctx).await?;
        let values = crate::values::with_outputs(attempt.values.clone(), &ctx.outputs().await?);
        let redirect_uri = fill(&params.redirect_uri, &values, "redirect_uri")?;
        let Some(record) = attempt.record().await? else {
            return Ok(Outcome::Done(
                json!({ "updated": false, "reason": "no OAuth client (mode local)" }),
            ));
        };
        if record.driver == "keycloak" {
            let settings = keycloak_settings(params.keycloak.as_ref(), "idp-client-update")?;
            let admin_secret = settings.secret()?;
            let client_id = keycloak_client_id(&attempt.env);
            let found = settings
                .driver(&self.0.http, &admin_secret)
                .update_redirects(&client_id, std::slice::from_ref(&redirect_uri))
                .await?;
            if !found {
                return Err(StepError::permanent(format!(
                    "Keycloak no longer has client {client_id}; retry the idp-client step to create it again"
                )));
            }
            return Ok(Outcome::Done(
                json!({ "updated": true, "client_id": client_id, "redirect_uri": redirect_uri }),
            ));
        }
        let (Some(client_id), Some(uri)) = (&record.client_id, &record.registration_client_uri)
        else {
            return Err(StepError::permanent(
                "the OAuth client was registered without RFC 7592 management; its redirect URIs cannot be updated",
            ));
        };
        let token = attempt
            .secret(REGISTRATION_TOKEN)
            .await?
            .ok_or_else(|| StepError::permanent("the registration access token is missing"))?;
        let issuer = uri.clone();
        let provider = attempt.provider(&issuer);
        let mut metadata = attempt.metadata(&redirect_uri);
        metadata["client_id"] = json!(client_id);
        if !provider.update(uri, &token, &metadata).await? {
            return Err(StepError::permanent(format!(
                "the identity provider no longer has client {client_id}; retry the idp-client step to register a new one"
            )));
        }
        Ok(Outcome::Done(
            json!({ "updated": true, "client_id": client_id, "redirect_uri": redirect_uri }),
        ))
    }
}
