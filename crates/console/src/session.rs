//! Who is signed in: the session cookie, read on every page, and the CSRF
//! check every form goes through.
//!
//! The cookie holds a random secret (HttpOnly, SameSite=Lax, `Secure` and
//! the `__Host-` prefix behind https); the database keeps its hash
//! ([`hubwright_state::store::console`]). Every form carries the session's
//! synchronizer token in a hidden `csrf` field; a POST without the right one
//! is refused before it reaches the API.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use hubwright_api::auth::ConsoleUser;
use hubwright_state::model::Role;
use hubwright_state::store::console::ConsoleSession;
use sha2::{Digest, Sha256};

use crate::Console;
use crate::pages::PageError;

/// The session cookie's name over plain http.
const COOKIE: &str = "hubwright_session";
/// Its name behind https: the `__Host-` prefix makes browsers refuse it
/// unless it is `Secure`, host-only and for every path.
const SECURE_COOKIE: &str = "__Host-hubwright_session";

/// The signed-in user of a page request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Who they are, as the API sees them on the console's calls.
    pub user: ConsoleUser,
    /// The value forms must send back.
    pub csrf: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

impl Viewer {
    /// Their name.
    pub fn subject(&self) -> &str {
        &self.user.principal.subject
    }

    /// Whether they have at least `role`.
    pub fn has(&self, role: Role) -> bool {
        self.user.principal.has(role)
    }

    /// Refuses a form whose `csrf` field is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if same_secret(sent, &self.csrf) {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "this form is out of date or did not come from this console; reload the page and try again".to_owned(),
            ))
        }
    }
}

/// A form that carries nothing but the session's CSRF token: a button
/// that deletes, revokes, cancels or signs out.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    /// The session's synchronizer token.
    #[serde(default)]
    pub csrf: String,
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl FromRequestParts<Console> for Viewer {
    type Rejection = Response;

    /// The session's user, or a redirect to the sign-in page that comes
    /// back here afterwards.
    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        match OptionalViewer::from_request_parts(parts, console).await?.0 {
            Some(viewer) => Ok(viewer),
            None => {
                let here = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or_else(|| parts.uri.clone(), |uri| uri.0.clone());
                let next = here.path_and_query().map_or("/", |p| p.as_str());
                let target = format!("/sign-in?next={}", encode(next));
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// The signed-in user, if any (the sign-in page and the error pages).
#[derive(Debug, Clone)]
pub struct OptionalViewer(pub Option<Viewer>);

impl FromRequestParts<Console> for OptionalViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let Some(secret) = cookie(&parts.headers, session_cookie_name(console)) else {
            return Ok(Self(None));
        };
        let now = console.app.clock.now();
        let session = console
            .app
            .store
            .console_session(&secret, now)
            .await
            .map_err(|err| PageError::from(hubwright_api::Problem::from(err)).into_response())?;
        Ok(Self(session.map(viewer)))
    }
}

/// The session's user as they signed in. The policy file's groups are not
/// added here: every request the console makes goes through the API's
/// `Caller`, which adds them (read at each request, so a reload counts).
fn viewer(session: ConsoleSession) -> Viewer {
    Viewer {
        user: ConsoleUser {
            principal: session.principal,
            auth: session.auth,
            session_hash: session.id_hash,
        },
        csrf: session.csrf,
        expires_at: session.expires_at,
    }
}

/// Whether the console is reached over https (its public URL says so).
pub fn is_secure(console: &Console) -> bool {
    console
        .config
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"))
}

/// The session cookie's name for this console.
pub fn session_cookie_name(console: &Console) -> &'static str {
    if is_secure(console) {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

/// A `Set-Cookie` value for `name=value` that lives `max_age` seconds (0
/// deletes it).
pub fn set_cookie(console: &Console, name: &str, value: &str, max_age: i64) -> String {
    let secure = if is_secure(console) { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The value of cookie `name` in the request, if it sent one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// `text` percent-encoded for a query string.
pub fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Whether `next` is a path on this console (never another site: an open
/// redirect would let a link sign someone in and send them elsewhere).
pub fn local_path(next: &str) -> Option<&str> {
    (next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.contains(['\r', '\n']))
    .then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_console_are_followed_after_sign_in() {
        assert_eq!(
            local_path("/environments/x?y=1"),
            Some("/environments/x?y=1")
        );
        assert_eq!(local_path("//evil.example/"), None);
        assert_eq!(local_path("/\\evil.example/"), None);
        assert_eq!(local_path("https://evil.example/"), None);
        assert_eq!(local_path("/x\r\nSet-Cookie: a=b"), None);
    }

    #[test]
    fn a_cookie_is_found_among_others_by_its_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; hubwright_session_x=2; hubwright_session=3"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("3"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", ""));
    }
}
