//! `charts/hubwright` with the real `helm`: it lints clean, renders exactly the
//! committed manifests (a drift check), refuses bad values through its schema
//! with helm's message, and installs into the Kubernetes stand-in (or the
//! cluster `KUBECONFIG` names).
//!
//! `HUBWRIGHT_UPDATE_EXPECTED=1 cargo nextest run --features testkit --test chart`
//! rewrites `charts/hubwright/tests/expected/*.yaml` after an intended change.

use std::path::{Path, PathBuf};
use std::process::Output;

use hubwright_sandbox::apiserver::TestCluster;
use hubwright_sandbox::helm::{HelmVersion, helm_binary, isolated_env};
use hubwright_testkit::scratch_dir;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/hubwright")
}

/// Runs `helm <args>` with its state in a scratch directory.
async fn helm(version: HelmVersion, args: &[&str]) -> Output {
    let bin = helm_binary(version).await.unwrap();
    let home = scratch_dir("chart-helm");
    tokio::process::Command::new(bin)
        .args(args)
        .envs(isolated_env(&home))
        .output()
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn template(extra: &[&str]) -> Output {
    let chart = chart().display().to_string();
    let mut args = vec!["template", "hubwright", &chart, "--namespace", "hubwright"];
    args.extend_from_slice(extra);
    helm(HelmVersion::V3, &args).await
}

/// Compares `helm template` with the committed file, or rewrites it when
/// `HUBWRIGHT_UPDATE_EXPECTED=1`.
async fn renders_as_committed(name: &str, extra: &[&str]) {
    let out = template(extra).await;
    assert!(out.status.success(), "{}", text(&out));
    let rendered = String::from_utf8(out.stdout).unwrap();
    let expected = chart().join("tests/expected").join(name);
    if std::env::var("HUBWRIGHT_UPDATE_EXPECTED").is_ok_and(|v| v == "1") {
        std::fs::write(&expected, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&expected).unwrap_or_default();
    assert!(
        committed == rendered,
        "{} differs from `helm template`; if the change is intended, rerun with \
         HUBWRIGHT_UPDATE_EXPECTED=1 and commit the file. Rendered:\n{rendered}",
        expected.display()
    );
}

#[tokio::test]
async fn the_chart_lints_clean_with_default_and_production_values_on_helm_3_and_4() {
    let production = chart().join("ci/production-values.yaml");
    let production = production.display().to_string();
    let chart = chart().display().to_string();
    for version in HelmVersion::ALL {
        for extra in [vec![], vec!["--values", production.as_str()]] {
            let mut args = vec!["lint", "--strict", chart.as_str()];
            args.extend(extra);
            let out = helm(version, &args).await;
            let said = text(&out);
            assert!(out.status.success(), "{version:?}: {said}");
            assert!(said.contains("0 chart(s) failed"), "{said}");
            assert!(!said.contains("[WARNING]"), "{said}");
        }
    }
}

#[tokio::test]
async fn default_values_render_the_committed_manifests() {
    renders_as_committed("default.yaml", &[]).await;
}

#[tokio::test]
async fn production_values_render_the_committed_manifests() {
    let production = chart().join("ci/production-values.yaml");
    renders_as_committed(
        "production.yaml",
        &["--values", &production.display().to_string()],
    )
    .await;
}

#[tokio::test]
async fn bad_values_are_refused_with_a_message_naming_the_value() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "api.replicas=-1"],
            "api.replicas: Must be greater than or equal to 0",
        ),
        (
            &["--set", "secret.existingSecret="],
            "secret.existingSecret: String length must be greater than or equal to 1",
        ),
        (&["--set", "secret.secretKey=short"], "secret.secretKey"),
        (&["--set", "rbac.scope=everywhere"], "rbac.scope"),
        (&["--set", "worker.lease=forever"], "worker.lease"),
        (
            &["--set", "worker.terminationGracePeriodSeconds=20"],
            "worker.terminationGracePeriodSeconds (20) must be longer than worker.shutdownGrace (30s)",
        ),
        (
            &["--set", "rbac.scope=namespaced"],
            "rbac.scope namespaced needs rbac.namespaced.namespaces",
        ),
        (
            &["--set", "serviceMonitor.enabled=true"],
            "serviceMonitor was replaced by metrics.podMonitor",
        ),
        (
            &["--set", "metrics.prometheusRule.operatorWaitFor=soon"],
            "metrics.prometheusRule.operatorWaitFor",
        ),
        (
            &["--set", "replicas=3"],
            "Additional property replicas is not allowed",
        ),
        (
            &["--set", "api.oidc.issuer=https://sso.example.org"],
            "api.oidc.audience",
        ),
        (
            &["--set", "worker.webhook.url=ftp://example.org"],
            "worker.webhook.url",
        ),
    ];
    for (args, message) in cases {
        let out = template(args).await;
        let said = text(&out);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            said.contains(message),
            "{args:?}: `{message}` not in:\n{said}"
        );
    }
}

#[tokio::test]
async fn a_created_secret_keeps_a_given_key_and_generates_a_valid_one_otherwise() {
    let out = template(&[
        "--set",
        "secret.existingSecret=",
        "--set",
        "secret.databaseUrl=postgres://db/hw",
    ])
    .await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let docs: Vec<serde_yaml_ng::Value> = said
        .split("\n---\n")
        .filter_map(|doc| serde_yaml_ng::from_str(doc).ok())
        .collect();
    let secret = docs
        .iter()
        .find(|d| d["kind"] == "Secret")
        .expect("a Secret is rendered");
    let decode = |key: &str| {
        let b64 = secret["data"][key].as_str().unwrap();
        let out = std::process::Command::new("base64")
            .arg("-d")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b64.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(decode("database-url"), "postgres://db/hw");
    let key = decode("secret-key");
    assert!(
        key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "{key}"
    );
    assert_eq!(
        secret["metadata"]["annotations"]["helm.sh/hook"], "pre-install,pre-upgrade",
        "the migrations hook finds it"
    );
}

#[tokio::test]
async fn the_chart_installs_into_the_cluster() {
    let cluster = TestCluster::from_env().await.unwrap();
    let kubeconfig = cluster.kubeconfig().display().to_string();
    let chart = chart().display().to_string();
    let kube_context: Vec<&str> = cluster
        .context()
        .map(|c| vec!["--kube-context", c])
        .unwrap_or_default();
    for version in HelmVersion::ALL {
        // Cluster-scoped names carry the release name; each version installs its own.
        let name = format!("hubwright-{}", version.major());
        let namespace = cluster.unique_name("hubwright");
        // helm leaves the namespace it created; the cluster deletes it.
        cluster.delete_on_drop(&namespace);
        let mut args = vec![
            "install",
            name.as_str(),
            chart.as_str(),
            "--namespace",
            namespace.as_str(),
            "--create-namespace",
            "--kubeconfig",
            kubeconfig.as_str(),
            // The migrations Job is a hook helm waits on; nothing runs it here.
            "--no-hooks",
            "--set",
            "rbac.jupyterhubClusterScoped=true",
        ];
        args.extend(&kube_context);
        let out = helm(version, &args).await;
        assert!(out.status.success(), "{version:?}: {}", text(&out));
        let client = cluster.client().await.unwrap();
        let api = kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(
            client.clone(),
            &namespace,
        );
        for component in ["api", "worker"] {
            let deployment = api.get(&format!("{name}-{component}")).await.unwrap();
            assert!(deployment.spec.unwrap().replicas == Some(2));
        }
        let roles = kube::Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(client);
        roles.get(&format!("{name}-environments")).await.unwrap();
        let uninstall = helm(
            version,
            &[
                "uninstall",
                &name,
                "--namespace",
                &namespace,
                "--kubeconfig",
                &kubeconfig,
            ]
            .iter()
            .copied()
            .chain(
                cluster
                    .context()
                    .map(|c| ["--kube-context", c])
                    .into_iter()
                    .flatten(),
            )
            .collect::<Vec<_>>(),
        )
        .await;
        assert!(uninstall.status.success(), "{}", text(&uninstall));
    }
}
