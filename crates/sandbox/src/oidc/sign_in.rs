//! Signing a user in at the provider as a portal would: a registered
//! confidential client, the authorization code flow through the provider's
//! development login and consent pages, and the code exchanged for tokens.

use reqwest::Url;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use super::OidcProvider;
use crate::other;

/// A confidential client registered for [`OidcProvider::sign_in`].
#[derive(Debug, Clone)]
pub struct Client {
    /// `client_id`, the `aud` of its ID tokens.
    pub id: String,
    /// `client_secret`.
    pub secret: String,
    /// Where the provider sends the code; nothing listens there (the
    /// sign-in stops at the redirect).
    pub redirect_uri: String,
}

impl OidcProvider {
    /// Registers a confidential client by Dynamic Client Registration.
    pub async fn register_client(&self, name: &str) -> std::io::Result<Client> {
        self.register_client_for(name, "http://127.0.0.1:9/callback")
            .await
    }

    /// Registers a confidential client whose code goes to `redirect_uri`
    /// (a web console's callback).
    pub async fn register_client_for(
        &self,
        name: &str,
        redirect_uri: &str,
    ) -> std::io::Result<Client> {
        let redirect_uri = redirect_uri.to_owned();
        let mut request = hubwright_http::client()
            .post(self.registration_endpoint())
            .json(&json!({
                "client_name": name,
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }));
        if let Some(token) = self.initial_access_token() {
            request = request.bearer_auth(token);
        }
        let answer: Value = request
            .send()
            .await
            .map_err(|err| other("registering a client", err))?
            .error_for_status()
            .map_err(|err| other("registering a client", err))?
            .json()
            .await
            .map_err(|err| other("registering a client", err))?;
        let field = |name: &str| {
            answer[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| other("the registration", format!("has no {name}")))
        };
        Ok(Client {
            id: field("client_id")?,
            secret: field("client_secret")?,
            redirect_uri,
        })
    }

    /// Signs `username` in for `client` with `scope` (e.g. `openid profile
    /// groups`): what the token endpoint answered (`id_token`,
    /// `access_token`, ...).
    pub async fn sign_in(
        &self,
        client: &Client,
        username: &str,
        scope: &str,
    ) -> std::io::Result<Value> {
        let discovery: Value = hubwright_http::client()
            .get(self.discovery_url())
            .send()
            .await
            .map_err(|err| other("discovery", err))?
            .json()
            .await
            .map_err(|err| other("discovery", err))?;
        let endpoint = |name: &str| {
            discovery[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| other("discovery", format!("has no {name}")))
        };
        let authorization = Url::parse_with_params(
            &endpoint("authorization_endpoint")?,
            &[
                ("client_id", client.id.as_str()),
                ("redirect_uri", client.redirect_uri.as_str()),
                ("response_type", "code"),
                ("scope", scope),
                ("state", "hubwright"),
                ("nonce", "hubwright"),
            ],
        )
        .map_err(|err| other("the authorization URL", err))?;
        let callback = self.log_in_at(authorization, username).await?;
        let code = callback
            .query_pairs()
            .find(|(key, _)| key == "code")
            .map(|(_, code)| code.into_owned())
            .ok_or_else(|| other("the callback", callback.as_str()))?;
        hubwright_http::client()
            .post(endpoint("token_endpoint")?)
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", client.redirect_uri.as_str()),
            ])
            .send()
            .await
            .map_err(|err| other("the token endpoint", err))?
            .error_for_status()
            .map_err(|err| other("the token endpoint", err))?
            .json()
            .await
            .map_err(|err| other("the token endpoint", err))
    }

    /// Follows the provider's pages from `authorization` (its authorization
    /// endpoint with a client's query) as a browser would, answering the
    /// development login and consent forms as `username`, until a redirect
    /// leaves the provider: that URL, the client's callback with its `code`,
    /// `state` and `iss`. The provider's cookies are kept here; the client's
    /// own are the caller's.
    pub async fn log_in_at(&self, authorization: Url, username: &str) -> std::io::Result<Url> {
        let http = hubwright_http::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| other("an HTTP client", err))?;
        let provider = Url::parse(self.issuer())
            .map_err(|err| other("the issuer", err))?
            .origin();
        let mut cookies: Vec<String> = Vec::new();
        let mut next = authorization;
        // auth -> login form -> resume -> consent -> resume -> callback.
        for _ in 0..10 {
            let response = http
                .get(next.clone())
                .header(COOKIE, cookies.join("; "))
                .send()
                .await
                .map_err(|err| other("the sign-in pages", err))?;
            keep_cookies(&response, &mut cookies);
            let response = if response.status().is_success() {
                // A login or consent form: answer it as the user would.
                let form = response.text().await.unwrap_or_default();
                let prompt = if form.contains("name=\"login\"") {
                    "login"
                } else {
                    "consent"
                };
                let action = form
                    .split("action=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .ok_or_else(|| other("the sign-in page", "has no form"))?
                    .replace("&#x2F;", "/");
                let posted = http
                    .post(next.join(&action).map_err(|err| other("the form", err))?)
                    .header(COOKIE, cookies.join("; "))
                    .form(&[("login", username), ("password", "any"), ("prompt", prompt)])
                    .send()
                    .await
                    .map_err(|err| other("the sign-in form", err))?;
                keep_cookies(&posted, &mut cookies);
                posted
            } else {
                response
            };
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| other("the sign-in", format!("stopped at {}", response.status())))?;
            next = next
                .join(location)
                .map_err(|err| other("a redirect", err))?;
            if next.origin() != provider {
                return Ok(next);
            }
        }
        Err(other("the sign-in", "did not leave the provider"))
    }
}

/// Keeps each `Set-Cookie`'s `name=value`, replacing an older one of the name.
fn keep_cookies(response: &reqwest::Response, cookies: &mut Vec<String>) {
    for header in response.headers().get_all(SET_COOKIE) {
        let Some(pair) = header.to_str().ok().and_then(|h| h.split(';').next()) else {
            continue;
        };
        let name = pair.split('=').next().unwrap_or_default().to_owned();
        cookies.retain(|c| !c.starts_with(&format!("{name}=")));
        cookies.push(pair.to_owned());
    }
}
