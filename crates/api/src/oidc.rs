//! Bearer JWTs from the organisation's OpenID provider, beside hubwright's
//! own API tokens: a portal that signed its user in passes the user's token
//! on, and the API acts as that user.
//!
//! A token is accepted when its signature verifies with a key from the
//! issuer's JWKS (found through its discovery document; fetched again when a
//! token names a key id not seen yet, at most every [`REFETCH_AFTER`]), its
//! `iss` is the configured issuer, its `aud` includes the configured audience,
//! and it is within `exp`/`nbf` (a minute of clock skew allowed). Only
//! asymmetric algorithms are accepted, so a token signed with the public key as
//! an HMAC secret is refused. The caller's name is the username claim (after
//! the configured prefix, if any); their
//! role comes from the groups claim: admin, operator, else developer.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hubwright_state::model::{Principal, Role};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::RwLock;

/// A key set is not fetched again sooner than this for an unknown key id,
/// so tokens with made-up key ids cannot make the API hammer the provider.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);

/// Which tokens to accept and how to read them.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// The `aud` tokens must name: the portal's client id, or the API's.
    pub audience: String,
    /// The claim with the caller's name (`preferred_username`).
    pub username_claim: String,
    /// Put before every username (e.g. `oidc:`), so the provider's users and
    /// the subjects of hubwright's own tokens never name the same principal;
    /// empty keeps usernames as the provider has them (docs/decisions/0012).
    pub username_prefix: String,
    /// The claim listing the caller's groups (`groups`).
    pub groups_claim: String,
    /// Members of these groups are operators.
    pub operator_groups: Vec<String>,
    /// Members of these groups are admins.
    pub admin_groups: Vec<String>,
}

/// Why a token was not accepted; the text is for the caller and never
/// contains the token.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// The token is not one this API accepts (401).
    #[error("{0}")]
    Token(String),
    /// The provider's keys could not be fetched (503).
    #[error("cannot fetch the OpenID provider's keys: {0}")]
    Provider(String),
}

#[derive(Debug, Default)]
struct Keys {
    set: Option<JwkSet>,
    fetched: Option<Instant>,
}

/// Verifies provider-issued bearer tokens.
#[derive(Debug)]
pub struct OidcVerifier {
    config: OidcConfig,
    http: reqwest::Client,
    keys: RwLock<Keys>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl OidcVerifier {
    /// A verifier for `config`; keys are fetched on first use.
    pub fn new(config: OidcConfig) -> Self {
        let http = hubwright_http::client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|err| panic!("building an HTTP client: {err}"));
        Self {
            config,
            http,
            keys: RwLock::new(Keys::default()),
        }
    }

    /// What every OpenID principal's subject starts with (may be empty).
    pub fn username_prefix(&self) -> &str {
        &self.config.username_prefix
    }

    /// Whether `token` looks like a JWT (three base64url parts) rather than
    /// one of hubwright's own tokens.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3
    }

    /// The caller `token` names, if it is valid.
    pub async fn verify(&self, token: &str) -> Result<Principal, Rejected> {
        let claims = self.claims(token, &self.config.audience).await?;
        self.principal(&claims)
    }

    /// The user an ID token from a sign-in names, if it is valid for
    /// `client_id` (its `aud`) and carries `nonce` (the web console's
    /// authorization code flow), with when it expires.
    pub async fn verify_id_token(
        &self,
        token: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<(Principal, i64), Rejected> {
        let claims = self.claims(token, client_id).await?;
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(Rejected::Token(
                "the ID token's nonce is not the one this sign-in sent".to_owned(),
            ));
        }
        let expires = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| Rejected::Token("the token has no `exp` claim".to_owned()))?;
        Ok((self.principal(&claims)?, expires))
    }

    /// The issuer's discovery document, fetched anew (the console reads its
    /// endpoints once and keeps them).
    pub async fn discovery(&self) -> Result<serde_json::Map<String, Value>, Rejected> {
        self.get_json(&self.discovery_url()).await
    }

    /// The issuer tokens must name.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The claims of `token` once its signature, issuer, audience and
    /// lifetime check out.
    async fn claims(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<serde_json::Map<String, Value>, Rejected> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| Rejected::Token(format!("not a readable JWT: {err}")))?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
        ) {
            return Err(Rejected::Token(format!(
                "tokens signed with {:?} are not accepted",
                header.alg
            )));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 60;
        validation.validate_nbf = true;
        Ok(
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
                .map_err(|err| Rejected::Token(self.describe(&err, audience)))?
                .claims,
        )
    }

    fn describe(&self, err: &jsonwebtoken::errors::Error, audience: &str) -> String {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
            ErrorKind::InvalidIssuer => format!("the token's issuer is not {}", self.config.issuer),
            ErrorKind::InvalidAudience => {
                format!("the token's audience does not include {audience}")
            }
            ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
            _ => format!("the token is not valid: {err}"),
        }
    }

    fn principal(&self, claims: &serde_json::Map<String, Value>) -> Result<Principal, Rejected> {
        let subject = claims
            .get(&self.config.username_claim)
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                Rejected::Token(format!(
                    "the token has no `{}` claim to name the caller",
                    self.config.username_claim
                ))
            })
            .map(|name| format!("{}{name}", self.config.username_prefix))?;
        let groups: HashSet<&str> = match claims.get(&self.config.groups_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(one)) => HashSet::from([one.as_str()]),
            _ => HashSet::new(),
        };
        let member = |of: &[String]| of.iter().any(|group| groups.contains(group.as_str()));
        let role = if member(&self.config.admin_groups) {
            Role::Admin
        } else if member(&self.config.operator_groups) {
            Role::Operator
        } else {
            Role::Developer
        };
        let mut groups: Vec<String> = groups.into_iter().map(str::to_owned).collect();
        groups.sort();
        Ok(Principal {
            subject,
            role,
            groups,
        })
    }

    /// The key `kid` names (or the only key, for tokens without a `kid`),
    /// fetching the key set when it is not known yet.
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, Rejected> {
        {
            let keys = self.keys.read().await;
            if let Some(key) = keys.set.as_ref().and_then(|set| find(set, kid)) {
                return key;
            }
            if keys.fetched.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
                return Err(unknown_key(kid));
            }
        }
        let mut keys = self.keys.write().await;
        // Another request may have fetched meanwhile.
        if keys.fetched.is_none_or(|at| at.elapsed() >= REFETCH_AFTER) {
            match self.fetch().await {
                Ok(set) => {
                    keys.set = Some(set);
                    keys.fetched = Some(Instant::now());
                }
                // Keep what we had: a provider that is down must not turn
                // every token away whose key we already know.
                Err(err) if keys.set.is_none() => return Err(err),
                Err(err) => tracing::warn!(error = %err, "refreshing the OpenID provider's keys"),
            }
        }
        keys.set
            .as_ref()
            .and_then(|set| find(set, kid))
            .unwrap_or_else(|| Err(unknown_key(kid)))
    }

    async fn fetch(&self) -> Result<JwkSet, Rejected> {
        let discovery: Discovery = self.get_json(&self.discovery_url()).await?;
        self.get_json(&discovery.jwks_uri).await
    }

    fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        )
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Rejected> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|err| Rejected::Provider(format!("GET {url}: {err}")))?;
        if !response.status().is_success() {
            return Err(Rejected::Provider(format!(
                "GET {url} answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|err| Rejected::Provider(format!("GET {url}: {err}")))
    }
}

fn find(set: &JwkSet, kid: Option<&str>) -> Option<Result<DecodingKey, Rejected>> {
    let jwk = match kid {
        Some(kid) => set.find(kid)?,
        None if set.keys.len() == 1 => set.keys.first()?,
        None => return None,
    };
    Some(
        DecodingKey::from_jwk(jwk)
            .map_err(|err| Rejected::Token(format!("the provider's key cannot verify: {err}"))),
    )
}

fn unknown_key(kid: Option<&str>) -> Rejected {
    Rejected::Token(match kid {
        Some(kid) => format!("the token's key id {kid:?} is not among the provider's keys"),
        None => "the token names no key id and the provider has several keys".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn verifier() -> OidcVerifier {
        OidcVerifier::new(OidcConfig {
            issuer: "https://sso.example.org".to_owned(),
            audience: "portal".to_owned(),
            username_claim: "preferred_username".to_owned(),
            username_prefix: String::new(),
            groups_claim: "groups".to_owned(),
            operator_groups: vec!["hub-ops".to_owned()],
            admin_groups: vec!["hub-admins".to_owned()],
        })
    }

    fn claims(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn groups_decide_the_role_and_the_username_claim_the_name() {
        let v = verifier();
        let dev = v
            .principal(&claims(
                json!({ "preferred_username": "alice", "groups": ["physics"] }),
            ))
            .unwrap();
        assert_eq!((dev.subject.as_str(), dev.role), ("alice", Role::Developer));
        assert_eq!(dev.groups, ["physics"]);
        let ops = v
            .principal(&claims(
                json!({ "preferred_username": "carol", "groups": ["hub-ops"] }),
            ))
            .unwrap();
        assert_eq!(ops.role, Role::Operator);
        let admin = v
            .principal(&claims(
                json!({ "preferred_username": "erin", "groups": "hub-admins" }),
            ))
            .unwrap();
        assert_eq!(admin.role, Role::Admin);
        let nameless = v.principal(&claims(json!({ "sub": "123" }))).unwrap_err();
        let prefixed = OidcVerifier::new(OidcConfig {
            username_prefix: "oidc:".to_owned(),
            ..v.config.clone()
        });
        let named = prefixed
            .principal(&claims(json!({ "preferred_username": "alice" })))
            .unwrap();
        assert_eq!(named.subject, "oidc:alice");
        assert!(
            nameless.to_string().contains("preferred_username"),
            "{nameless}"
        );
    }

    #[test]
    fn symmetric_and_unsigned_tokens_are_refused_before_any_key_is_fetched() {
        // {"alg":"HS256","typ":"JWT"} . {} . signature
        let hs256 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln";
        let err = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(verifier().verify(hs256))
            .unwrap_err();
        assert!(err.to_string().contains("HS256"), "{err}");
        assert!(OidcVerifier::looks_like_jwt(hs256));
        assert!(!OidcVerifier::looks_like_jwt("hw_abc123"));
    }
}
