//! The Keycloak admin REST API: the hub's OAuth client created, kept and
//! deleted in a realm by a service account.
//!
//! hubwright's admin client is a confidential client of the hubs' realm whose
//! service account holds the `realm-management` roles `manage-clients` and
//! `view-clients`. Each call takes one token (client credentials grant, HTTP
//! Basic); a token Keycloak refuses on the admin API (it lives 60 s in a
//! fresh realm) is replaced once.
//!
//! Idempotent by `clientId`: [`Keycloak::ensure`] looks the client up before
//! creating it, and a 409 on create (a concurrent attempt won) is answered by
//! looking it up again, so a retry never makes a second client. Deleting a
//! client that is gone is done.
//!
//! Errors are classed as in [`super::dcr`]: unreachable, 429 and 5xx are
//! transient; any other refusal is permanent and quotes Keycloak's
//! `errorMessage`, `error` and `error_description` verbatim. Keycloak's
//! client representations carry the client's secret and its token answers a
//! token, so no body is ever put in a message whole.

use std::collections::BTreeSet;

use hubwright_state::secrets::SecretString;
use reqwest::header::LOCATION;
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

use super::http::{ErrorBody, refusal};
use crate::step::StepError;

/// One realm of one Keycloak, reached by hubwright's admin client.
#[derive(Debug)]
pub struct Keycloak<'a> {
    /// The HTTP client.
    pub http: &'a reqwest::Client,
    /// Where Keycloak answers, e.g. `https://sso.example.org` (Keycloak ≥ 17),
    /// or `https://sso.example.org/auth` for a server with the old prefix.
    pub base_url: &'a str,
    /// The realm the hubs' clients live in; the admin client's realm too.
    pub realm: &'a str,
    /// The confidential client whose service account manages clients.
    pub admin_client_id: &'a str,
    /// Its secret.
    pub admin_client_secret: &'a SecretString,
}

/// A client as [`Keycloak::ensure`] leaves it.
#[derive(Debug, Clone)]
pub struct KeycloakClient {
    /// Keycloak's internal id (a UUID), which the admin API's paths take.
    pub id: String,
    /// The OAuth `client_id` the hub presents.
    pub client_id: String,
    /// The client's secret.
    pub secret: SecretString,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
}

/// The part of a `ClientRepresentation` hubwright reads. Its `secret` is
/// deliberately not a field: it is read from `/client-secret` only.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientBody {
    id: String,
    client_id: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

/// A `CredentialRepresentation`; `value` is absent for a public client.
#[derive(Deserialize)]
struct SecretBody {
    value: Option<String>,
}

impl Keycloak<'_> {
    /// Makes sure the realm has the confidential client `client_id` with
    /// exactly `redirect_uris`, creating it (named `name`) when absent, and
    /// returns it with its secret.
    pub async fn ensure(
        &self,
        client_id: &str,
        name: &str,
        redirect_uris: &[String],
    ) -> Result<KeycloakClient, StepError> {
        let mut admin = self.admin().await?;
        let client = match admin.find(client_id).await? {
            Some(client) => client,
            None => admin.create(client_id, name, redirect_uris).await?,
        };
        if !same_uris(&client.redirect_uris, redirect_uris)
            && !admin.put_redirects(&client, redirect_uris).await?
        {
            return Err(vanished(client_id, self.realm));
        }
        let secret = admin.secret(&client).await?;
        Ok(KeycloakClient {
            id: client.id,
            client_id: client.client_id,
            secret,
        })
    }

    /// Sets the redirect URIs of client `client_id`. False when it is gone.
    pub async fn update_redirects(
        &self,
        client_id: &str,
        redirect_uris: &[String],
    ) -> Result<bool, StepError> {
        let mut admin = self.admin().await?;
        match admin.find(client_id).await? {
            None => Ok(false),
            Some(client) if same_uris(&client.redirect_uris, redirect_uris) => Ok(true),
            Some(client) => admin.put_redirects(&client, redirect_uris).await,
        }
    }

    /// Deletes client `client_id`. False when it was already gone.
    pub async fn delete(&self, client_id: &str) -> Result<bool, StepError> {
        let mut admin = self.admin().await?;
        let Some(client) = admin.find(client_id).await? else {
            return Ok(false);
        };
        let url = admin.client_url(&client.id, &[])?;
        let response = admin
            .call("delete the client", |http| http.delete(url.clone()))
            .await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(admin.refused("delete the client", response).await),
        }
    }

    /// A session with a fresh admin token.
    async fn admin(&self) -> Result<Admin<'_, '_>, StepError> {
        let token = self.token().await?;
        Ok(Admin {
            keycloak: self,
            token,
        })
    }

    /// A token for the admin client by the client credentials grant.
    async fn token(&self) -> Result<SecretString, StepError> {
        let url = self.url(&["realms", self.realm, "protocol", "openid-connect", "token"])?;
        // RFC 6749 §2.3.1: the credentials are form-encoded before Basic.
        let request = self
            .http
            .post(url)
            .basic_auth(
                form_encode(self.admin_client_id),
                Some(form_encode(self.admin_client_secret.expose())),
            )
            .form(&[("grant_type", "client_credentials")]);
        let what = "issue an admin token";
        let response = hubwright_telemetry::client::send(request, "identity-provider", what)
            .await
            .map_err(|err| self.unreachable(what, &err))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            let said = ErrorBody::read(response).await.said(status);
            return Err(StepError::permanent(format!(
                "Keycloak refused hubwright's admin client credentials (client {} in realm {} at {}): {said}; check the admin client's id and secret",
                self.admin_client_id, self.realm, self.base_url
            ))
            .with_detail(self.detail(status)));
        }
        if !status.is_success() {
            return Err(self.refused(what, response).await);
        }
        let body: TokenBody = response.json().await.map_err(|_| {
            StepError::retryable(format!(
                "Keycloak {}'s answer to the admin token request is not a token response",
                self.base_url
            ))
        })?;
        Ok(SecretString::new(body.access_token))
    }

    /// `{base_url}/{segments...}`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<Url, StepError> {
        let invalid = || {
            StepError::permanent(format!(
                "the Keycloak base URL `{}` is not an http(s) URL",
                self.base_url
            ))
        };
        let mut url = Url::parse(self.base_url).map_err(|_| invalid())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid());
        }
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| invalid())?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn detail(&self, status: StatusCode) -> serde_json::Value {
        json!({ "keycloak": self.base_url, "realm": self.realm, "status": status.as_u16() })
    }

    fn unreachable(&self, what: &str, err: &reqwest::Error) -> StepError {
        StepError::retryable(format!(
            "cannot reach Keycloak {} to {what}: {err}",
            self.base_url
        ))
        .with_detail(json!({ "keycloak": self.base_url, "realm": self.realm, "status": 0 }))
    }

    /// The error for a refusal: Keycloak's words, classed by status.
    async fn refused(&self, what: &str, response: Response) -> StepError {
        let status = response.status();
        let headers = response.headers().clone();
        let said = ErrorBody::read(response).await.said(status);
        let hint = if status == StatusCode::FORBIDDEN {
            format!(
                "; the service account of {} needs the realm-management roles manage-clients and view-clients",
                self.admin_client_id
            )
        } else {
            String::new()
        };
        refusal(
            status,
            &headers,
            format!(
                "Keycloak {} answered {} to {what} in realm {}: {said}{hint}",
                self.base_url,
                status.as_u16(),
                self.realm
            ),
        )
        .with_detail(self.detail(status))
    }
}

/// One call's worth of admin API requests under one token.
struct Admin<'k, 'a> {
    keycloak: &'k Keycloak<'a>,
    token: SecretString,
}

impl Admin<'_, '_> {
    /// `{base}/admin/realms/{realm}/clients[/{id}[/{rest...}]]`.
    fn clients_url(&self) -> Result<Url, StepError> {
        self.keycloak
            .url(&["admin", "realms", self.keycloak.realm, "clients"])
    }

    fn client_url(&self, id: &str, rest: &[&str]) -> Result<Url, StepError> {
        let mut url = self.clients_url()?;
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(id).extend(rest);
        }
        Ok(url)
    }

    /// Sends the request `build` makes with the admin token. A 401 means the
    /// token is no longer good (expired, or the session was revoked): the
    /// request is sent once more with a fresh one, and a second 401 is
    /// permanent. Any other status is the caller's to read.
    async fn call(
        &mut self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, StepError> {
        let keycloak = self.keycloak;
        let mut refreshed = false;
        loop {
            let request = build(keycloak.http).bearer_auth(self.token.expose());
            let response = hubwright_telemetry::client::send(request, "identity-provider", what)
                .await
                .map_err(|err| keycloak.unreachable(what, &err))?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if refreshed {
                let status = response.status();
                let said = ErrorBody::read(response).await.said(status);
                return Err(StepError::permanent(format!(
                    "Keycloak {} refused the admin token it had just issued, to {what} in realm {}: {said}; is {} the address Keycloak issues its tokens for?",
                    keycloak.base_url, keycloak.realm, keycloak.base_url
                ))
                .with_detail(keycloak.detail(status)));
            }
            self.token = keycloak.token().await?;
            refreshed = true;
        }
    }

    async fn refused(&self, what: &str, response: Response) -> StepError {
        self.keycloak.refused(what, response).await
    }

    /// The client whose `clientId` is `client_id`, if the realm has it.
    async fn find(&mut self, client_id: &str) -> Result<Option<ClientBody>, StepError> {
        let what = "look the client up";
        let mut url = self.clients_url()?;
        url.query_pairs_mut().append_pair("clientId", client_id);
        let response = self.call(what, |http| http.get(url.clone())).await?;
        if !response.status().is_success() {
            return Err(self.refused(what, response).await);
        }
        let clients: Vec<ClientBody> = response.json().await.map_err(|_| {
            StepError::retryable(format!(
                "Keycloak {}'s answer to the lookup of client {client_id} is not a list of clients",
                self.keycloak.base_url
            ))
        })?;
        // The query is an exact match; the filter guards against a server that searches.
        Ok(clients
            .into_iter()
            .find(|client| client.client_id == client_id))
    }

    /// Creates the client; on 409 (a concurrent attempt created it) finds it.
    async fn create(
        &mut self,
        client_id: &str,
        name: &str,
        redirect_uris: &[String],
    ) -> Result<ClientBody, StepError> {
        let what = "create the client";
        let url = self.clients_url()?;
        let representation = json!({
            "clientId": client_id,
            "name": name,
            "protocol": "openid-connect",
            "enabled": true,
            "publicClient": false,
            "clientAuthenticatorType": "client-secret",
            "standardFlowEnabled": true,
            "implicitFlowEnabled": false,
            "directAccessGrantsEnabled": false,
            "serviceAccountsEnabled": false,
            "redirectUris": redirect_uris,
            "webOrigins": ["+"],
            // After logout the hub may send users to any of its redirect URIs.
            "attributes": { "post.logout.redirect.uris": "+" },
        });
        let response = self
            .call(what, |http| http.post(url.clone()).json(&representation))
            .await?;
        let status = response.status();
        if status == StatusCode::CONFLICT {
            return self.find(client_id).await?.ok_or_else(|| {
                StepError::retryable(format!(
                    "Keycloak said client {client_id} already exists in realm {} but does not list it",
                    self.keycloak.realm
                ))
            });
        }
        if !status.is_success() {
            return Err(self.refused(what, response).await);
        }
        let id = response
            .headers()
            .get(LOCATION)
            .and_then(|location| location.to_str().ok())
            .and_then(|location| location.trim_end_matches('/').rsplit('/').next())
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        match id {
            Some(id) => Ok(ClientBody {
                id,
                client_id: client_id.to_owned(),
                redirect_uris: redirect_uris.to_vec(),
            }),
            // No Location: the client exists all the same; find its id.
            None => self.find(client_id).await?.ok_or_else(|| {
                StepError::retryable(format!(
                    "Keycloak created client {client_id} in realm {} but does not list it",
                    self.keycloak.realm
                ))
            }),
        }
    }

    /// Replaces the client's redirect URIs (Keycloak's PUT changes only the
    /// fields sent). False when the client is gone.
    async fn put_redirects(
        &mut self,
        client: &ClientBody,
        redirect_uris: &[String],
    ) -> Result<bool, StepError> {
        let what = "update the client's redirect URIs";
        let url = self.client_url(&client.id, &[])?;
        let body = json!({ "clientId": client.client_id, "redirectUris": redirect_uris });
        let response = self
            .call(what, |http| http.put(url.clone()).json(&body))
            .await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.refused(what, response).await),
        }
    }

    /// The client's secret.
    async fn secret(&mut self, client: &ClientBody) -> Result<SecretString, StepError> {
        let what = "read the client's secret";
        let url = self.client_url(&client.id, &["client-secret"])?;
        let response = self.call(what, |http| http.get(url.clone())).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(vanished(&client.client_id, self.keycloak.realm));
        }
        if !status.is_success() {
            return Err(self.refused(what, response).await);
        }
        let body: SecretBody = response.json().await.map_err(|_| {
            StepError::retryable(format!(
                "Keycloak {}'s answer for the secret of client {} is not a credential",
                self.keycloak.base_url, client.client_id
            ))
        })?;
        body.value
            .filter(|value| !value.is_empty())
            .map(SecretString::new)
            .ok_or_else(|| {
                StepError::permanent(format!(
                    "client {} in realm {} has no secret: it is public or authenticates otherwise; the hub needs a confidential client (client-secret)",
                    client.client_id, self.keycloak.realm
                ))
            })
    }
}

/// A client deleted while this call was using it: the next attempt recreates it.
fn vanished(client_id: &str, realm: &str) -> StepError {
    StepError::retryable(format!(
        "client {client_id} disappeared from realm {realm} while hubwright was setting it up"
    ))
}

/// Whether two lists of redirect URIs hold the same URIs.
fn same_uris(have: &[String], want: &[String]) -> bool {
    have.iter().collect::<BTreeSet<_>>() == want.iter().collect::<BTreeSet<_>>()
}

/// `application/x-www-form-urlencoded` for one value, as RFC 6749 §2.3.1
/// asks of Basic credentials.
fn form_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'*') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_keeps_safe_characters_and_escapes_the_rest() {
        assert_eq!(form_encode("hub-admin_1.x*"), "hub-admin_1.x*");
        assert_eq!(form_encode("a b+c%d:é"), "a%20b%2Bc%25d%3A%C3%A9");
    }

    #[test]
    fn redirect_uris_compare_as_sets() {
        let a = vec!["https://a/cb".to_owned(), "https://b/cb".to_owned()];
        let b = vec!["https://b/cb".to_owned(), "https://a/cb".to_owned()];
        assert!(same_uris(&a, &b));
        assert!(!same_uris(&a, &b[..1]));
    }

    #[test]
    fn urls_accept_a_base_with_or_without_the_auth_prefix() {
        let secret = SecretString::new("s");
        let http = crate::http::client();
        for (base, want) in [
            (
                "https://sso.example.org",
                "https://sso.example.org/admin/realms/r%20x/clients",
            ),
            (
                "https://sso.example.org/",
                "https://sso.example.org/admin/realms/r%20x/clients",
            ),
            (
                "https://sso.example.org/auth/",
                "https://sso.example.org/auth/admin/realms/r%20x/clients",
            ),
        ] {
            let keycloak = Keycloak {
                http: &http,
                base_url: base,
                realm: "r x",
                admin_client_id: "a",
                admin_client_secret: &secret,
            };
            let url = keycloak.url(&["admin", "realms", "r x", "clients"]);
            assert_eq!(url.map(String::from).ok().as_deref(), Some(want));
        }
    }
}
