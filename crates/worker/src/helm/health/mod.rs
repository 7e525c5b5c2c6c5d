//! `health-check`: the durable wait for the hub — its Deployments available,
//! then `GET {url}/hub/health` answering 200 — that reports the hub's URL.
//!
//! Past its deadline the step fails with what it last saw, and, when the
//! template says `on_deadline: rollback`, first undoes the release (the
//! engine's answer to `helm --atomic`, which would block a worker for the
//! whole wait).
//!
//! The URL is the step's `url` when the template gives one; otherwise where
//! the chart exposed the hub: the host of the namespace's Ingress (`https`
//! when its TLS section names the host), else the address the `proxy-public`
//! Service's load balancer got (and its port, when not 80).

use std::sync::Arc;
use std::time::Duration;

use hubwright_state::workflow::Dur;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HelmShared;
use super::cli::{Helm, Release};
use crate::cause::Cause;
use crate::kubernetes::errors::Call;
use crate::kubernetes::namespace_of;
use crate::step::{Outcome, Step, StepContext, StepError};
use crate::values::{environment_values, fill};

mod reach;

use reach::{ingress_url, load_balancer_url, unavailable};

/// Parameters of `health-check`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckParams {
    /// Deployments in the namespace that must be available first.
    #[serde(default = "default_deployments")]
    pub deployments: Vec<String>,
    /// The hub's URL (placeholders allowed), e.g.
    /// `https://{env.name}.{cluster.base_domain}`. Left out: the host of the
    /// namespace's Ingress, else the address the `proxy-public` Service's
    /// load balancer got.
    #[serde(default)]
    pub url: Option<String>,
    /// The health endpoint under the URL.
    #[serde(default = "default_health_path")]
    pub path: String,
    /// How long from the step's first start before it fails.
    #[serde(default = "default_deadline")]
    pub deadline: Dur,
    /// How often to look again.
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// What a hub that never became healthy leaves behind.
    #[serde(default)]
    pub on_deadline: OnDeadline,
    /// The release to roll back (as `helm-release` named it).
    #[serde(default = "super::default_release")]
    pub release: String,
    /// Helm's `--timeout` for the rollback or uninstall.
    #[serde(default = "super::default_timeout")]
    pub rollback_timeout: Dur,
}

/// What `health-check` does when its deadline passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDeadline {
    /// Leave the release as it is, for the operator to look at and retry.
    #[default]
    Keep,
    /// Undo the release: the previous revision, or uninstalled when it had
    /// none (what `helm --atomic` does, but durable).
    Rollback,
}

fn default_deployments() -> Vec<String> {
    vec!["hub".to_owned(), "proxy".to_owned()]
}

fn default_health_path() -> String {
    "/hub/health".to_owned()
}

fn default_deadline() -> Dur {
    Dur::from_secs(600)
}

fn default_interval() -> Dur {
    Dur::from_secs(5)
}

/// `health-check`: waits, durably, for the hub to be up; reports its `url`.
#[derive(Debug, Clone)]
pub struct HealthCheckStep(pub(crate) Arc<HelmShared>);

impl Step for HealthCheckStep {
    const KIND: &'static str = "health-check";
    type Params = HealthCheckParams;

    async fn run(
        &self,
        ctx: &StepContext,
        params: HealthCheckParams,
    ) -> Result<Outcome, StepError> {
        let probe = self.probe(ctx, &params).await?;
        let past_deadline = ctx.now() - ctx.first_started_at > params.deadline.to_chrono();
        let not_healthy =
            |seen: &str| format!("the hub was not healthy within {}: {seen}", params.deadline);
        if !past_deadline || params.on_deadline == OnDeadline::Keep {
            return match probe {
                Probe::Healthy { url, status } => Ok(healthy(&url, status)),
                Probe::NotYet(seen) if past_deadline => {
                    Err(StepError::permanent(not_healthy(&seen)).with_cause(Cause::Timeout))
                }
                Probe::NotYet(seen) => Ok(Outcome::wait(
                    ctx,
                    params.interval.0,
                    format!("waiting for the hub: {seen}"),
                )),
            };
        }

        // Past the deadline, rolling back. An attempt that undid the release
        // and died before failing the step left it off the revision this run
        // installed: fail again, and do not undo twice.
        let target = self.0.target(ctx, &params.release).await?;
        let helm = &target.helm;
        // The values context holds this run's outputs already.
        let installed = target.context["steps"]
            .as_object()
            .and_then(|outputs| installed_revision(outputs, &helm.release));
        let current = helm.status().await?;
        if let Some(undone) = undone_already(&helm.release, installed, current.as_ref()) {
            return Err(StepError::permanent(format!(
                "the hub was not healthy within {}; {undone}",
                params.deadline
            ))
            .with_cause(Cause::Timeout));
        }
        match probe {
            Probe::Healthy { url, status } => Ok(healthy(&url, status)),
            Probe::NotYet(seen) => {
                let undone = match undo(helm, current.as_ref(), params.rollback_timeout.0).await {
                    Ok(undone) => undone,
                    Err(err) => format!("rolling the release back failed: {}", err.message),
                };
                Err(
                    StepError::permanent(format!("{}; {undone}", not_healthy(&seen)))
                        .with_cause(Cause::Timeout),
                )
            }
        }
    }
}

impl HealthCheckStep {
    /// One look: the Deployments, the URL, then `/hub/health`.
    async fn probe(
        &self,
        ctx: &StepContext,
        params: &HealthCheckParams,
    ) -> Result<Probe, StepError> {
        let env = ctx.environment().await?;
        let namespace = namespace_of(&env)?.to_owned();
        let client = self.0.clusters.client(&env.cluster).await?;

        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        for name in &params.deployments {
            let call = Call {
                cluster: &env.cluster,
                verb: "get",
                resource: "deployments",
                name,
            };
            let deployment = deployments
                .get_opt(name)
                .await
                .map_err(|err| call.error(&err))?;
            if let Some(unavailable) = unavailable(name, deployment.as_ref()) {
                return Ok(Probe::NotYet(unavailable));
            }
        }

        let url = match &params.url {
            Some(url) => {
                let values =
                    environment_values(&ctx.input, &env, self.0.clusters.config(&env.cluster).ok());
                let values = crate::values::with_outputs(values, &ctx.outputs().await?);
                fill(url, &values, "url")?
            }
            None => match ingress_url(&client, &env.cluster, &namespace).await? {
                Some(url) => url,
                None => match load_balancer_url(&client, &env.cluster, &namespace).await? {
                    Some(url) => url,
                    None => {
                        return Ok(Probe::NotYet(
                            "no Ingress host, and service proxy-public has no load balancer \
                             address yet"
                                .to_owned(),
                        ));
                    }
                },
            },
        };
        let url = url.trim_end_matches('/').to_owned();
        let health = format!("{url}{}", params.path);
        let probe = hubwright_telemetry::client::send(self.0.http.get(&health), "hub", "health");
        Ok(match probe.await {
            Ok(response) if response.status().is_success() => Probe::Healthy {
                url,
                status: response.status().as_u16(),
            },
            Ok(response) => {
                let status = response.status().as_u16();
                let body: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                Probe::NotYet(format!("GET {health} answered {status}: {body}"))
            }
            Err(err) => Probe::NotYet(format!("GET {health} failed: {err}")),
        })
    }
}

fn healthy(url: &str, status: u16) -> Outcome {
    Outcome::Done(json!({ "url": url, "health": status }))
}

/// The revision an earlier step of this run installed `release` at.
fn installed_revision(outputs: &serde_json::Map<String, Value>, release: &str) -> Option<i64> {
    outputs
        .values()
        .filter(|output| output["release"] == release)
        .find_map(|output| output["revision"].as_i64())
}

/// What an earlier attempt already undid, judged by the release no longer
/// being at the revision this run installed.
fn undone_already(
    release: &str,
    installed: Option<i64>,
    current: Option<&Release>,
) -> Option<String> {
    let installed = installed?;
    match current {
        None => Some(format!(
            "release {release} is gone already (uninstalled by an earlier attempt)"
        )),
        Some(current) if current.version != installed => Some(format!(
            "release {release} is at revision {}, not the {installed} this run installed: rolled back already",
            current.version
        )),
        Some(_) => None,
    }
}

/// Undoes the release that never became healthy, as `helm --atomic` would
/// but from a durable step: back to the previous revision, or uninstalled
/// when it has none. Says what it did.
async fn undo(
    helm: &Helm,
    current: Option<&Release>,
    timeout: Duration,
) -> Result<String, StepError> {
    Ok(match current {
        None => format!(
            "release {} does not exist, nothing to roll back",
            helm.release
        ),
        Some(release) if release.version > 1 => {
            helm.rollback(timeout).await?;
            format!(
                "rolled back release {} from revision {} to {}",
                helm.release,
                release.version,
                release.version - 1
            )
        }
        Some(_) => {
            helm.uninstall(timeout).await?;
            format!(
                "uninstalled release {} (its first revision; nothing to roll back to)",
                helm.release
            )
        }
    })
}

/// What one look at the hub found.
enum Probe {
    Healthy { url: String, status: u16 },
    NotYet(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn release(version: i64) -> Release {
        serde_json::from_value(json!({
            "name": "jh-lab", "version": version, "info": { "status": "deployed" },
        }))
        .unwrap()
    }

    #[test]
    fn the_revision_this_run_installed_comes_from_the_release_steps_output() {
        let outputs = json!({
            "namespace": { "namespace": "jh-lab" },
            "helm": { "release": "jh-lab", "revision": 2, "status": "deployed" },
        });
        let outputs = outputs.as_object().unwrap();
        assert_eq!(installed_revision(outputs, "jh-lab"), Some(2));
        assert_eq!(installed_revision(outputs, "other"), None);
    }

    #[test]
    fn a_release_off_the_installed_revision_was_undone_already() {
        assert_eq!(undone_already("jh-lab", Some(2), Some(&release(2))), None);
        assert_eq!(
            undone_already("jh-lab", Some(2), Some(&release(3))).unwrap(),
            "release jh-lab is at revision 3, not the 2 this run installed: rolled back already"
        );
        assert!(
            undone_already("jh-lab", Some(1), None)
                .unwrap()
                .contains("gone already")
        );
        // Without a release step in the run there is nothing to compare.
        assert_eq!(undone_already("jh-lab", None, Some(&release(3))), None);
    }
}
