//! The real `helm` (3 and 4) with charts of the kinds zero-to-jupyterhub
//! brings beyond the hub-shaped chart's: a DaemonSet (the image puller), a
//! PriorityClass, a hook (helm 4 waits on hooks with a watch list that must
//! end its initial events), and a kind nobody serves, which helm must call
//! `no matches for kind`, as against a real cluster.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use hubwright_sandbox::apiserver::TestCluster;
use hubwright_sandbox::helm::{HelmVersion, helm_binary, isolated_env};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ApiResource};

const CHART: &str = "apiVersion: v2\nname: kinds\nversion: 0.1.0\n";

const TEMPLATES: &[(&str, &str)] = &[
    (
        "image-puller.yaml",
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: hook-image-puller
spec:
  selector:
    matchLabels: { component: hook-image-puller }
  template:
    metadata:
      labels: { component: hook-image-puller }
    spec:
      containers:
        - { name: pause, image: "registry.k8s.io/pause:3.10" }
"#,
    ),
    (
        "priority.yaml",
        r#"apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: {{ .Release.Name }}-default-priority
value: 0
globalDefault: false
description: "user pods"
"#,
    ),
    (
        "hook.yaml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: pre-install-hook
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-delete-policy: before-hook-creation
data:
  ran: "yes"
"#,
    ),
];

const UNKNOWN: (&str, &str) = (
    "widget.yaml",
    "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
);

/// Writes a chart of `templates` into a scratch directory.
fn chart(templates: &[(&str, &str)]) -> PathBuf {
    let dir = hubwright_testkit::scratch_dir("kinds-chart");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("Chart.yaml"), CHART).unwrap();
    for (name, text) in templates {
        std::fs::write(dir.join("templates").join(name), text).unwrap();
    }
    dir
}

async fn helm(version: HelmVersion, cluster: &TestCluster, home: &Path, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(helm_binary(version).await.unwrap());
    cmd.envs(isolated_env(home))
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig());
    if let Some(context) = cluster.context() {
        cmd.args(["--kube-context", context]);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn installs_a_daemonset_a_priority_class_and_a_hook(version: HelmVersion) {
    let cluster = TestCluster::from_env().await.unwrap();
    let client = cluster.client().await.unwrap();
    let namespace = cluster.unique_name("hw-kinds");
    let release = cluster.unique_name("kinds");
    let priority = format!("{release}-default-priority");
    cluster.delete_on_drop(&namespace);
    cluster.delete_cluster_scoped_on_drop(ApiResource::erase::<PriorityClass>(&()), &priority);
    let home = hubwright_testkit::scratch_dir("helm-kinds");
    let chart = chart(TEMPLATES);
    let chart = chart.to_str().unwrap();
    let ns = ["--namespace", namespace.as_str()];

    let out = helm(
        version,
        &cluster,
        &home,
        &[
            &[
                "upgrade",
                "--install",
                &release,
                chart,
                "--create-namespace",
                "--timeout",
                "2m",
            ][..],
            &ns,
        ]
        .concat(),
    )
    .await;
    assert!(out.status.success(), "{version:?}: {}", text(&out));
    let puller = Api::<DaemonSet>::namespaced(client.clone(), &namespace)
        .get("hook-image-puller")
        .await
        .unwrap();
    assert_eq!(puller.metadata.generation, Some(1));
    let classes: Api<PriorityClass> = Api::all(client.clone());
    assert_eq!(classes.get(&priority).await.unwrap().value, 0);
    let hook = Api::<ConfigMap>::namespaced(client.clone(), &namespace)
        .get("pre-install-hook")
        .await
        .unwrap();
    assert_eq!(hook.data.unwrap()["ran"], "yes");

    let out = helm(
        version,
        &cluster,
        &home,
        &[&["uninstall", &release][..], &ns].concat(),
    )
    .await;
    assert!(out.status.success(), "{version:?}: {}", text(&out));
    assert!(classes.get_opt(&priority).await.unwrap().is_none());
    let _ = std::fs::remove_dir_all(&home);
}

#[tokio::test]
async fn helm_3_installs_a_daemonset_a_priority_class_and_a_hook() {
    installs_a_daemonset_a_priority_class_and_a_hook(HelmVersion::V3).await;
}

#[tokio::test]
async fn helm_4_installs_a_daemonset_a_priority_class_and_waits_for_its_hook() {
    installs_a_daemonset_a_priority_class_and_a_hook(HelmVersion::V4).await;
}

async fn a_kind_nobody_serves_has_no_matches(version: HelmVersion) {
    let cluster = TestCluster::from_env().await.unwrap();
    let namespace = cluster.unique_name("hw-kinds");
    cluster.delete_on_drop(&namespace);
    let home = hubwright_testkit::scratch_dir("helm-kinds");
    let chart = chart(&[UNKNOWN]);
    let release = cluster.unique_name("kinds");
    let out = helm(
        version,
        &cluster,
        &home,
        &[
            "upgrade",
            "--install",
            &release,
            chart.to_str().unwrap(),
            "--create-namespace",
            "--namespace",
            &namespace,
        ],
    )
    .await;
    assert!(!out.status.success(), "{version:?}: {}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no matches for kind \"Widget\" in version \"example.com/v1\""),
        "{version:?}: {}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[tokio::test]
async fn helm_3_says_no_matches_for_a_kind_nobody_serves() {
    a_kind_nobody_serves_has_no_matches(HelmVersion::V3).await;
}

#[tokio::test]
async fn helm_4_says_no_matches_for_a_kind_nobody_serves() {
    a_kind_nobody_serves_has_no_matches(HelmVersion::V4).await;
}
