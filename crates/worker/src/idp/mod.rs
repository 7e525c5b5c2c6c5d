//! `idp-client`, `idp-client-update` and `idp-client-delete`: the hub's OAuth
//! client at the organisation's identity provider, and the Kubernetes Secret
//! the hub reads its credentials from.
//!
//! Modes: `oidc` registers a client by OpenID Connect Dynamic Client
//! Registration ([`dcr`]); `local` uses no provider and gives the hub a
//! generated admin password. Every credential is sealed in Postgres
//! (`HUBWRIGHT_SECRET_KEY`) and leaves hubwright only into the Secret.
//!
//! Crash safety: the intent to register is committed before the provider is
//! called and the answer right after it returns, so the only window in which a
//! client can be orphaned is the provider's own round trip. RFC 7591 offers no
//! lookup by name, so such a client cannot be found again; its `client_name`
//! carries the environment id, and the next attempt says on the timeline that
//! one may exist (docs/decisions/0005).
//!
//! One module per kind (`create`, `update`, `delete`); what they share is in
//! `attempt` (what an attempt resolves and reads) and `settings` (Keycloak's
//! block and secrets from the worker's environment).

pub mod dcr;
mod http;
pub mod keycloak;

mod attempt;
mod create;
mod delete;
mod settings;
mod update;

use std::sync::Arc;
use std::time::Duration;

use hubwright_state::secrets::SecretKeys;

use crate::kubernetes::ClusterClients;
use crate::registry::Registry;

pub use create::{IdpClientParams, IdpClientStep};
pub use delete::{IdpClientDeleteParams, IdpClientDeleteStep};
pub(crate) use http::refusal as http_refusal;
pub use settings::KeycloakParams;
pub use update::{IdpClientUpdateParams, IdpClientUpdateStep};

/// Sealed secret names, per environment.
const CLIENT_SECRET: &str = "idp-client-secret";
const REGISTRATION_TOKEN: &str = "idp-registration-access-token";
const ADMIN_PASSWORD: &str = "local-admin-password";

/// How long one call to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the three kinds share: cluster clients, the secret keys, one HTTP client.
#[derive(Debug)]
pub struct IdpShared {
    clusters: Arc<ClusterClients>,
    keys: Option<Arc<SecretKeys>>,
    http: reqwest::Client,
}

/// Registers `idp-client`, `idp-client-update` and `idp-client-delete`.
/// Without `keys` they fail permanently, saying the key is not configured.
pub fn register(
    registry: &mut Registry,
    clusters: &Arc<ClusterClients>,
    keys: Option<Arc<SecretKeys>>,
) {
    let http = hubwright_http::client_builder()
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .unwrap_or_default();
    let shared = Arc::new(IdpShared {
        clusters: Arc::clone(clusters),
        keys,
        http,
    });
    registry
        .register(IdpClientStep(Arc::clone(&shared)))
        .register(IdpClientUpdateStep(Arc::clone(&shared)))
        .register(IdpClientDeleteStep(shared));
}

/// The Secret in the hub's namespace that `idp-client` writes by default.
pub const DEFAULT_SECRET: &str = "hubwright-oauth";
