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

mod oidc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::BodyExt;
use hubwright_api::Problem;
use hubwright_state::model::Principal;
use hubwright_state::store::console::{NewSession, SessionAuth, new_secret};
use hubwright_state::subjects;
use minijinja::context;
use serde::Deserialize;

use crate::Console;
use crate::pages::PageError;
use crate::session::{
    OptionalViewer, Viewer, cookie, local_path, same_secret, session_cookie_name, set_cookie,
};

pub use oidc::Endpoints;

/// The sign-in form's double-submit cookie.
const SIGN_IN_COOKIE: &str = "hubwright_sign_in";
/// The largest sign-in form read.
const MAX_FORM: usize = 8 * 1024;

/// The sign-in and sign-out routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/sign-in", get(page))
        .route("/sign-in/token", post(with_token))
        .route("/sign-in/oidc", get(oidc::start))
        .route("/sign-in/callback", get(oidc::callback))
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
    let html = console.views().render(
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

/// Ends the session and clears its cookie.
async fn sign_out(
    State(console): State<Console>,
    viewer: Viewer,
    headers: HeaderMap,
    axum::Form(form): axum::Form<crate::session::CsrfForm>,
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
