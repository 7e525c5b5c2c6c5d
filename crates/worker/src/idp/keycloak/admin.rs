//! The calls under one admin token: find, create, update and delete a
//! client, and read its secret.

use std::collections::BTreeSet;

use hubwright_state::secrets::SecretString;
use reqwest::header::LOCATION;
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

use super::Keycloak;
use crate::idp::http::ErrorBody;
use crate::step::StepError;

/// The part of a `ClientRepresentation` hubwright reads. Its `secret` is
/// deliberately not a field: it is read from `/client-secret` only.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ClientBody {
    pub(super) id: String,
    pub(super) client_id: String,
    #[serde(default)]
    pub(super) redirect_uris: Vec<String>,
}

/// A `CredentialRepresentation`; `value` is absent for a public client.
#[derive(Deserialize)]
struct SecretBody {
    value: Option<String>,
}

/// One call's worth of admin API requests under one token.
pub(super) struct Admin<'k, 'a> {
    pub(super) keycloak: &'k Keycloak<'a>,
    pub(super) token: SecretString,
}

impl Admin<'_, '_> {
    /// `{base}/admin/realms/{realm}/clients[/{id}[/{rest...}]]`.
    pub(super) fn clients_url(&self) -> Result<Url, StepError> {
        self.keycloak
            .url(&["admin", "realms", self.keycloak.realm, "clients"])
    }

    pub(super) fn client_url(&self, id: &str, rest: &[&str]) -> Result<Url, StepError> {
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
    pub(super) async fn call(
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

    pub(super) async fn refused(&self, what: &str, response: Response) -> StepError {
        self.keycloak.refused(what, response).await
    }

    /// The client whose `clientId` is `client_id`, if the realm has it.
    pub(super) async fn find(&mut self, client_id: &str) -> Result<Option<ClientBody>, StepError> {
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
    pub(super) async fn create(
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
    pub(super) async fn put_redirects(
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
    pub(super) async fn secret(&mut self, client: &ClientBody) -> Result<SecretString, StepError> {
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
pub(super) fn vanished(client_id: &str, realm: &str) -> StepError {
    StepError::retryable(format!(
        "client {client_id} disappeared from realm {realm} while hubwright was setting it up"
    ))
}

/// Whether two lists of redirect URIs hold the same URIs.
pub(super) fn same_uris(have: &[String], want: &[String]) -> bool {
    have.iter().collect::<BTreeSet<_>>() == want.iter().collect::<BTreeSet<_>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_compare_as_sets() {
        let a = vec!["https://a/cb".to_owned(), "https://b/cb".to_owned()];
        let b = vec!["https://b/cb".to_owned(), "https://a/cb".to_owned()];
        assert!(same_uris(&a, &b));
        assert!(!same_uris(&a, &b[..1]));
    }
}
