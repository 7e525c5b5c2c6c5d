//! `serve`'s web console flags (docs/decisions/0018-web-console.md).

use hubwright_api::AppState;
use hubwright_console::{ConsoleConfig, ConsoleOidc};
use hubwright_state::secrets::SecretString;
use hubwright_state::workflow::Dur;

/// The console the API role serves at `/`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Serve only the API: `/` and the console's pages answer 404.
    #[arg(long, env = "HUBWRIGHT_NO_CONSOLE")]
    no_console: bool,
    /// The console's address as browsers reach it (`https://hubwright.example.org`):
    /// the sign-in redirect is made from it, and `https` makes the session
    /// cookie Secure. Without it, the request's Host header is used (local use).
    #[arg(long, env = "HUBWRIGHT_PUBLIC_URL")]
    public_url: Option<String>,
    /// The console's client id at the OpenID provider (`--oidc-issuer`):
    /// users sign in there (authorization code with PKCE). Without it, the
    /// console takes hubwright tokens only.
    #[arg(long, env = "HUBWRIGHT_CONSOLE_CLIENT_ID", requires = "oidc_issuer")]
    console_client_id: Option<String>,
    /// The client's secret, for a confidential client (a public one has
    /// none). Prefer the variable: a flag shows in `ps`.
    #[arg(
        long,
        env = "HUBWRIGHT_CONSOLE_CLIENT_SECRET",
        hide_env_values = true,
        requires = "console_client_id"
    )]
    console_client_secret: Option<String>,
    /// Scopes the console asks for besides `openid`.
    #[arg(
        long,
        env = "HUBWRIGHT_CONSOLE_SCOPES",
        default_value = "profile groups"
    )]
    console_scopes: String,
    /// How long a console session lasts at most (an OpenID session also
    /// ends with its ID token).
    #[arg(long, env = "HUBWRIGHT_CONSOLE_SESSION_TTL", default_value = "8h")]
    console_session_ttl: Dur,
}

impl ConsoleArgs {
    /// The API's router over `state`, with the console in front of it
    /// unless `--no-console`.
    pub fn app(&self, state: AppState) -> axum::Router {
        let api = hubwright_api::router_with(state.clone());
        if self.no_console {
            return api;
        }
        let config = ConsoleConfig {
            public_url: self.public_url.clone(),
            oidc: self
                .console_client_id
                .as_ref()
                .map(|client_id| ConsoleOidc {
                    client_id: client_id.clone(),
                    client_secret: self.console_client_secret.clone().map(SecretString::new),
                    scopes: self.console_scopes.clone(),
                }),
            session_ttl: self.console_session_ttl.0,
        };
        hubwright_console::router(state, api, config)
    }
}
