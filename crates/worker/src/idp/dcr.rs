//! OpenID Connect Dynamic Client Registration: RFC 7591 to register, RFC 7592
//! to read, update and delete with the registration access token.
//!
//! Errors are classified here: unreachable, 429 and 5xx are transient; any
//! other refusal is permanent and carries the provider's `error` and
//! `error_description` verbatim. Response bodies are never put in messages
//! whole: a registration answer carries secrets.

use hubwright_state::secrets::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{ErrorBody, refusal};
use crate::step::StepError;

/// What the provider answered to a registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The client's id (not a secret).
    pub client_id: String,
    /// The client's secret.
    pub client_secret: SecretString,
    /// RFC 7592: the token that manages this registration.
    pub registration_access_token: Option<SecretString>,
    /// RFC 7592: where this registration is managed.
    pub registration_client_uri: Option<String>,
}

#[derive(Deserialize)]
struct RegistrationBody {
    client_id: String,
    client_secret: Option<String>,
    registration_access_token: Option<String>,
    registration_client_uri: Option<String>,
}

/// The parts of the provider's discovery document hubwright uses; the
/// endpoints go to the hub's authenticator configuration.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Discovery {
    /// RFC 7591 registration endpoint.
    #[serde(default, skip_serializing)]
    pub registration_endpoint: Option<String>,
    /// Where users are sent to log in.
    pub authorization_endpoint: String,
    /// Where the hub trades a code for tokens.
    pub token_endpoint: String,
    /// Where the hub reads who logged in.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// One provider, reached with a shared HTTP client.
#[derive(Debug)]
pub struct Provider<'a> {
    /// The HTTP client.
    pub http: &'a reqwest::Client,
    /// The issuer URL (discovery is under it).
    pub issuer: &'a str,
}

impl Provider<'_> {
    /// The provider's discovery document.
    pub async fn discover(&self) -> Result<Discovery, StepError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let response = self
            .send("read the discovery document", self.http.get(&url))
            .await?;
        response.json().await.map_err(|err| {
            StepError::retryable(format!(
                "the identity provider's discovery document at {url} is not one: {err}"
            ))
        })
    }

    /// The registration endpoint from `discovery`.
    pub fn registration_endpoint(&self, discovery: &Discovery) -> Result<String, StepError> {
        discovery.registration_endpoint.clone().ok_or_else(|| {
            StepError::permanent(format!(
                "the identity provider {} does not offer dynamic client registration (no registration_endpoint in its discovery document)",
                self.issuer
            ))
        })
    }

    /// RFC 7591: registers a client with `metadata`.
    pub async fn register(
        &self,
        endpoint: &str,
        metadata: &Value,
        initial_access_token: Option<&SecretString>,
    ) -> Result<Registration, StepError> {
        let mut request = self.http.post(endpoint).json(metadata);
        if let Some(token) = initial_access_token {
            request = request.bearer_auth(token.expose());
        }
        let response = self.send("register a client", request).await?;
        let body: RegistrationBody = response.json().await.map_err(|_| {
            StepError::retryable(format!(
                "the identity provider's answer to the registration at {endpoint} is not a client registration"
            ))
        })?;
        let client_secret = body.client_secret.ok_or_else(|| {
            StepError::permanent(format!(
                "the identity provider registered client {} without a client_secret; the hub needs one (token_endpoint_auth_method client_secret_basic)",
                body.client_id
            ))
        })?;
        Ok(Registration {
            client_id: body.client_id,
            client_secret: SecretString::new(client_secret),
            registration_access_token: body.registration_access_token.map(SecretString::new),
            registration_client_uri: body.registration_client_uri,
        })
    }

    /// RFC 7592 read: whether the provider still has the client. A client that
    /// is gone answers 401 (RFC 7592 §2.1) or 404.
    pub async fn exists(&self, uri: &str, token: &SecretString) -> Result<bool, StepError> {
        self.managed(
            "read the client",
            self.http.get(uri).bearer_auth(token.expose()),
        )
        .await
    }

    /// RFC 7592 update: replaces the client's metadata (which must carry its
    /// `client_id`). False when the client is gone.
    pub async fn update(
        &self,
        uri: &str,
        token: &SecretString,
        metadata: &Value,
    ) -> Result<bool, StepError> {
        self.managed(
            "update the client",
            self.http
                .put(uri)
                .bearer_auth(token.expose())
                .json(metadata),
        )
        .await
    }

    /// RFC 7592 delete. False when it was already gone.
    pub async fn delete(&self, uri: &str, token: &SecretString) -> Result<bool, StepError> {
        self.managed(
            "delete the client",
            self.http.delete(uri).bearer_auth(token.expose()),
        )
        .await
    }

    /// A call on a registration: 401 and 404 mean the client is gone.
    async fn managed(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<bool, StepError> {
        match self.send(what, request).await {
            Ok(_) => Ok(true),
            Err(error) if gone(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StepError> {
        let sent = hubwright_telemetry::client::send(request, "identity-provider", what);
        let response = sent.await.map_err(|err| {
            StepError::retryable(format!(
                "cannot reach the identity provider {} to {what}: {err}",
                self.issuer
            ))
            .with_detail(json!({ "issuer": self.issuer, "status": 0 }))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let said = ErrorBody::read(response).await.said(status);
        let message = format!(
            "the identity provider {} answered {} to {what}: {said}",
            self.issuer,
            status.as_u16()
        );
        let detail = json!({ "issuer": self.issuer, "status": status.as_u16() });
        let error = refusal(status, &headers, message);
        Err(error.with_detail(detail))
    }
}

/// Whether `error` says the registration no longer exists.
fn gone(error: &StepError) -> bool {
    error
        .detail
        .as_ref()
        .and_then(|detail| detail.get("status"))
        .and_then(Value::as_u64)
        .is_some_and(|status| status == 401 || status == 404)
}
