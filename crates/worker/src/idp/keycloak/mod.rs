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

use hubwright_state::secrets::SecretString;
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

use super::http::{ErrorBody, refusal};
use crate::step::StepError;

mod admin;

use admin::{Admin, same_uris, vanished};

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
    fn urls_accept_a_base_with_or_without_the_auth_prefix() {
        let secret = SecretString::new("s");
        let http = hubwright_http::client();
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
