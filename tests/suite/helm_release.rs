//! The `helm-release` and `helm-uninstall` steps with the real `helm` (3 and 4,
//! from the PyPI wheels the testkit installs) against the Kubernetes stand-in
//! (or a real cluster with `KUBECONFIG`), installing the testkit's chart shaped
//! like zero-to-jupyterhub's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use hubwright_sandbox::apiserver::{Fault, Verb};
use hubwright_sandbox::helm::{HelmVersion, chart_dir, helm_binary, isolated_env};
use hubwright_state::model::{ErrorClass, RunState};
use hubwright_testkit::lab::{Lab, WITHIN};
use hubwright_testkit::process::Process;
use hubwright_testkit::{hub_health, scratch_dir, wait};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::{Value, json};

use crate::BIN;

const VALUES: &str = r#"hub:
  image:
    tag: {{ params.hub_tag }}
  config:
    Authenticator:
      admin_users: [{{ env.owner | tojson }}]
    hubwright:
      namespace: {{ env.namespace | tojson }}
      release: {{ release | tojson }}
proxy:
  service:
    type: ClusterIP
"#;

fn template(chart: &Path, timeout: &str) -> String {
    format!(
        r#"
name: hub
namespace: "hwr-{{name}}"
parameters:
  hub_tag: {{ type: string, default: '"4.2.0"' }}
workflows:
  provision:
    steps:
      - {{ name: namespace, kind: namespace }}
      - name: helm
        kind: helm-release
        retry: {{ max_attempts: 3, initial_delay: 100ms, max_delay: 500ms }}
        with: {{ chart: "{}", values: values.yaml.j2, timeout: {timeout} }}
  teardown:
    steps:
      - {{ name: helm, kind: helm-uninstall }}
      - {{ name: namespace, kind: namespace-delete }}
"#,
        chart.display()
    )
}

/// A lab with the chart template and its values, and the environment a
/// worker process needs to run `version` of helm in isolation.
pub(crate) async fn lab(version: HelmVersion, timeout: &str) -> (Lab, Vec<(String, String)>) {
    lab_of(version, &template(&chart_dir(), timeout)).await
}

async fn lab_of(version: HelmVersion, template: &str) -> (Lab, Vec<(String, String)>) {
    let lab = Lab::new(template).await;
    std::fs::write(lab.workflows.join("values.yaml.j2"), VALUES).unwrap();
    let helm = helm_binary(version).await.unwrap();
    let home = scratch_dir("helm-home");
    let mut env: Vec<(String, String)> = isolated_env(&home)
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.display().to_string()))
        .collect();
    env.push(("HELM_BIN".to_owned(), helm.display().to_string()));
    (lab, env)
}

pub(crate) fn worker(lab: &Lab, env: &[(String, String)], name: &str) -> Process {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    lab.worker_process(BIN, name, &env)
}

pub(crate) fn helm_output(lab_steps: &[hubwright_state::model::Step]) -> Value {
    lab_steps[1].output.clone().unwrap()
}

async fn installs_upgrades_and_uninstalls(version: HelmVersion) {
    let (lab, env) = lab(version, "2m").await;
    let _worker = worker(&lab, &env, "worker");
    let requested = lab.request(json!({})).await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;

    let output = helm_output(&lab.store().steps(requested.run_id).await.unwrap());
    assert_eq!(
        output["release"],
        requested.namespace.as_str(),
        "named after the namespace"
    );
    assert_eq!(output["revision"], 1);
    assert_eq!(output["status"], "deployed");
    assert_eq!(output["chart"], "hub-shaped");
    let client = lab.client().await;
    let hub = Api::<Deployment>::namespaced(client.clone(), &requested.namespace)
        .get("hub")
        .await
        .unwrap();
    let image = hub.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert!(image.ends_with(":4.2.0"), "{image}");
    let config = Api::<ConfigMap>::namespaced(client.clone(), &requested.namespace)
        .get("hub")
        .await
        .unwrap();
    let rendered = serde_json::to_string(&config.data).unwrap();
    assert!(
        rendered.contains("alice@example.com"),
        "values came from the template: {rendered}"
    );
    assert!(rendered.contains(&requested.namespace));

    let again = lab.run_again(requested.id, "provision").await;
    wait::run_state(lab.store(), again, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        helm_output(&lab.store().steps(again).await.unwrap())["revision"],
        2
    );

    let teardown = lab.teardown(requested.id).await;
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    let steps = lab.store().steps(teardown).await.unwrap();
    assert_eq!(steps[0].output.as_ref().unwrap()["uninstalled"], true);
    let gone = lab.run_again(requested.id, "teardown").await;
    wait::run_state(lab.store(), gone, RunState::Succeeded, WITHIN).await;
    let steps = lab.store().steps(gone).await.unwrap();
    assert_eq!(
        steps[0].output.as_ref().unwrap()["uninstalled"],
        false,
        "not found is done"
    );
}

#[tokio::test]
async fn helm_3_installs_upgrades_and_uninstalls_the_hub() {
    installs_upgrades_and_uninstalls(HelmVersion::V3).await;
}

#[tokio::test]
async fn helm_4_installs_upgrades_and_uninstalls_the_hub() {
    installs_upgrades_and_uninstalls(HelmVersion::V4).await;
}

#[tokio::test]
async fn values_the_chart_rejects_fail_verbatim_and_a_fixed_template_completes_on_retry() {
    let (lab, env) = lab(HelmVersion::V3, "2m").await;
    let _worker = worker(&lab, &env, "worker");
    // An unquoted number where the chart's schema wants a string.
    let requested = lab.request(json!({"hub_tag": "42"})).await;
    let run = wait::run_state(lab.store(), requested.run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains("values don't meet the specifications of the schema(s)"),
        "{message}"
    );
    assert!(message.contains("hub.image.tag"), "{message}");
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );
    assert_eq!(
        lab.store().steps(requested.run_id).await.unwrap()[1].attempts,
        1
    );

    // The operator fixes the template and retries the failed step.
    std::fs::write(
        lab.workflows.join("values.yaml.j2"),
        VALUES.replace(
            "tag: {{ params.hub_tag }}",
            "tag: {{ params.hub_tag | string | tojson }}",
        ),
    )
    .unwrap();
    lab.store()
        .retry_run(requested.run_id, None, "ops", chrono::Utc::now())
        .await
        .unwrap();
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
}

#[tokio::test]
async fn a_release_a_crash_left_pending_is_recovered_before_installing_again() {
    let (lab, env) = lab(HelmVersion::V3, "5s").await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    // helm hangs writing the hub Deployment, with its release marked
    // pending-install; then the worker and its helm die.
    standin.inject(
        Fault::latency(Duration::from_secs(60))
            .on_verb(Verb::Create)
            .on_resource("deployments")
            .times(1),
    );
    let first = worker(&lab, &env, "first");
    let requested = lab.request(json!({})).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !standin
        .requests()
        .iter()
        .any(|r| r.resource.as_deref() == Some("deployments") && r.verb == Some(Verb::Create))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "helm never got to the Deployment"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9().await;
    let killed = std::process::Command::new("pkill")
        .args([
            "-KILL",
            "-f",
            &format!("upgrade --install {}", requested.namespace),
        ])
        .status()
        .unwrap();
    assert!(killed.success(), "helm was running");
    standin.clear_faults();

    let _second = worker(&lab, &env, "second");
    lab.waiting_for(requested.run_id, "is pending-install since")
        .await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let output = helm_output(&lab.store().steps(requested.run_id).await.unwrap());
    assert_eq!(output["status"], "deployed");
    let log = std::fs::read_to_string(lab_log(&lab, "second")).unwrap();
    assert!(
        log.contains("recovering a release an interrupted attempt left pending"),
        "{log}"
    );
}

pub(crate) fn lab_log(lab: &Lab, name: &str) -> PathBuf {
    lab.workflows.parent().unwrap().join(format!("{name}.log"))
}

/// The chart template with a health check after the release that probes
/// `url` only (no Deployments: nothing makes them available here) and rolls
/// the release back when its one-second deadline passes.
fn template_rolling_back(url: &str) -> String {
    template(&chart_dir(), "2m").replace(
        "  teardown:",
        &format!(
            "      - name: health\n        kind: health-check\n        with: {{ url: \"{url}\", deployments: [], deadline: 1s, interval: 100ms, on_deadline: rollback }}\n  teardown:"
        ),
    )
}

/// The labels of helm's release Secret for `revision`.
async fn release_record(
    lab: &Lab,
    namespace: &str,
    revision: u32,
) -> Option<BTreeMap<String, String>> {
    Api::<Secret>::namespaced(lab.client().await, namespace)
        .get_opt(&format!("sh.helm.release.v1.{namespace}.v{revision}"))
        .await
        .unwrap()
        .map(|secret| secret.metadata.labels.unwrap_or_default())
}

#[tokio::test]
async fn an_upgrade_never_healthy_is_rolled_back_when_the_template_says_so() {
    let (url, status) = hub_health::endpoint(200).await;
    let (lab, env) = lab_of(HelmVersion::V3, &template_rolling_back(&url)).await;
    let _worker = worker(&lab, &env, "worker");
    let requested = lab.request(json!({})).await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;

    // The next revision never answers.
    status.store(503, Ordering::SeqCst);
    let again = lab.run_again(requested.id, "provision").await;
    let run = wait::run_state(lab.store(), again, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.starts_with("the hub was not healthy within 1s: GET "),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            "; rolled back release {} from revision 2 to 1",
            requested.namespace
        )),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );
    let current = release_record(&lab, &requested.namespace, 3).await.unwrap();
    assert_eq!(current["status"], "deployed", "revision 3 is the rollback");
    let failed = release_record(&lab, &requested.namespace, 2).await.unwrap();
    assert_eq!(failed["status"], "superseded");

    // Retrying the health step (as after a crash mid-rollback) fails again
    // without rolling back a second time, onto the bad revision.
    lab.store()
        .retry_run(again, Some(2), "ops", chrono::Utc::now())
        .await
        .unwrap();
    let run = wait::run_state(lab.store(), again, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.ends_with(&format!(
            "release {} is at revision 3, not the 2 this run installed: rolled back already",
            requested.namespace
        )),
        "{message}"
    );
    assert!(
        release_record(&lab, &requested.namespace, 4)
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_first_install_never_healthy_is_uninstalled_when_the_template_says_so() {
    let (url, _) = hub_health::endpoint(503).await;
    let (lab, env) = lab_of(HelmVersion::V3, &template_rolling_back(&url)).await;
    let _worker = worker(&lab, &env, "worker");
    let requested = lab.request(json!({})).await;
    let run = wait::run_state(lab.store(), requested.run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.ends_with(&format!(
            "; uninstalled release {} (its first revision; nothing to roll back to)",
            requested.namespace
        )),
        "{message}"
    );
    let hub = Api::<Deployment>::namespaced(lab.client().await, &requested.namespace)
        .get_opt("hub")
        .await
        .unwrap();
    assert!(hub.is_none(), "the release's objects are gone");
    assert!(
        release_record(&lab, &requested.namespace, 1)
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_packaged_chart_in_the_workflows_directory_installs_as_on_an_air_gapped_cluster() {
    let helm = helm_binary(HelmVersion::V3).await.unwrap();
    let packaged = scratch_dir("chart-package");
    let out = std::process::Command::new(&helm)
        .arg("package")
        .arg(chart_dir())
        .arg("--destination")
        .arg(&packaged)
        .envs(isolated_env(&packaged))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = std::fs::read_dir(&packaged)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "tgz"))
        .unwrap();

    // A path relative to the workflows directory, as a template would ship it.
    let (lab, env) = lab_of(
        HelmVersion::V3,
        &template(Path::new("charts/hub-shaped.tgz"), "2m"),
    )
    .await;
    std::fs::create_dir_all(lab.workflows.join("charts")).unwrap();
    std::fs::copy(&archive, lab.workflows.join("charts/hub-shaped.tgz")).unwrap();
    let _worker = worker(&lab, &env, "worker");
    let requested = lab.request(json!({})).await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let output = helm_output(&lab.store().steps(requested.run_id).await.unwrap());
    assert_eq!(output["chart"], "hub-shaped");
    assert_eq!(output["status"], "deployed");
    let hub = Api::<Deployment>::namespaced(lab.client().await, &requested.namespace)
        .get_opt("hub")
        .await
        .unwrap();
    assert!(hub.is_some(), "the chart's objects are there");
}
