//! hubwright-console: the web console, served by the API role at `/`.
//!
//! Server-rendered pages (minijinja templates and assets embedded in the
//! binary: no CDN, no Node to build, works air-gapped) over the public API:
//! every read and every action is a request to the API's own router, made
//! in-process on behalf of the signed-in user ([`api`]), so the console has
//! exactly the API's authorization, validation, limits, audit trail and
//! problem messages, and no second copy of any of them. A little script
//! ([`assets`]) adds live updates over the API's event streams and local
//! times; every page reads without it. docs/decisions/0018-web-console.md
//! says why.
//!
//! - [`session`]: the session cookie, who is signed in, CSRF checks.
//! - [`sign_in`]: sign-in with a hubwright token or the OpenID provider
//!   (authorization code with PKCE), sign-out.
//! - [`pages`]: the pages for developers, operators and admins.
//! - [`live`]: the event streams of live regions, as the script reads them.

pub mod api;
pub mod assets;
pub mod live;
pub mod pages;
pub mod render;
pub mod session;
pub mod sign_in;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hubwright_api::AppState;
use hubwright_state::secrets::SecretString;

/// How the console is set up.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The console's address as browsers reach it (`https://hubwright.example.org`):
    /// the OpenID redirect URI is made from it, and an `https` one makes the
    /// session cookie `Secure`. Without it, the request's `Host` is used and
    /// cookies are not `Secure` (local use only).
    pub public_url: Option<String>,
    /// Sign-in through the organisation's OpenID provider (the issuer the API
    /// trusts); without it, only hubwright tokens sign in.
    pub oidc: Option<ConsoleOidc>,
    /// How long a session lasts at most; an OpenID session also ends when
    /// its ID token would.
    pub session_ttl: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            oidc: None,
            session_ttl: Duration::from_secs(8 * 3600),
        }
    }
}

/// The console's client at the OpenID provider.
#[derive(Debug, Clone)]
pub struct ConsoleOidc {
    /// Its client id: the `aud` of the ID tokens it receives.
    pub client_id: String,
    /// Its secret, for a confidential client; a public client has none and
    /// relies on PKCE alone.
    pub client_secret: Option<SecretString>,
    /// Scopes asked for besides `openid` (`profile groups`).
    pub scopes: String,
}

/// What every console handler can reach.
#[derive(Debug, Clone)]
pub struct Console {
    /// The API's state: its store, clock, OpenID verifier and policy.
    pub app: AppState,
    /// The API's router, called in-process for every read and action.
    pub api: Router,
    /// The settings above.
    pub config: Arc<ConsoleConfig>,
    /// The provider's endpoints, read from its discovery document once.
    pub provider: Arc<tokio::sync::OnceCell<sign_in::Endpoints>>,
    /// Talks to the provider's token endpoint.
    pub http: reqwest::Client,
}

impl Console {
    /// The templates, compiled at the first page a process renders rather
    /// than at start-up: a server that shows no page (most API tests, a
    /// worker-only replica) does not pay for them. They are compiled into the
    /// binary, so the console's tests catch one that does not compile.
    pub fn views(&self) -> &'static render::Views {
        render::views()
    }
}

/// The console in front of the API: the console's pages, and every other
/// request passed to `api` (the API's router over the same `app` state),
/// except that a browser asking for a page that does not exist gets the
/// console's 404 page rather than the API's JSON.
pub fn router(app: AppState, api: Router, config: ConsoleConfig) -> Router {
    let http = hubwright_http::client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|err| panic!("building an HTTP client: {err}"));
    let console = Console {
        app,
        api: api.clone(),
        config: Arc::new(config),
        provider: Arc::default(),
        http,
    };
    let pages = Router::new()
        .merge(assets::routes())
        .merge(sign_in::routes())
        .merge(pages::routes())
        .layer(axum::middleware::from_fn(render::page_headers))
        .layer(axum::middleware::from_fn(hubwright_api::headers::secure))
        .layer(axum::middleware::from_fn(hubwright_api::metrics::track))
        .layer(axum::middleware::from_fn(
            hubwright_api::request_trace::name_route,
        ))
        .with_state(console);
    pages.fallback(move |request: axum::extract::Request| pages::not_a_page(api.clone(), request))
}
