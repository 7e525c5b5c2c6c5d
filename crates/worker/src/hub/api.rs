//! The few calls of JupyterHub's REST API that `hub-assign` makes, with the
//! hub's answers classed where they are read: unreachable, timeouts, 429 and
//! 5xx are transient; 409 (the user exists) and 404 (a user gone between two
//! calls) are part of converging; any other refusal is permanent. The token
//! goes in the `Authorization` header only, and messages quote only the
//! hub's own `message` field.

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::idp::http_refusal;
use crate::step::StepError;
use hubwright_state::secrets::SecretString;

/// A hub at `base` (its public URL), called as its `hubwright` service.
pub(super) struct HubApi<'a> {
    pub(super) http: &'a reqwest::Client,
    pub(super) base: Url,
    pub(super) token: &'a SecretString,
}

/// The part of a user's model `hub-assign` reads.
#[derive(Debug, Deserialize)]
pub(super) struct HubUser {
    pub(super) name: String,
    #[serde(default)]
    pub(super) admin: bool,
}

/// What a call came to, short of an error.
enum Answer {
    Ok(Value),
    Conflict,
    NotFound,
}

impl HubApi<'_> {
    /// Makes `name` a user of the hub, an admin when `admin`; a user who
    /// exists already is made an admin when asked, and never demoted.
    /// Creating a user through the API adds it to the hub's allowed users
    /// (`allow_existing_users`). Returns the user as the hub now has it.
    pub(super) async fn ensure_user(&self, name: &str, admin: bool) -> Result<HubUser, StepError> {
        let path = ["hub", "api", "users", name];
        // Two rounds at most: a user deleted between the create's 409 and
        // the update's 404 is created on the second.
        for _ in 0..2 {
            match self
                .call(Method::POST, &path, Some(json!({ "admin": admin })))
                .await?
            {
                Answer::Ok(model) => return user(model, name),
                Answer::NotFound => {
                    return Err(StepError::retryable(format!(
                        "the hub at {} has no user API yet (404 creating user `{name}`)",
                        self.base
                    )));
                }
                Answer::Conflict => {}
            }
            let answer = if admin {
                self.call(Method::PATCH, &path, Some(json!({ "admin": true })))
                    .await?
            } else {
                self.call(Method::GET, &path, None).await?
            };
            match answer {
                Answer::Ok(model) => return user(model, name),
                Answer::NotFound => continue,
                Answer::Conflict => {
                    return Err(StepError::retryable(format!(
                        "the hub at {} answered 409 updating user `{name}`",
                        self.base
                    )));
                }
            }
        }
        Err(StepError::retryable(format!(
            "user `{name}` kept appearing and vanishing at the hub at {}",
            self.base
        )))
    }

    /// Makes `name` a group of the hub marked `hubwright_allowed`, which the
    /// member's `check_allowed` hook lets in; an existing group is marked.
    pub(super) async fn ensure_allowed_group(&self, name: &str) -> Result<(), StepError> {
        let path = ["hub", "api", "groups", name];
        if let Answer::NotFound = self.call(Method::POST, &path, None).await? {
            return Err(StepError::retryable(format!(
                "the hub at {} has no group API yet (404 creating group `{name}`)",
                self.base
            )));
        }
        let properties = ["hub", "api", "groups", name, "properties"];
        match self
            .call(
                Method::PUT,
                &properties,
                Some(json!({ "hubwright_allowed": true })),
            )
            .await?
        {
            Answer::Ok(_) => Ok(()),
            Answer::NotFound | Answer::Conflict => Err(StepError::retryable(format!(
                "group `{name}` changed at the hub at {} while it was being marked",
                self.base
            ))),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &[&str],
        body: Option<Value>,
    ) -> Result<Answer, StepError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                StepError::permanent(format!("the hub's URL {} cannot have a path", self.base))
            })?
            .pop_if_empty()
            .extend(path);
        let what = format!("{method} {}", url.path());
        let mut request = self.http.request(method, url).header(
            reqwest::header::AUTHORIZATION,
            format!("token {}", self.token.expose()),
        );
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = hubwright_telemetry::client::send(request, "jupyterhub", &what)
            .await
            .map_err(|err| {
                StepError::retryable(format!(
                    "cannot reach the hub at {} ({what}): {err}",
                    self.base
                ))
                .with_detail(json!({ "hub": self.base.as_str(), "status": 0 }))
            })?;
        let status = response.status();
        match status {
            StatusCode::CONFLICT => return Ok(Answer::Conflict),
            StatusCode::NOT_FOUND => return Ok(Answer::NotFound),
            _ if status.is_success() => {
                let model = response.json().await.map_err(|err| {
                    StepError::retryable(format!(
                        "the hub at {} answered {what} with no JSON: {err}",
                        self.base
                    ))
                })?;
                return Ok(Answer::Ok(model));
            }
            _ => {}
        }
        let headers = response.headers().clone();
        let said = response
            .json::<Value>()
            .await
            .ok()
            .and_then(|body| body["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason").to_owned());
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                "; the hub does not accept hubwright's service token (was it built without one, or with another?)"
            }
            _ => "",
        };
        let message = format!(
            "the hub at {} answered {} to {what}: {said}{hint}",
            self.base,
            status.as_u16()
        );
        Err(http_refusal(status, &headers, message)
            .with_detail(json!({ "hub": self.base.as_str(), "status": status.as_u16() })))
    }
}

fn user(model: Value, name: &str) -> Result<HubUser, StepError> {
    serde_json::from_value(model).map_err(|err| {
        StepError::retryable(format!(
            "the hub's model of user `{name}` is not one: {err}"
        ))
    })
}
