//! Sign-in through the organisation's OpenID provider: the authorization
//! code flow with PKCE (S256), a one-time `state` and a `nonce`; the ID token
//! verified by the API's own verifier for the console's client id.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use chrono::{DateTime, TimeDelta};
use hubwright_api::Problem;
use hubwright_api::oidc::Rejected;
use hubwright_state::store::console::{PendingSignIn, SessionAuth, new_secret};
use hubwright_state::subjects;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Next, next_or_home, open_session, sign_in_page, ttl};
use crate::Console;
use crate::pages::PageError;

/// How long a sign-in at the provider may take, redirect to callback.
const SIGN_IN_WINDOW: TimeDelta = TimeDelta::minutes(10);

/// The provider's endpoints the console uses.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorization: String,
    /// Where the code is exchanged for tokens.
    pub token: String,
    /// Where the browser may be sent to sign out at the provider too.
    pub end_session: Option<String>,
}

/// The provider's endpoints, read from its discovery document once.
async fn endpoints(console: &Console) -> Result<&Endpoints, PageError> {
    let oidc = console.app.oidc.as_ref().ok_or_else(no_provider)?;
    console
        .provider
        .get_or_try_init(|| async {
            let document = oidc.discovery().await.map_err(|err| match err {
                Rejected::Provider(why) | Rejected::Token(why) => {
                    tracing::warn!(%why, "console: reading the provider's discovery document");
                    PageError::Unavailable("the sign-in provider cannot be reached; try again in a moment".to_owned())
                }
            })?;
            let field = |name: &str| document.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            match (field("authorization_endpoint"), field("token_endpoint")) {
                (Some(authorization), Some(token)) => Ok(Endpoints {
                    authorization,
                    token,
                    end_session: field("end_session_endpoint"),
                }),
                _ => Err(PageError::Unavailable(
                    "the sign-in provider's discovery document names no authorization or token endpoint".to_owned(),
                )),
            }
        })
        .await
}

fn no_provider() -> PageError {
    PageError::NotFound("this console has no sign-in provider; sign in with a token".to_owned())
}

/// Where the provider sends the browser back.
fn redirect_uri(console: &Console, headers: &HeaderMap) -> String {
    let base = console.config.public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    format!("{}/sign-in/callback", base.trim_end_matches('/'))
}

/// Sends the browser to the provider with a fresh state, nonce and PKCE
/// challenge.
pub(super) async fn start(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Result<Response, PageError> {
    let client = console.config.oidc.as_ref().ok_or_else(no_provider)?;
    let endpoints = endpoints(&console).await?;
    let random = || new_secret().map_err(Problem::from);
    let (state, verifier, nonce) = (random()?, random()?, random()?);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let now = console.app.clock.now();
    let pending = PendingSignIn {
        verifier,
        nonce: nonce.clone(),
        return_to: next_or_home(&next.next),
    };
    console
        .app
        .store
        .begin_console_sign_in(&state, &pending, now + SIGN_IN_WINDOW)
        .await
        .map_err(Problem::from)?;
    let scope = format!("openid {}", client.scopes);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &redirect_uri(&console, &headers))
        .append_pair("scope", scope.trim())
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if endpoints.authorization.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(Redirect::to(&format!("{}{separator}{query}", endpoints.authorization)).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
}

/// The provider's answer: the code exchanged for an ID token, which opens
/// a session.
pub(super) async fn callback(
    State(console): State<Console>,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let client = console.config.oidc.as_ref().ok_or_else(no_provider)?;
    let oidc = console.app.oidc.as_ref().ok_or_else(no_provider)?;
    if let Some(error) = query.error {
        let why = query.error_description.unwrap_or(error);
        return Ok(sign_in_page(
            &console,
            "/",
            Some(&format!("The sign-in provider refused: {why}")),
            StatusCode::UNAUTHORIZED,
        ));
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return Err(PageError::BadRequest(
            "the provider's answer has no `code` and `state`".to_owned(),
        ));
    };
    let now = console.app.clock.now();
    let Some(pending) = console
        .app
        .store
        .finish_console_sign_in(&state, now)
        .await
        .map_err(Problem::from)?
    else {
        return Ok(sign_in_page(
            &console,
            "/",
            Some("That sign-in expired or was already used; sign in again."),
            StatusCode::BAD_REQUEST,
        ));
    };
    let endpoints = endpoints(&console).await?;
    let redirect_uri = redirect_uri(&console, &headers);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
        ("client_id", client.client_id.as_str()),
    ];
    let mut request = console.http.post(&endpoints.token).form(&form);
    if let Some(secret) = &client.client_secret {
        request = request.basic_auth(&client.client_id, Some(secret.expose()));
    }
    let refused = |why: String| {
        tracing::warn!(%why, %peer, "console: exchanging a sign-in code");
        PageError::Unavailable(
            "the sign-in provider did not accept the sign-in; try again".to_owned(),
        )
    };
    let answer = request
        .send()
        .await
        .map_err(|err| refused(err.to_string()))?;
    if !answer.status().is_success() {
        return Err(refused(format!(
            "the token endpoint answered {}",
            answer.status()
        )));
    }
    let tokens: TokenAnswer = answer
        .json()
        .await
        .map_err(|err| refused(err.to_string()))?;
    let id_token = tokens
        .id_token
        .ok_or_else(|| refused("the token endpoint sent no id_token".to_owned()))?;
    let (principal, expires) = match oidc
        .verify_id_token(&id_token, &client.client_id, &pending.nonce)
        .await
    {
        Ok(verified) => verified,
        Err(Rejected::Token(why)) => return Err(refused(why)),
        Err(Rejected::Provider(why)) => return Err(refused(why)),
    };
    if subjects::is_reserved(&principal.subject) || principal.subject.chars().any(char::is_control)
    {
        return Err(PageError::Forbidden(format!(
            "`{}` cannot sign in to the console",
            principal.subject
        )));
    }
    let token_end = DateTime::from_timestamp(expires, 0).unwrap_or(now);
    let expires_at = token_end.min(now + ttl(&console));
    if expires_at <= now {
        return Err(refused("the ID token has already expired".to_owned()));
    }
    open_session(
        &console,
        principal,
        SessionAuth::Oidc,
        expires_at,
        now,
        &pending.return_to,
    )
    .await
}
