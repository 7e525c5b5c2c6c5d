//! `serve`'s OpenID provider flags: the API accepts the provider's JWTs as
//! bearer tokens, and the web console signs users in through it.

use std::sync::Arc;

use hubwright_api::oidc::{OidcConfig, OidcVerifier};

/// The provider and how its tokens name users and give roles.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcArgs {
    /// Also accept JWTs from this OpenID provider as API bearer tokens (a
    /// portal passes its user's token on). Its discovery document gives the keys.
    #[arg(long, env = "HUBWRIGHT_OIDC_ISSUER", requires = "oidc_audience")]
    oidc_issuer: Option<String>,
    /// The `aud` such tokens must carry: the portal's (or the API's) client id.
    #[arg(long, env = "HUBWRIGHT_OIDC_AUDIENCE", requires = "oidc_issuer")]
    oidc_audience: Option<String>,
    /// The claim naming the caller.
    #[arg(
        long,
        env = "HUBWRIGHT_OIDC_USERNAME_CLAIM",
        default_value = "preferred_username"
    )]
    oidc_username_claim: String,
    /// The claim listing the caller's groups.
    #[arg(long, env = "HUBWRIGHT_OIDC_GROUPS_CLAIM", default_value = "groups")]
    oidc_groups_claim: String,
    /// Members of these groups are operators (comma-separated).
    #[arg(long, env = "HUBWRIGHT_OIDC_OPERATOR_GROUPS", value_delimiter = ',')]
    oidc_operator_groups: Vec<String>,
    /// Members of these groups are admins (comma-separated).
    #[arg(long, env = "HUBWRIGHT_OIDC_ADMIN_GROUPS", value_delimiter = ',')]
    oidc_admin_groups: Vec<String>,
    /// Put before every OpenID username (e.g. `oidc:`), so the provider's
    /// users and hubwright token subjects never name the same principal;
    /// empty: usernames as the provider has them (README: Who is who).
    #[arg(long, env = "HUBWRIGHT_OIDC_USERNAME_PREFIX", default_value = "")]
    oidc_username_prefix: String,
}

impl OidcArgs {
    /// The verifier these flags describe, when an issuer is set.
    pub fn verifier(&self) -> Option<Arc<OidcVerifier>> {
        let (Some(issuer), Some(audience)) = (&self.oidc_issuer, &self.oidc_audience) else {
            return None;
        };
        tracing::info!(%issuer, %audience, "accepting the OpenID provider's tokens");
        Some(Arc::new(OidcVerifier::new(OidcConfig {
            issuer: issuer.clone(),
            audience: audience.clone(),
            username_claim: self.oidc_username_claim.clone(),
            username_prefix: self.oidc_username_prefix.clone(),
            groups_claim: self.oidc_groups_claim.clone(),
            operator_groups: self.oidc_operator_groups.clone(),
            admin_groups: self.oidc_admin_groups.clone(),
        })))
    }
}
