//! The real `helm` (3.17.2 and 4.3.1, from [`helm_binary`]) against
//! [`TestCluster::from_env`]: the Kubernetes stand-in, or a real cluster when
//! `KUBECONFIG` is set. Installs, upgrades, status, invalid values, a release
//! stuck in `pending-install`, and uninstall, with helm's own words recorded.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use hubwright_sandbox::apiserver::{Fault, TestCluster, Verb};
use hubwright_sandbox::helm::{HelmVersion, chart_dir, helm_binary, isolated_env};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

/// One helm version pointed at one cluster, with its state in a scratch dir.
struct Helm {
    bin: PathBuf,
    home: PathBuf,
    cluster: TestCluster,
    client: Client,
    namespace: String,
    release: String,
}

impl Helm {
    async fn new(version: HelmVersion) -> Self {
        let bin = helm_binary(version).await.unwrap();
        let cluster = TestCluster::from_env().await.unwrap();
        let client = cluster.client().await.unwrap();
        let namespace = cluster.unique_name("hw-helm");
        cluster.delete_on_drop(&namespace);
        Helm {
            bin,
            home: hubwright_testkit::scratch_dir("helm"),
            namespace,
            release: cluster.unique_name("hub"),
            cluster,
            client,
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.envs(isolated_env(&self.home))
            .arg("--kubeconfig")
            .arg(self.cluster.kubeconfig());
        if let Some(context) = self.cluster.context() {
            cmd.args(["--kube-context", context]);
        }
        cmd.args(["--namespace", &self.namespace])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// `helm upgrade --install RELEASE CHART --create-namespace` (no `--wait`) plus `extra`.
    fn install_args<'a>(&'a self, chart: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "upgrade",
            "--install",
            &self.release,
            chart,
            "--create-namespace",
        ];
        args.extend_from_slice(extra);
        args
    }

    async fn install(&self, extra: &[&str]) -> Output {
        let chart = chart_dir();
        let chart = chart.to_str().unwrap();
        self.run(&self.install_args(chart, extra)).await
    }

    async fn status(&self) -> Value {
        let out = self.run(&["status", &self.release, "-o", "json"]).await;
        assert_ok(&out, "helm status");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The release's Secrets, by helm's labels, as (name, status label).
    async fn release_secrets(&self) -> Vec<(String, String)> {
        let selector = format!("owner=helm,name={}", self.release);
        let list = self
            .api::<Secret>()
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap();
        let mut out: Vec<(String, String)> = list
            .items
            .iter()
            .map(|s| {
                let status = s.labels().get("status").cloned().unwrap_or_default();
                (s.name_any(), status)
            })
            .collect();
        out.sort();
        out
    }

    fn secret_name(&self, revision: u32) -> String {
        format!("sh.helm.release.v1.{}.v{revision}", self.release)
    }

    async fn cleanup(self) {
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.namespace, &DeleteParams::default())
            .await;
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Asserts helm failed and returns its stderr.
fn assert_failed(out: &Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should have failed:\nstdout: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

async fn installs_the_chart_and_upgrades_it(version: HelmVersion) {
    let helm = Helm::new(version).await;
    let out = helm
        .install(&["--set", "hub.config.JupyterHub.admin_access=true"])
        .await;
    assert_ok(&out, "helm upgrade --install");
    assert!(
        text(&out.stdout).contains("STATUS: deployed"),
        "{}",
        text(&out.stdout)
    );

    // The chart's objects, labelled as z2jh labels them.
    for name in ["hub", "proxy"] {
        let d = helm.api::<Deployment>().get(name).await.unwrap();
        let labels = d.labels();
        assert_eq!(labels["app"], "jupyterhub");
        assert_eq!(labels["component"], name);
        assert_eq!(labels["release"], helm.release);
    }
    let svc = helm.api::<Service>().get("proxy-public").await.unwrap();
    assert_eq!(svc.spec.unwrap().type_.as_deref(), Some("LoadBalancer"));
    let cm = helm.api::<ConfigMap>().get("hub").await.unwrap();
    assert_eq!(
        cm.data.unwrap()["hub.config.yaml"],
        "JupyterHub:\n  admin_access: true\n"
    );
    let hub_secret = helm.api::<Secret>().get("hub").await.unwrap();
    let values = &hub_secret.data.unwrap()["values.yaml"].0;
    assert_eq!(
        String::from_utf8_lossy(values),
        "hub:\n  config:\n    JupyterHub:\n      admin_access: true\n  extraConfig: {}"
    );

    // The release Secret, found by helm's labels.
    assert_eq!(
        helm.release_secrets().await,
        vec![(helm.secret_name(1), "deployed".to_owned())]
    );
    let status = helm.status().await;
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(status["version"], 1);

    // An upgrade is revision 2; revision 1 is superseded.
    let out = helm
        .install(&["--set", "proxy.service.type=ClusterIP"])
        .await;
    assert_ok(&out, "helm upgrade");
    let status = helm.status().await;
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(status["version"], 2);
    assert_eq!(
        helm.release_secrets().await,
        vec![
            (helm.secret_name(1), "superseded".to_owned()),
            (helm.secret_name(2), "deployed".to_owned())
        ]
    );
    let svc = helm.api::<Service>().get("proxy-public").await.unwrap();
    assert_eq!(svc.spec.unwrap().type_.as_deref(), Some("ClusterIP"));
    helm.cleanup().await;
}

#[tokio::test]
async fn helm_3_installs_the_chart_and_an_upgrade_bumps_the_revision() {
    installs_the_chart_and_upgrades_it(HelmVersion::V3).await;
}

#[tokio::test]
async fn helm_4_installs_the_chart_and_an_upgrade_bumps_the_revision() {
    installs_the_chart_and_upgrades_it(HelmVersion::V4).await;
}

#[tokio::test]
async fn helm_3_talks_to_the_stand_in_as_observed_on_a_real_server() {
    let helm = Helm::new(HelmVersion::V3).await;
    let Some(server) = helm.cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's request log");
    };
    assert_ok(&helm.install(&[]).await, "helm upgrade --install");
    let log = server.requests();
    let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
    for p in [
        "/version",
        "/api",
        "/apis",
        "/openapi/v3",
        "/openapi/v3/api/v1",
        "/openapi/v3/apis/apps/v1",
    ] {
        assert!(paths.contains(&p), "helm 3 did not ask for {p}: {paths:?}");
    }
    let selector = format!("labelSelector=name%3D{}%2Cowner%3Dhelm", helm.release);
    assert!(
        log.iter()
            .any(|r| r.verb == Some(Verb::List) && r.query.contains(&selector)),
        "release Secrets listed by label"
    );
    let ns = helm.namespace.clone();
    let secret = helm.secret_name(1);
    let creates = |resource: &str, name: &str| {
        let get = log.iter().position(|r| {
            r.verb == Some(Verb::Get)
                && r.resource.as_deref() == Some(resource)
                && r.name.as_deref() == Some(name)
        });
        let post = log.iter().position(|r| {
            r.verb == Some(Verb::Create)
                && r.resource.as_deref() == Some(resource)
                && r.namespace.as_deref() == Some(&ns)
        });
        (get, post)
    };
    for (resource, name) in [
        ("secrets", "hub"),
        ("configmaps", "hub"),
        ("services", "proxy-public"),
        ("deployments", "hub"),
    ] {
        let (get, post) = creates(resource, name);
        assert!(
            get.is_some() && post.is_some() && get < post,
            "GET then POST of {resource}/{name}"
        );
    }
    // The release Secret is created (protobuf, by the typed client) and updated when deployed.
    let release_writes: Vec<(&str, Option<&str>)> = log
        .iter()
        .filter(|r| {
            r.resource.as_deref() == Some("secrets")
                && (r.name.as_deref() == Some(&secret)
                    || (r.verb == Some(Verb::Create)
                        && r.content_type.as_deref()
                            == Some("application/vnd.kubernetes.protobuf")))
        })
        .map(|r| (r.method.as_str(), r.content_type.as_deref()))
        .collect();
    assert_eq!(
        release_writes,
        vec![
            ("POST", Some("application/vnd.kubernetes.protobuf")),
            ("PUT", Some("application/vnd.kubernetes.protobuf"))
        ]
    );
    helm.cleanup().await;
}

#[tokio::test]
async fn helm_4_creates_objects_by_server_side_apply() {
    let helm = Helm::new(HelmVersion::V4).await;
    let Some(server) = helm.cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's request log");
    };
    assert_ok(&helm.install(&[]).await, "helm upgrade --install");
    let log = server.requests();
    assert!(log.iter().any(|r| r.path == "/openapi/v3"));
    for (resource, name) in [
        ("secrets", "hub"),
        ("configmaps", "hub"),
        ("services", "proxy-public"),
        ("deployments", "hub"),
        ("deployments", "proxy"),
    ] {
        let apply = log.iter().find(|r| {
            r.verb == Some(Verb::Patch)
                && r.resource.as_deref() == Some(resource)
                && r.name.as_deref() == Some(name)
        });
        let apply = apply.unwrap_or_else(|| panic!("no apply of {resource}/{name}"));
        assert_eq!(
            apply.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(apply.field_manager.as_deref(), Some("helm"));
        assert!(
            apply.query.contains("fieldValidation=Strict"),
            "{}",
            apply.query
        );
    }
    assert!(
        !log.iter()
            .any(|r| r.verb == Some(Verb::Create) && r.resource.as_deref() == Some("deployments"))
    );
    helm.cleanup().await;
}

async fn invalid_values_fail_with_helms_schema_message(version: HelmVersion, expected: &str) {
    let helm = Helm::new(version).await;
    let out = helm.install(&["--set-json", "hub.image.tag=42"]).await;
    let stderr = assert_failed(&out, "an install with invalid values");
    eprintln!("helm {} on invalid values:\n{stderr}", version.version());
    assert!(
        stderr.contains(
            "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nhub-shaped:\n"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(expected), "{stderr}");
    assert!(
        helm.release_secrets().await.is_empty(),
        "no release recorded"
    );
    helm.cleanup().await;
}

#[tokio::test]
async fn helm_3_refuses_values_that_break_the_chart_schema() {
    invalid_values_fail_with_helms_schema_message(
        HelmVersion::V3,
        "- hub.image.tag: Invalid type. Expected: string, given: integer",
    )
    .await;
}

#[tokio::test]
async fn helm_4_refuses_values_that_break_the_chart_schema() {
    invalid_values_fail_with_helms_schema_message(
        HelmVersion::V4,
        "- at '/hub/image/tag': got number, want string",
    )
    .await;
}

/// Starts an install that the stand-in holds on its first Deployment write,
/// SIGKILLs helm once the release Secret says `pending-install`, and checks
/// what helm then says about the release.
async fn a_killed_install_stays_pending(version: HelmVersion) {
    let helm = Helm::new(version).await;
    let Some(server) = helm.cluster.standin() else {
        return eprintln!("skipped on a real cluster: needs the stand-in's latency injection");
    };
    // Helm 3 creates objects with POST, helm 4 applies them with PATCH.
    let verb = match version {
        HelmVersion::V3 => Verb::Create,
        HelmVersion::V4 => Verb::Patch,
    };
    server.inject(
        Fault::latency(Duration::from_secs(600))
            .on_verb(verb)
            .on_resource("deployments"),
    );
    let chart = chart_dir();
    let mut child = helm
        .command(&helm.install_args(chart.to_str().unwrap(), &[]))
        .spawn()
        .unwrap();
    let start = Instant::now();
    while helm.release_secrets().await != vec![(helm.secret_name(1), "pending-install".to_owned())]
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no pending-install release"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Wait until helm is inside the held request, then SIGKILL it.
    while !server
        .requests()
        .iter()
        .any(|r| r.verb == Some(verb) && r.resource.as_deref() == Some("deployments"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "helm never wrote a Deployment"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    server.clear_faults();

    let status = helm.status().await;
    assert_eq!(status["info"]["status"], "pending-install");
    assert_eq!(status["version"], 1);

    let out = helm.install(&[]).await;
    let stderr = assert_failed(&out, "an install over a pending one");
    eprintln!(
        "helm {} over a pending install:\n{stderr}",
        version.version()
    );
    assert_eq!(
        stderr,
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n"
    );

    // Uninstall clears the stuck release; then an install works.
    assert_ok(&helm.run(&["uninstall", &helm.release]).await, "uninstall");
    assert!(helm.release_secrets().await.is_empty());
    assert_ok(&helm.install(&[]).await, "install after uninstall");
    assert_eq!(helm.status().await["info"]["status"], "deployed");
    helm.cleanup().await;
}

#[tokio::test]
async fn helm_3_reports_a_killed_install_as_pending_and_refuses_another_operation() {
    a_killed_install_stays_pending(HelmVersion::V3).await;
}

#[tokio::test]
async fn helm_4_reports_a_killed_install_as_pending_and_refuses_another_operation() {
    a_killed_install_stays_pending(HelmVersion::V4).await;
}

async fn uninstall_removes_everything(version: HelmVersion) {
    let helm = Helm::new(version).await;
    assert_ok(&helm.install(&[]).await, "helm upgrade --install");
    assert_ok(
        &helm.install(&["--set", "hub.config.x.y=1"]).await,
        "upgrade",
    );
    let out = helm.run(&["uninstall", &helm.release]).await;
    assert_ok(&out, "helm uninstall");
    assert_eq!(
        text(&out.stdout),
        format!("release \"{}\" uninstalled\n", helm.release)
    );
    for name in ["hub", "proxy"] {
        assert!(
            helm.api::<Deployment>()
                .get_opt(name)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        helm.api::<Service>()
            .get_opt("proxy-public")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        helm.api::<ConfigMap>()
            .get_opt("hub")
            .await
            .unwrap()
            .is_none()
    );
    assert!(helm.api::<Secret>().get_opt("hub").await.unwrap().is_none());
    assert!(helm.release_secrets().await.is_empty());

    let out = helm.run(&["uninstall", &helm.release]).await;
    let stderr = assert_failed(&out, "a second uninstall");
    eprintln!(
        "helm {} on a second uninstall:\n{stderr}",
        version.version()
    );
    assert_eq!(
        stderr,
        format!(
            "Error: uninstall: Release not loaded: {}: release: not found\n",
            helm.release
        )
    );
    let out = helm.run(&["status", &helm.release, "-o", "json"]).await;
    let stderr = assert_failed(&out, "status of an uninstalled release");
    assert_eq!(stderr, "Error: release: not found\n");
    helm.cleanup().await;
}

#[tokio::test]
async fn helm_3_uninstall_removes_every_object_and_a_second_one_says_not_found() {
    uninstall_removes_everything(HelmVersion::V3).await;
}

#[tokio::test]
async fn helm_4_uninstall_removes_every_object_and_a_second_one_says_not_found() {
    uninstall_removes_everything(HelmVersion::V4).await;
}

#[tokio::test]
async fn helm_binary_installs_each_version_once_and_reports_it() {
    for version in HelmVersion::ALL {
        let bin = helm_binary(version).await.unwrap();
        let again = helm_binary(version).await.unwrap();
        assert_eq!(bin, again);
        let out = std::process::Command::new(&bin)
            .args(["version", "--template", "{{.Version}}"])
            .output()
            .unwrap();
        let reported = text(&out.stdout);
        if std::env::var_os("HELM_BIN").is_none() {
            assert_eq!(reported, version.version());
        } else {
            assert!(reported.starts_with(&format!("{}.", version.major())));
        }
    }
}
