//! `serve --metrics-listen`: every role's `/metrics`, `/healthz` and
//! `/readyz` on a port of their own, the step metrics a worker records, and
//! what every metric must carry (`# HELP`, a `reason` from the documented
//! set). `serve` runs in this process on ports of its own; each test is a
//! process of its own under nextest, so the metrics recorder is too.

mod catalogue;
mod endpoint;
mod openmetrics;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hubwright_cli::serve;
use hubwright_state::SystemClock;
use hubwright_state::model::RunState;
use hubwright_testkit::TestDatabase;

/// How long a run of test steps may take.
pub const WITHIN: Duration = Duration::from_secs(30);

/// A template of test steps: one that succeeds, one that fails once with a
/// 503 and then succeeds. Environments of it are ready when it succeeds.
pub const WORKS: &str = r#"
name: works
workflows:
  provision:
    steps:
      - { name: first, kind: noop }
      - { name: flaky, kind: test-flaky, with: { failures: 1 }, retry: { initial_delay: 10ms, max_delay: 10ms } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// A template whose provisioning fails permanently with a 403.
pub const REFUSED: &str = r#"
name: refused
workflows:
  provision:
    steps:
      - { name: refused, kind: test-fail, with: { message: "forbidden by the cluster" } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// `serve <roles…>` running in this process, with `/metrics` on a port of
/// its own (and the API on another when it runs). Stopped when dropped.
pub struct Served {
    /// The metrics port, e.g. `http://127.0.0.1:41234`.
    pub metrics: String,
    /// The API's port, when `--api` (or no role) was asked for.
    pub api: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Served {
    /// Starts `serve <args…> --workflows <workflows>` against `url` with
    /// fast polls and leases; does not wait for it to be ready.
    pub async fn start(url: &str, workflows: &Path, args: &[&str]) -> Self {
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (api, metrics) = (bind().await.unwrap(), bind().await.unwrap());
        let urls = (
            format!("http://{}", api.local_addr().unwrap()),
            format!("http://{}", metrics.local_addr().unwrap()),
        );
        let workflows = workflows.display().to_string();
        let argv = ["--workflows", &workflows, "--rate-limit", "0"]
            .into_iter()
            .chain(["--poll-interval", "50ms", "--lease", "2s"])
            .chain(args.iter().copied());
        let args = serve::parse_args(argv).unwrap_or_else(|err| panic!("serve flags: {err}"));
        let injected = serve::Injected {
            listener: Some(api),
            metrics_listener: Some(metrics),
            clock: Arc::new(SystemClock),
            keys: Some(Arc::new(hubwright_testkit::test_secret_keys())),
        };
        let url = url.to_owned();
        let task = tokio::spawn(async move {
            let shutdown = std::future::pending();
            if let Err(err) = serve::run_until(
                &url,
                args,
                hubwright_testkit::extensions(),
                injected,
                shutdown,
            )
            .await
            {
                panic!("serve stopped: {err:#}");
            }
        });
        Self {
            api: urls.0,
            metrics: urls.1,
            task,
        }
    }

    /// `GET path` on the metrics port: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let reply = hubwright_http::client()
            .get(format!("{}{path}", self.metrics))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        (reply.status().as_u16(), reply.text().await.unwrap())
    }

    /// Waits until `/readyz` on the metrics port answers 200.
    pub async fn ready(&self) {
        hubwright_testkit::wait::until("/readyz on the metrics port", WITHIN, || async {
            self.get("/readyz").await.0 == 200
        })
        .await;
    }
}

/// A database and a directory holding [`WORKS`] and [`REFUSED`].
/// Requests one environment that provisions (`works`) and one whose step
/// fails (`refused`) as `token`, and waits until their runs have ended, so
/// the step, run and failure metrics all have samples.
pub async fn one_success_and_one_failure(served: &Served, db: &TestDatabase, token: &str) {
    let client = hubwright_http::client();
    let mut runs: Vec<uuid::Uuid> = Vec::new();
    for (name, template) in [("ok", "works"), ("no", "refused")] {
        let created: serde_json::Value = client
            .post(format!("{}/v1/environments", served.api))
            .bearer_auth(token)
            .json(&serde_json::json!({ "name": name, "template": template }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        runs.push(created["run_id"].as_str().unwrap().parse().unwrap());
    }
    hubwright_testkit::wait::run_state(&db.store, runs[0], RunState::Succeeded, WITHIN).await;
    hubwright_testkit::wait::run_state(&db.store, runs[1], RunState::Failed, WITHIN).await;
}

pub async fn setup() -> (TestDatabase, std::path::PathBuf) {
    let db = TestDatabase::create().await;
    let dir = hubwright_testkit::scratch_dir("metrics");
    hubwright_testkit::write_workflow(&dir, "works", WORKS);
    hubwright_testkit::write_workflow(&dir, "refused", REFUSED);
    (db, dir)
}

/// The value of the sample `line_start` (name and labels, exactly as
/// rendered) in Prometheus text `text`.
pub fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(line_start)?.trim().parse().ok())
}
