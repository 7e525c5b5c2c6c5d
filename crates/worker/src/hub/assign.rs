//! `hub-assign`: the step of a pool's `assign` workflow that makes a claimed
//! hub its owner's.

use std::sync::Arc;

use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::HubApi;
use super::{API_TOKEN_SECRET, HubShared};
use crate::step::{Outcome, Step, StepContext, StepError};
use crate::values::{environment_values, fill};

/// Parameters of `hub-assign`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubAssignParams {
    /// The hub's URL (placeholders allowed). Left out: the environment's
    /// URL, which the member's health check reported.
    #[serde(default)]
    pub url: Option<String>,
    /// The run parameter (a list of names) of the hub's admins besides the
    /// owner.
    #[serde(default = "default_admins")]
    pub admin_users_from: String,
    /// The run parameter (a list of names) of who else may log in.
    #[serde(default = "default_users")]
    pub allowed_users_from: String,
    /// The run parameter (a list of names) of the provider groups whose
    /// members may log in (the member's values install the hook that reads
    /// them).
    #[serde(default = "default_groups")]
    pub allowed_groups_from: String,
}

fn default_groups() -> String {
    "allowed_groups".to_owned()
}

fn default_admins() -> String {
    "admin_users".to_owned()
}

fn default_users() -> String {
    "allowed_users".to_owned()
}

/// `hub-assign`: through the hub's REST API, with its `hubwright` service's
/// token, creates the allowed users, the allowed groups (marked for the
/// member's `check_allowed` hook), the admins, and last the owner as an
/// admin. Every call converges (a user who exists is updated, never
/// demoted), so a retried attempt finishes what an interrupted one began.
/// The owner comes last: until every other user is in place, the owner
/// cannot log in, and the environment is not `ready` before the step is done.
#[derive(Debug, Clone)]
pub struct HubAssignStep(pub(super) Arc<HubShared>);

impl Step for HubAssignStep {
    const KIND: &'static str = "hub-assign";
    type Params = HubAssignParams;

    async fn run(&self, ctx: &StepContext, params: HubAssignParams) -> Result<Outcome, StepError> {
        let keys = self.0.keys.clone().ok_or_else(|| {
            StepError::permanent(
                "HUBWRIGHT_SECRET_KEY is not configured on this worker; it opens the hub's service token",
            )
        })?;
        let env = ctx.environment().await?;
        let url = match &params.url {
            Some(url) => fill(url, &environment_values(&ctx.input, &env, None), "url")?,
            None => env.url.clone().ok_or_else(|| {
                StepError::permanent(format!(
                    "environment {} has no URL to reach its hub at; give the step `url`",
                    env.id
                ))
            })?,
        };
        let base = Url::parse(&url)
            .map_err(|err| StepError::permanent(format!("url: `{url}` is not a URL: {err}")))?;
        let token = ctx
            .store
            .secret(&keys, env.id, API_TOKEN_SECRET)
            .await
            .map_err(|err| StepError::retryable(format!("reading the hub's service token: {err}")))?
            .ok_or_else(|| {
                StepError::permanent(
                    "the hub was built without a service token for hubwright: its idp-client step needs `hub_api_token: true`",
                )
            })?;
        let admins = names(&ctx.input, &params.admin_users_from)?;
        let users = names(&ctx.input, &params.allowed_users_from)?;
        let groups = names(&ctx.input, &params.allowed_groups_from)?;
        let api = HubApi {
            http: &self.0.http,
            base,
            token: &token,
        };
        for user in users
            .iter()
            .filter(|u| !admins.contains(u) && **u != env.owner)
        {
            api.ensure_user(user, false).await?;
        }
        for group in &groups {
            api.ensure_allowed_group(group).await?;
        }
        for admin in admins.iter().filter(|a| **a != env.owner) {
            api.ensure_user(admin, true).await?;
        }
        let owner = api.ensure_user(&env.owner, true).await?;
        if !owner.admin {
            return Err(StepError::permanent(format!(
                "the hub at {url} did not make `{}` an admin",
                owner.name
            )));
        }
        Ok(Outcome::Done(json!({
            "hub": url,
            "owner": owner.name,
            "admin_users": admins,
            "allowed_users": users,
            "allowed_groups": groups,
        })))
    }
}

/// The names in run parameter `name`: a list of strings, or nothing.
fn names(input: &Value, name: &str) -> Result<Vec<String>, StepError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    StepError::permanent(format!("parameter `{name}` lists a non-string: {item}"))
                })
            })
            .collect(),
        Some(other) => Err(StepError::permanent(format!(
            "parameter `{name}` is not a list of names: {other}"
        ))),
    }
}
