//! `idp-client`: registers the hub's OAuth client — by Dynamic Client
//! Registration or Keycloak's admin API — or, in mode `local`, makes an admin
//! password; then writes the hub's Secret.

use std::collections::BTreeMap;
use std::sync::Arc;

use hubwright_state::secrets::SecretString;
use hubwright_state::store::secrets::{IdpClient, IdpClientState, SecretError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::attempt::{Attempt, secret_error};
use super::settings::{KeycloakParams, keycloak_client_id, secret_from_env};
use super::{ADMIN_PASSWORD, CLIENT_SECRET, DEFAULT_SECRET, IdpShared, REGISTRATION_TOKEN};
use crate::kubernetes::apply_secret;
use crate::step::{Outcome, Step, StepContext, StepError};

/// Parameters of `idp-client`. Strings may use placeholders (`{auth_mode}`,
/// `{env.name}`, `{cluster.base_domain}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpClientParams {
    /// `oidc` or `local`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// The OpenID provider's issuer URL (mode `oidc`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// The environment variable holding the provider's initial access token,
    /// when registration needs one. The token itself never goes in a file.
    #[serde(default)]
    pub initial_access_token_env: Option<String>,
    /// The hub's OAuth callback, e.g.
    /// `https://{env.name}.{cluster.base_domain}/hub/oauth_callback`.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// The Kubernetes Secret the hub reads: `OAUTH_CLIENT_ID` and
    /// `OAUTH_CLIENT_SECRET`, or `ADMIN_PASSWORD` in mode `local`.
    #[serde(default = "default_secret")]
    pub secret: String,
    /// Register through Keycloak's admin API instead of Dynamic Client
    /// Registration (then `issuer` is not needed).
    #[serde(default)]
    pub keycloak: Option<KeycloakParams>,
    /// Also make a token for the hub's `hubwright` service, sealed here and
    /// written into the Secret as `HUBWRIGHT_API_TOKEN`: what `hub-assign`
    /// calls the hub's REST API with when a pool member is claimed.
    #[serde(default)]
    pub hub_api_token: bool,
}

fn default_mode() -> String {
    "oidc".to_owned()
}

fn default_secret() -> String {
    DEFAULT_SECRET.to_owned()
}

/// `idp-client`: registers the hub's OAuth client (or makes a local admin
/// password) and writes the hub's Secret.
#[derive(Debug, Clone)]
pub struct IdpClientStep(pub(super) Arc<IdpShared>);

impl Step for IdpClientStep {
    const KIND: &'static str = "idp-client";
    type Params = IdpClientParams;

    async fn run(&self, ctx: &StepContext, params: IdpClientParams) -> Result<Outcome, StepError> {
        let attempt = Attempt::new(&self.0, ctx).await?;
        let mode = attempt.fill(&params.mode, "mode")?;
        // Before the first call out; mode `local` calls no provider but
        // writes the hub's Secret. Without an issuer, `oidc` fails first.
        let what = match (mode.as_str(), &params.keycloak, &params.issuer) {
            ("local", _, _) => Some(format!("the hub's Secret `{}`", params.secret)),
            ("oidc", Some(_), _) => Some("an OAuth client through Keycloak's admin API".to_owned()),
            ("oidc", None, Some(issuer)) => Some(format!(
                "an OAuth client at {}",
                attempt.fill(issuer, "issuer")?
            )),
            _ => None,
        };
        if let Some(what) = what {
            ctx.calling_out(Self::KIND, &what).await?;
        }
        let mut output = match mode.as_str() {
            "oidc" => self.oidc(&attempt, &params).await?,
            "local" => self.local(&attempt, &params).await?,
            other => {
                return Err(StepError::permanent(format!(
                    "with.mode: `{other}` is neither `oidc` nor `local`"
                )));
            }
        };
        // The values template registers the hub's service only when told.
        if params.hub_api_token {
            output["api_token"] = json!(true);
        }
        Ok(Outcome::Done(output))
    }
}

impl IdpClientStep {
    async fn oidc(
        &self,
        attempt: &Attempt<'_>,
        params: &IdpClientParams,
    ) -> Result<Value, StepError> {
        if let Some(keycloak) = &params.keycloak {
            return self.keycloak(attempt, params, keycloak).await;
        }
        let issuer = attempt.required(&params.issuer, "issuer")?;
        let redirect_uri = attempt.required(&params.redirect_uri, "redirect_uri")?;
        let provider = attempt.provider(&issuer);
        let discovery = provider.discover().await?;
        let record = attempt.record().await?;

        // Registered by an earlier attempt: reuse it while the provider has it.
        let mut credentials = None;
        if let Some(IdpClient {
            state: IdpClientState::Registered,
            registration_client_uri: Some(uri),
            client_id: Some(client_id),
            ..
        }) = &record
            && let Some(token) = attempt.secret(REGISTRATION_TOKEN).await?
            && provider.exists(uri, &token).await?
        {
            let secret = attempt
                .secret(CLIENT_SECRET)
                .await?
                .ok_or_else(|| StepError::retryable("the registered client's secret is missing"))?;
            credentials = Some((client_id.clone(), secret));
        }
        let reused = credentials.is_some();
        let lost_answer = matches!(
            record,
            Some(IdpClient {
                state: IdpClientState::Registering,
                ..
            })
        );
        let (client_id, client_secret) = match credentials {
            Some(credentials) => credentials,
            None => {
                let token = match &params.initial_access_token_env {
                    Some(variable) => Some(initial_access_token(variable)?),
                    None => None,
                };
                let endpoint = provider.registration_endpoint(&discovery)?;
                let metadata = attempt.metadata(&redirect_uri);
                let now = attempt.ctx.now();
                attempt
                    .ctx
                    .store
                    .begin_idp_registration(attempt.env.id, "dcr", &attempt.client_name(), now)
                    .await
                    .map_err(|err| {
                        StepError::retryable(format!("recording the registration: {err}"))
                    })?;
                let registration = provider
                    .register(&endpoint, &metadata, token.as_ref())
                    .await?;
                let mut secrets = vec![(CLIENT_SECRET, &registration.client_secret)];
                if let Some(token) = &registration.registration_access_token {
                    secrets.push((REGISTRATION_TOKEN, token));
                }
                attempt
                    .ctx
                    .store
                    .record_idp_registration(
                        &attempt.keys,
                        attempt.env.id,
                        &registration.client_id,
                        registration.registration_client_uri.as_deref(),
                        &secrets,
                        attempt.ctx.now(),
                    )
                    .await
                    .map_err(|err| match err {
                        SecretError::State(err) => StepError::retryable(format!(
                            "the provider registered client {} but recording it failed: {err}",
                            registration.client_id
                        )),
                        other => StepError::permanent(other.to_string()),
                    })?;
                tracing::info!(environment = %attempt.env.id, client_id = %registration.client_id, "OAuth client registered");
                (registration.client_id, registration.client_secret)
            }
        };
        apply_secret(
            &self.0.clusters,
            &attempt.env,
            &params.secret,
            &with_hub_token(
                attempt,
                params,
                BTreeMap::from([
                    (
                        "OAUTH_CLIENT_ID".to_owned(),
                        SecretString::new(client_id.clone()),
                    ),
                    ("OAUTH_CLIENT_SECRET".to_owned(), client_secret),
                ]),
            )
            .await?,
        )
        .await?;
        Ok(json!({
            "mode": "oidc",
            "issuer": issuer,
            "authorization_endpoint": discovery.authorization_endpoint,
            "token_endpoint": discovery.token_endpoint,
            "userinfo_endpoint": discovery.userinfo_endpoint,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "secret": params.secret,
            "reused": reused,
            // An earlier attempt's answer was lost: the provider may hold an
            // orphaned client whose name carries this environment's id.
            "earlier_answer_lost": lost_answer && !reused,
        }))
    }

    /// Keycloak: look up by our client id, create when absent; nothing can
    /// be orphaned, so no intent is needed beyond the record.
    async fn keycloak(
        &self,
        attempt: &Attempt<'_>,
        params: &IdpClientParams,
        settings: &KeycloakParams,
    ) -> Result<Value, StepError> {
        let redirect_uri = attempt.required(&params.redirect_uri, "redirect_uri")?;
        let admin_secret = settings.secret()?;
        let driver = settings.driver(&self.0.http, &admin_secret);
        let client_id = keycloak_client_id(&attempt.env);
        let now = attempt.ctx.now();
        attempt
            .ctx
            .store
            .begin_idp_registration(attempt.env.id, "keycloak", &attempt.client_name(), now)
            .await
            .map_err(|err| StepError::retryable(format!("recording the registration: {err}")))?;
        let client = driver
            .ensure(
                &client_id,
                &attempt.client_name(),
                std::slice::from_ref(&redirect_uri),
            )
            .await?;
        attempt
            .ctx
            .store
            .record_idp_registration(
                &attempt.keys,
                attempt.env.id,
                &client.client_id,
                None,
                &[(CLIENT_SECRET, &client.secret)],
                attempt.ctx.now(),
            )
            .await
            .map_err(secret_error)?;
        apply_secret(
            &self.0.clusters,
            &attempt.env,
            &params.secret,
            &with_hub_token(
                attempt,
                params,
                BTreeMap::from([
                    (
                        "OAUTH_CLIENT_ID".to_owned(),
                        SecretString::new(client.client_id.clone()),
                    ),
                    ("OAUTH_CLIENT_SECRET".to_owned(), client.secret),
                ]),
            )
            .await?,
        )
        .await?;
        let issuer = settings.issuer();
        Ok(json!({
            "mode": "oidc",
            "driver": "keycloak",
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/protocol/openid-connect/auth"),
            "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
            "userinfo_endpoint": format!("{issuer}/protocol/openid-connect/userinfo"),
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "secret": params.secret,
        }))
    }

    async fn local(
        &self,
        attempt: &Attempt<'_>,
        params: &IdpClientParams,
    ) -> Result<Value, StepError> {
        let password = match attempt.secret(ADMIN_PASSWORD).await? {
            Some(password) => password,
            None => {
                let password = generate_password()?;
                attempt
                    .ctx
                    .store
                    .put_secret(
                        &attempt.keys,
                        attempt.env.id,
                        ADMIN_PASSWORD,
                        &password,
                        attempt.ctx.now(),
                    )
                    .await
                    .map_err(secret_error)?;
                password
            }
        };
        apply_secret(
            &self.0.clusters,
            &attempt.env,
            &params.secret,
            &with_hub_token(
                attempt,
                params,
                BTreeMap::from([("ADMIN_PASSWORD".to_owned(), password)]),
            )
            .await?,
        )
        .await?;
        Ok(json!({
            "mode": "local",
            "secret": params.secret,
        }))
    }
}

/// `data` plus the hub's service token when `params` ask for one (see
/// [`crate::hub`]).
async fn with_hub_token(
    attempt: &Attempt<'_>,
    params: &IdpClientParams,
    mut data: BTreeMap<String, SecretString>,
) -> Result<BTreeMap<String, SecretString>, StepError> {
    if params.hub_api_token {
        let token = crate::hub::service_token(
            &attempt.ctx.store,
            &attempt.keys,
            attempt.env.id,
            attempt.ctx.now(),
        )
        .await?;
        data.insert(crate::hub::API_TOKEN_KEY.to_owned(), token);
    }
    Ok(data)
}

/// The initial access token from the environment variable `variable`.
fn initial_access_token(variable: &str) -> Result<SecretString, StepError> {
    secret_from_env(variable, "initial_access_token_env")
}

/// 32 characters from a 62-letter alphabet, about 190 bits: JupyterHub's
/// shared-password authenticator wants at least 32 for an admin password.
fn generate_password() -> Result<SecretString, StepError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| StepError::retryable(format!("no randomness for a password: {err}")))?;
    // 256 % 62 leaves a slight bias toward the first letters; 190 bits absorb it.
    let password: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(SecretString::new(password))
}
