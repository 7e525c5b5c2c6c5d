//! What the chart gives Prometheus and Grafana, rendered by the real `helm`
//! and checked by the real `promtool` (Debian's `prometheus` package; `just
//! promtool-up` installs it): every pod's `metrics` port with probes, the
//! PodMonitor scraping them, the dashboard ConfigMap, and alerts that
//! `promtool check rules` accepts, that fire when they should
//! (`charts/hubwright/tests/alerts.test.yaml`) and that link to a runbook
//! section of docs/operations.md. `HUBWRIGHT_SKIP_PROMTOOL=1` skips the
//! promtool checks, saying so.

use std::path::{Path, PathBuf};

use hubwright_sandbox::helm::{HelmVersion, helm_binary, isolated_env};
use hubwright_testkit::scratch_dir;
use serde_yaml_ng::Value;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/hubwright")
}

/// The production values' manifests, as YAML documents.
async fn production() -> Vec<Value> {
    let bin = helm_binary(HelmVersion::V3).await.unwrap();
    let values = chart().join("ci/production-values.yaml");
    let out = tokio::process::Command::new(bin)
        .args(["template", "hubwright"])
        .arg(chart())
        .args(["--namespace", "hubwright", "--values"])
        .arg(values)
        .envs(isolated_env(&scratch_dir("chart-monitoring")))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split("\n---\n")
        .filter_map(|doc| serde_yaml_ng::from_str::<Value>(doc).ok())
        .filter(|doc| doc.get("kind").is_some())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|doc| doc["kind"] == kind && doc["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// `promtool` from `HUBWRIGHT_PROMTOOL` or `PATH`; `None` (the test passes,
/// saying so) only with `HUBWRIGHT_SKIP_PROMTOOL=1`.
fn promtool() -> Option<PathBuf> {
    if std::env::var("HUBWRIGHT_SKIP_PROMTOOL").is_ok_and(|skip| skip == "1") {
        eprintln!("SKIPPED: HUBWRIGHT_SKIP_PROMTOOL=1");
        return None;
    }
    let bin = std::env::var_os("HUBWRIGHT_PROMTOOL")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("promtool"))
                    .find(|bin| bin.is_file())
            })
        });
    Some(bin.unwrap_or_else(|| {
        panic!(
            "promtool is not installed: `just promtool-up` installs Debian's prometheus package \
             (or set HUBWRIGHT_PROMTOOL, or HUBWRIGHT_SKIP_PROMTOOL=1 to skip)"
        )
    }))
}

fn run_promtool(bin: &Path, dir: &Path, args: &[&str]) {
    let out = std::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn both_deployments_serve_metrics_and_probes_on_a_named_port_that_a_pod_monitor_scrapes() {
    let docs = production().await;
    for component in ["api", "worker"] {
        let deployment = find(&docs, "Deployment", &format!("hubwright-{component}"));
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            args.windows(2)
                .any(|pair| pair == ["--metrics-listen", "0.0.0.0:9090"]),
            "{component}: {args:?}"
        );
        let ports = container["ports"].as_sequence().unwrap();
        assert!(
            ports
                .iter()
                .any(|port| port["name"] == "metrics" && port["containerPort"] == 9090),
            "{component}: {ports:?}"
        );
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            assert_eq!(
                container[probe]["httpGet"]["path"], path,
                "{component} {probe}"
            );
        }
    }
    let worker =
        &find(&docs, "Deployment", "hubwright-worker")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(worker["readinessProbe"]["httpGet"]["port"], "metrics");

    let monitor = &find(&docs, "PodMonitor", "hubwright")["spec"];
    assert_eq!(monitor["podMetricsEndpoints"][0]["port"], "metrics");
    assert_eq!(monitor["podMetricsEndpoints"][0]["path"], "/metrics");
    assert!(
        monitor["podMetricsEndpoints"][0]
            .get("bearerTokenSecret")
            .is_none(),
        "the metrics port needs no token"
    );
    let components = &monitor["selector"]["matchExpressions"][0];
    assert_eq!(components["key"], "app.kubernetes.io/component");
    assert_eq!(
        components["values"],
        serde_yaml_ng::from_str::<Value>("[api, worker]").unwrap()
    );
}

/// Every PromQL expression of the dashboard, with Grafana's variables
/// given values Prometheus accepts.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|panel| panel["type"] != "row")
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_owned();
            panel["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |target| (title.clone(), target["expr"].as_str().unwrap().to_owned()))
        })
        .map(|(title, expr)| {
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$namespace", ".*");
            (title, expr)
        })
        .collect()
}

#[tokio::test]
async fn the_dashboard_is_a_sidecar_configmap_whose_queries_promtool_accepts() {
    let docs = production().await;
    let configmap = find(&docs, "ConfigMap", "hubwright-dashboard");
    assert_eq!(configmap["metadata"]["labels"]["grafana_dashboard"], "1");
    let json = configmap["data"]["hubwright.json"].as_str().unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(json).unwrap();
    let queries = dashboard_queries(&dashboard);
    let shown: String = queries.iter().map(|(_, expr)| expr.as_str()).collect();
    for metric in [
        "hubwright_http_requests_total",
        "hubwright_queue_depth",
        "hubwright_queue_oldest_due_seconds",
        "hubwright_step_executions_total",
        "hubwright_step_failures_total",
        "hubwright_time_to_ready_seconds_bucket",
        "hubwright_environments_expired_total",
        "hubwright_expiry_warnings_total",
        "hubwright_webhook_deliveries_total",
    ] {
        assert!(
            shown.contains(metric),
            "the dashboard does not show {metric}"
        );
    }
    let Some(promtool) = promtool() else { return };
    // promtool parses PromQL only in rule files: one recording rule per query.
    let rules: Vec<serde_json::Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| serde_json::json!({ "record": format!("dashboard:query_{i}"), "expr": expr }))
        .collect();
    let dir = scratch_dir("dashboard-promql");
    let file = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
    std::fs::write(dir.join("dashboard.yaml"), file.to_string()).unwrap();
    run_promtool(&promtool, &dir, &["check", "rules", "dashboard.yaml"]);
}

#[tokio::test]
async fn the_alerts_pass_promtool_fire_when_they_should_and_link_to_their_runbook() {
    let docs = production().await;
    let rule = find(&docs, "PrometheusRule", "hubwright");
    let rules = rule["spec"]["groups"][0]["rules"].as_sequence().unwrap();
    let alerts: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(
        alerts,
        [
            "HubwrightRunsWaitingOnOperator",
            "HubwrightStepsFailing",
            "HubwrightQueueBacklog",
            "HubwrightNoWorkerHeartbeats",
            "HubwrightWebhookDeliveryFailing",
            "HubwrightEnvironmentsPastExpiry",
        ]
    );
    let guide = std::fs::read_to_string(chart().join("../../docs/operations.md")).unwrap();
    for rule in rules {
        let alert = rule["alert"].as_str().unwrap();
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = format!("#{}", alert.to_lowercase());
        assert!(
            url.ends_with(&format!("docs/operations.md{anchor}")),
            "{alert}: {url}"
        );
        assert!(
            guide.contains(&format!("\n### {alert}\n")),
            "docs/operations.md has no section `### {alert}` for {url}"
        );
    }
    let Some(promtool) = promtool() else { return };
    let dir = scratch_dir("alerts");
    let spec = serde_yaml_ng::to_string(&rule["spec"]).unwrap();
    std::fs::write(dir.join("rules.yaml"), spec).unwrap();
    std::fs::copy(
        chart().join("tests/alerts.test.yaml"),
        dir.join("alerts.test.yaml"),
    )
    .unwrap();
    run_promtool(&promtool, &dir, &["check", "rules", "rules.yaml"]);
    run_promtool(&promtool, &dir, &["test", "rules", "alerts.test.yaml"]);
}
