//! hubwright's integration suite: one test binary, a module per area. Tests
//! run against real Postgres, real processes of the test build of the binary
//! (`hubwright-test`), and the sandbox's real oidc-provider, JupyterHub and
//! helm; the Kubernetes API is the sandbox's stand-in, or the cluster in
//! `KUBECONFIG` (`just e2e`).
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

/// The test build of the `hubwright` binary.
const BIN: &str = env!("CARGO_BIN_EXE_hubwright-test");

mod api {
    mod audit;
    mod environments;
    mod headers;
    mod input;
    mod limits;
    mod oidc;
    mod openapi;
    mod parameters;
    mod policy;
    mod principals;
    mod probes;
    mod problems;
    mod queue;
    mod rate_limit;
    mod runs;
    mod streams;
    mod template_reload;
    mod templates;
    mod tokens;
}
mod approvals;
mod chaos;
mod chart;
mod chart_monitoring;
mod cli;
mod cli_retry;
mod console;
mod demo;
mod e2e;
mod faults;
mod health;
mod helm_release;
mod http_clients;
mod idp;
mod metrics;
mod namespace;
mod newcomer;
mod outage;
mod pools;
mod processes;
mod retention;
mod runner;
mod sandbox {
    mod apiserver;
    mod helm;
    mod helm_kinds;
    mod jupyterhub;
    mod oidc;
    mod oidc_bundle;
    mod portforward;
    mod ports;
}
mod scale_out;
mod teardown;
mod tracing;
mod ttl;
mod worker {
    mod jupyterhub_values;
    mod keycloak;
    mod steps;
}
