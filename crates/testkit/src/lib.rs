//! hubwright-testkit: what only hubwright's tests use.
//!
//! - [`TestDatabase`]: a fresh, migrated Postgres database per test.
//! - [`browser`]: the web console's browser tests, Node scripts in Debian's
//!   chromium with axe-core, leaving a screenshot and the HTML when they fail.
//! - [`steps`]: step kinds whose behaviour a test controls (block, flaky, fail,
//!   record a side effect, wait N polls), registered by the test build of the
//!   binary (`hubwright-test`, in `tests/`).
//! - [`process`]: start real `hubwright` processes and SIGKILL, SIGSTOP, SIGCONT
//!   or SIGTERM them mid-step.
//! - [`factory`]: runs in any state, without a worker.
//! - [`wait`]: poll the database until a run reaches a state.
//! - [`server`]: the API in-process on its own port, or a real
//!   `hubwright serve --api` process, and an HTTP client for either.
//! - [`lab`]: a database, a Kubernetes API and a template for the environment
//!   steps.
//! - [`keycloak`]: a fake Keycloak admin API from recorded answers.
//! - [`openmetrics`]: a strict reader of OpenMetrics 1.0 text, for scrapes
//!   that asked for it.
//! - [`otlp`]: an OpenTelemetry collector (OTLP/HTTP, protobuf) that keeps
//!   the spans a `serve --otel-endpoint` process exports.
//! - [`tcp_proxy`]: a proxy in front of Postgres that a test cuts and restores,
//!   to play a database outage.
//! - [`postgres`]: a PostgreSQL server of the test's own, which it may
//!   restart without disturbing the tests that share the main one.
//! - [`work`]: one step kind executed alone through the real `StepKind::execute`,
//!   against a test database and a manual clock.
//!
//! The Kubernetes API stand-in and the launchers of oidc-provider, JupyterHub
//! and helm are product parts of the sandbox (`hubwright-sandbox`), which the
//! tests use too. Never linked into a release binary.

pub mod browser;
pub mod console;
pub mod cookies;
mod db;
pub mod factory;
pub mod harness;
pub mod hub_health;
pub mod keycloak;
pub mod lab;
pub mod openmetrics;
pub mod otlp;
pub mod postgres;
pub mod process;
pub mod server;
pub mod steps;
pub mod tcp_proxy;
pub mod wait;
pub mod work;

pub use db::{TestDatabase, admin_url, with_database};

/// The `HUBWRIGHT_SECRET_KEY` of test workers: a fixed key, so a test can open
/// what a worker process sealed.
pub const TEST_SECRET_KEY: &str =
    "test:5f1e0c3a9b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468";

/// The keys of [`TEST_SECRET_KEY`].
pub fn test_secret_keys() -> hubwright_state::secrets::SecretKeys {
    hubwright_state::secrets::SecretKeys::parse(TEST_SECRET_KEY).expect("a valid test key")
}

/// What the test build of the binary adds to the release build: the
/// testkit's step kinds and armed crash points.
pub fn extensions() -> hubwright_cli::Extensions {
    hubwright_cli::Extensions {
        register_steps: steps::register,
        crash_point: process::crash_point,
    }
}

/// Writes `yaml` as `dir/<name>.yaml` and returns the directory, for tests that
/// need a workflow of their own.
pub fn write_workflow(dir: &std::path::Path, name: &str, yaml: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("create workflow dir");
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).expect("write workflow");
    dir.to_owned()
}

/// A fresh empty directory under the system temp dir for one test.
pub fn scratch_dir(label: &str) -> std::path::PathBuf {
    hubwright_sandbox::scratch_dir(label).expect("create scratch dir")
}
