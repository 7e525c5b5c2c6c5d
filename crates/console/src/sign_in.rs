//! Signing in and out.
//!
//! - With the organisation's OpenID provider (the issuer the API already
//!   trusts): the authorization code flow with PKCE (S256), a one-time
//!   `state` and a `nonce`; the ID token is verified as the API verifies
//!   bearer JWTs (keys, issuer, lifetime), for the console's client id, and its
//!   groups give the role. The session ends when the ID token would.
//! - With a hubwright token, pasted into a form; the session follows the
//!   token (revoked: signed out at once).
//!
//! The sign-in form has no session yet, so its CSRF token is a cookie of its
//! own sent back in the form (double submit).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::BodyExt;
use hubwright_api::Problem;
use hubwright_api::oidc::Rejected;
use hubwright_state::model::Principal;
use hubwright_state::store::console::{NewSession, PendingSignIn, SessionAuth, new_secret};
use hubwright_state::subjects;
use minijinja::context;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Console;
use crate::pages::PageError;
use crate::session::{
    OptionalViewer, Viewer, cookie, local_path, same_secret, session_cookie_name, set_cookie,
};

/// The sign-in form's double-submit cookie.
const SIGN_IN_COOKIE: &str = "hubwright_sign_in";
/// How long a sign-in at the provider may take, redirect to callback.
const SIGN_IN_WINDOW: TimeDelta = TimeDelta::minutes(10);
/// The largest sign-in form read.
const MAX_FORM: usize = 8 * 1024;

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

/// The sign-in and sign-out routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/sign-in", get(page))
        .route("/sign-in/token", post(with_token))
        .route("/sign-in/oidc", get(start_oidc))
        .route("/sign-in/callback", get(callback))
        .route("/sign-out", post(sign_out))
}

#[derive(Debug, Deserialize, Default)]
struct Next {
    #[serde(default)]
    next: String,
}

fn next_or_home(next: &str) -> String {
    local_path(next).unwrap_or("/").to_owned()
}

/// The sign-in page: the provider's button when one is set up, and the
/// token form.
async fn page(
    State(console): State<Console>,
    OptionalViewer(viewer): OptionalViewer,
    Query(next): Query<Next>,
) -> Result<Response, PageError> {
    if viewer.is_some() {
        return Ok(Redirect::to(&next_or_home(&next.next)).into_response());
    }
    Ok(sign_in_page(
        &console,
        &next_or_home(&next.next),
        None,
        StatusCode::OK,
    ))
}

fn sign_in_page(
    console: &Console,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Ok(form_secret) = new_secret() else {
        return PageError::Unavailable("the system has no randomness".to_owned()).into_response();
    };
    let html = console.views.render(
        "sign_in.html",
        None,
        context! {
            title => "Sign in",
            next,
            form_secret => form_secret.clone(),
            error,
            oidc => console.config.oidc.is_some() && console.app.oidc.is_some(),
        },
    );
    let mut response = (status, html).into_response();
    if let Ok(value) =
        HeaderValue::from_str(&set_cookie(console, SIGN_IN_COOKIE, &form_secret, 3600))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Signs in with a hubwright token.
async fn with_token(
    State(console): State<Console>,
    request: Request,
) -> Result<Response, PageError> {
    let (parts, body) = request.into_parts();
    let bytes = http_body_util::Limited::new(body, MAX_FORM)
        .collect()
        .await
        .map_err(|_| PageError::BadRequest("the sign-in form is too large".to_owned()))?
        .to_bytes();
    let form: TokenForm = serde_urlencoded::from_bytes(&bytes)
        .map_err(|err| PageError::BadRequest(format!("the sign-in form did not read: {err}")))?;
    let next = next_or_home(&form.next);
    let expected = cookie(&parts.headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return Ok(sign_in_page(
            &console,
            &next,
            Some("The sign-in form expired; it has been renewed. Paste the token again."),
            StatusCode::FORBIDDEN,
        ));
    }
    let now = console.app.clock.now();
    let token = form.token.trim();
    let found = if token.is_empty() {
        None
    } else {
        console
            .app
            .store
            .token_for_sign_in(token, now)
            .await
            .map_err(Problem::from)?
    };
    let Some((id, principal)) = found.filter(|(_, p)| !subjects::is_reserved(&p.subject)) else {
        // Counted like a failed bearer token, per address.
        let problem = console
            .app
            .limits
            .failed(&parts, Problem::unauthorized("unknown token"));
        if problem.status() == StatusCode::TOO_MANY_REQUESTS {
            return Err(PageError::from(problem));
        }
        return Ok(sign_in_page(
            &console,
            &next,
            Some("That token is unknown or revoked."),
            StatusCode::UNAUTHORIZED,
        ));
    };
    let expires_at = now + ttl(&console);
    open_session(
        &console,
        principal,
        SessionAuth::Token(id),
        expires_at,
        now,
        &next,
    )
    .await
}

fn ttl(console: &Console) -> TimeDelta {
    TimeDelta::from_std(console.config.session_ttl).unwrap_or(TimeDelta::hours(8))
}

async fn open_session(
    console: &Console,
    principal: Principal,
    auth: SessionAuth,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    next: &str,
) -> Result<Response, PageError> {
    let new = NewSession {
        principal,
        auth,
        expires_at,
    };
    let secret = console
        .app
        .store
        .open_console_session(&new, now)
        .await
        .map_err(Problem::from)?;
    tracing::info!(subject = %new.principal.subject, "console: signed in");
    let mut response = Redirect::to(next).into_response();
    let max_age = (expires_at - now).num_seconds().max(1);
    let cookies = [
        set_cookie(console, session_cookie_name(console), &secret, max_age),
        set_cookie(console, SIGN_IN_COOKIE, "", 0),
    ];
    for value in cookies {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
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
async fn start_oidc(
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
struct CallbackQuery {
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
async fn callback(
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

#[derive(Debug, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session and clears its cookie.
async fn sign_out(
    State(console): State<Console>,
    viewer: Viewer,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignOutForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    if let Some(secret) = cookie(&headers, session_cookie_name(&console)) {
        console
            .app
            .store
            .close_console_session(&secret)
            .await
            .map_err(Problem::from)?;
    }
    let mut response = Redirect::to("/sign-in").into_response();
    if let Ok(value) =
        HeaderValue::from_str(&set_cookie(&console, session_cookie_name(&console), "", 0))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}
