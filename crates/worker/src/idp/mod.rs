//! `idp-client`, `idp-client-update` and `idp-client-delete`: the hub's OAuth
//! client at the organisation's identity provider, and the Kubernetes Secret
//! the hub reads its credentials from.
//!
//! Modes: `oidc` registers a client by OpenID Connect Dynamic Client
//! Registration ([`dcr`]); `local` uses no provider and gives the hub a
//! generated admin password. Every credential is sealed in Postgres
//! (`HUBWRIGHT_SECRET_KEY`) and leaves hubwright only into the Secret.
//!
//! Crash safety: the intent to register is committed before the provider is
//! called and the answer right after it returns, so the only window in which a
//! client can be orphaned is the provider's own round trip. RFC 7591 offers no
//! lookup by name, so such a client cannot be found again; its `client_name`
//! carries the environment id, and the next attempt says on the timeline that
//! one may exist (docs/decisions/0005).

pub mod dcr;
mod http;
pub mod keycloak;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::model::Environment;
use hubwright_state::secrets::{SecretKeys, SecretString};
use hubwright_state::store::secrets::{IdpClient, IdpClientState, SecretError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::kubernetes::{ClusterClients, apply_secret};
use crate::registry::Registry;
use crate::step::{Outcome, Step, StepContext, StepError};
use crate::values::{environment_values, fill};

/// Sealed secret names, per environment.
const CLIENT_SECRET: &str = "idp-client-secret";
const REGISTRATION_TOKEN: &str = "idp-registration-access-token";
const ADMIN_PASSWORD: &str = "local-admin-password";

/// How long one call to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the three kinds share: cluster clients, the secret keys, one HTTP client.
#[derive(Debug)]
pub struct IdpShared {
    clusters: Arc<ClusterClients>,
    keys: Option<Arc<SecretKeys>>,
    http: reqwest::Client,
}

/// Registers `idp-client`, `idp-client-update` and `idp-client-delete`.
/// Without `keys` they fail permanently, saying the key is not configured.
pub fn register(
    registry: &mut Registry,
    clusters: &Arc<ClusterClients>,
    keys: Option<Arc<SecretKeys>>,
) {
    let http = reqwest::Client::builder()
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .unwrap_or_default();
    let shared = Arc::new(IdpShared {
        clusters: Arc::clone(clusters),
        keys,
        http,
    });
    registry
        .register(IdpClientStep(Arc::clone(&shared)))
        .register(IdpClientUpdateStep(Arc::clone(&shared)))
        .register(IdpClientDeleteStep(shared));
}

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
}

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
    fn issuer(&self) -> String {
        format!("{}/realms/{}", self.url.trim_end_matches('/'), self.realm)
    }

    fn secret(&self) -> Result<SecretString, StepError> {
        secret_from_env(
            &self.admin_client_secret_env,
            "keycloak.admin_client_secret_env",
        )
    }

    fn driver<'a>(
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
fn keycloak_client_id(env: &Environment) -> String {
    format!("hubwright-{}", env.id)
}

fn default_mode() -> String {
    "oidc".to_owned()
}

/// The Secret in the hub's namespace that `idp-client` writes by default.
pub const DEFAULT_SECRET: &str = "hubwright-oauth";

fn default_secret() -> String {
    DEFAULT_SECRET.to_owned()
}

/// `idp-client`: registers the hub's OAuth client (or makes a local admin
/// password) and writes the hub's Secret.
#[derive(Debug, Clone)]
pub struct IdpClientStep(Arc<IdpShared>);

impl Step for IdpClientStep {
    const KIND: &'static str = "idp-client";
    type Params = IdpClientParams;

    async fn run(&self, ctx: &StepContext, params: IdpClientParams) -> Outcome {
        self.execute(ctx, &params).await.into()
    }
}

/// Everything an attempt needs, resolved once.
struct Attempt<'a> {
    shared: &'a IdpShared,
    ctx: &'a StepContext,
    env: Environment,
    values: Value,
    keys: Arc<SecretKeys>,
}

impl<'a> Attempt<'a> {
    async fn new(shared: &'a IdpShared, ctx: &'a StepContext) -> Result<Self, StepError> {
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

    fn fill(&self, text: &str, place: &str) -> Result<String, StepError> {
        fill(text, &self.values, place)
    }

    fn required(&self, value: &Option<String>, place: &str) -> Result<String, StepError> {
        match value {
            Some(text) => self.fill(text, place),
            None => Err(StepError::permanent(format!(
                "with.{place} is required in mode oidc"
            ))),
        }
    }

    fn provider<'p>(&'p self, issuer: &'p str) -> dcr::Provider<'p> {
        dcr::Provider {
            http: &self.shared.http,
            issuer,
        }
    }

    async fn record(&self) -> Result<Option<IdpClient>, StepError> {
        self.ctx
            .store
            .idp_client(self.env.id)
            .await
            .map_err(|err| StepError::retryable(format!("reading the IdP client record: {err}")))
    }

    async fn secret(&self, name: &str) -> Result<Option<SecretString>, StepError> {
        self.ctx
            .store
            .secret(&self.keys, self.env.id, name)
            .await
            .map_err(secret_error)
    }

    /// The client's name at the provider. The environment id makes an
    /// orphaned registration recognisable.
    fn client_name(&self) -> String {
        format!(
            "hubwright {} of {} ({})",
            self.env.name, self.env.owner, self.env.id
        )
    }

    /// The metadata hubwright registers: a confidential web client of the hub.
    fn metadata(&self, redirect_uri: &str) -> Value {
        json!({
            "client_name": self.client_name(),
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        })
    }
}

fn secret_error(err: SecretError) -> StepError {
    match err {
        SecretError::State(err) => StepError::retryable(format!("reading sealed secrets: {err}")),
        // A key that cannot open the row will not open it on the next attempt.
        other => StepError::permanent(other.to_string()),
    }
}

impl IdpClientStep {
    async fn execute(
        &self,
        ctx: &StepContext,
        params: &IdpClientParams,
    ) -> Result<Value, StepError> {
        let attempt = Attempt::new(&self.0, ctx).await?;
        let mode = attempt.fill(&params.mode, "mode")?;
        match mode.as_str() {
            "oidc" => self.oidc(&attempt, params).await,
            "local" => self.local(&attempt, params).await,
            other => Err(StepError::permanent(format!(
                "with.mode: `{other}` is neither `oidc` nor `local`"
            ))),
        }
    }

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
            &BTreeMap::from([
                (
                    "OAUTH_CLIENT_ID".to_owned(),
                    SecretString::new(client_id.clone()),
                ),
                ("OAUTH_CLIENT_SECRET".to_owned(), client_secret),
            ]),
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
            &BTreeMap::from([
                (
                    "OAUTH_CLIENT_ID".to_owned(),
                    SecretString::new(client.client_id.clone()),
                ),
                ("OAUTH_CLIENT_SECRET".to_owned(), client.secret),
            ]),
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
            &BTreeMap::from([("ADMIN_PASSWORD".to_owned(), password)]),
        )
        .await?;
        Ok(json!({ "mode": "local", "secret": params.secret }))
    }
}

/// The initial access token from the environment variable `variable`.
fn initial_access_token(variable: &str) -> Result<SecretString, StepError> {
    secret_from_env(variable, "initial_access_token_env")
}

/// A secret from the worker's environment variable `variable`, named in `with.<place>`.
fn secret_from_env(variable: &str, place: &str) -> Result<SecretString, StepError> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => Ok(SecretString::new(value.trim())),
        _ => Err(StepError::permanent(format!(
            "with.{place} names {variable}, which is not set on this worker"
        ))),
    }
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
pub struct IdpClientUpdateStep(Arc<IdpShared>);

impl Step for IdpClientUpdateStep {
    const KIND: &'static str = "idp-client-update";
    type Params = IdpClientUpdateParams;

    async fn run(&self, ctx: &StepContext, params: IdpClientUpdateParams) -> Outcome {
        self.execute(ctx, &params).await.into()
    }
}

impl IdpClientUpdateStep {
    async fn execute(
        &self,
        ctx: &StepContext,
        params: &IdpClientUpdateParams,
    ) -> Result<Value, StepError> {
        let attempt = Attempt::new(&self.0, ctx).await?;
        let values = crate::values::with_outputs(attempt.values.clone(), &ctx.outputs().await?);
        let redirect_uri = fill(&params.redirect_uri, &values, "redirect_uri")?;
        let Some(record) = attempt.record().await? else {
            return Ok(json!({ "updated": false, "reason": "no OAuth client (mode local)" }));
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
            return Ok(
                json!({ "updated": true, "client_id": client_id, "redirect_uri": redirect_uri }),
            );
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
        Ok(json!({ "updated": true, "client_id": client_id, "redirect_uri": redirect_uri }))
    }
}

/// `idp-client-delete`: deletes the OAuth client at the provider and forgets
/// its credentials. Already gone (401 or 404) is done.
#[derive(Debug, Clone)]
pub struct IdpClientDeleteStep(Arc<IdpShared>);

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

    async fn run(&self, ctx: &StepContext, params: IdpClientDeleteParams) -> Outcome {
        self.execute(ctx, &params).await.into()
    }
}

/// The Keycloak settings a follow-up step needs for a Keycloak-made client.
fn keycloak_settings<'a>(
    settings: Option<&'a KeycloakParams>,
    kind: &str,
) -> Result<&'a KeycloakParams, StepError> {
    settings.ok_or_else(|| {
        StepError::permanent(format!(
            "the OAuth client was made through Keycloak; give {kind} the same `keycloak:` block as idp-client"
        ))
    })
}

impl IdpClientDeleteStep {
    async fn execute(
        &self,
        ctx: &StepContext,
        params: &IdpClientDeleteParams,
    ) -> Result<Value, StepError> {
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
        Ok(json!({
            "deleted_at_provider": deleted_at_provider,
            "client_id": record.and_then(|record| record.client_id),
        }))
    }
}
