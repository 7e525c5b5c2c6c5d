//! Step kinds tested alone: each executed through the real
//! `StepKind::execute` by the testkit's `work` helpers, against a database of
//! its own and a manual clock, and its `Outcome` checked. Kinds that talk to
//! Kubernetes use the sandbox's stand-in, or a real cluster when `KUBECONFIG`
//! is set; tests that need the stand-in's fault injection skip on a real one.

mod builtin;
mod hub_assign;
mod idp;
mod namespace;
mod retry_after;
mod teardown;
mod testkit_kinds;
mod work;

use std::sync::Arc;

use hubwright_sandbox::apiserver::TestCluster;
use hubwright_state::model::ErrorClass;
use hubwright_state::{Clock, ManualClock, SystemClock};
use hubwright_testkit::TestDatabase;
use hubwright_worker::kubernetes::ClusterClients;
use hubwright_worker::{Outcome, StepError};
use serde_json::Value;

/// A database of its own and a manual clock reading the current time.
async fn setup() -> (TestDatabase, ManualClock) {
    let db = TestDatabase::create().await;
    (db, ManualClock::new(SystemClock.now()))
}

/// A Kubernetes API and clients for it as cluster `default`; a stand-in's
/// namespaces terminate quickly (the tests wait for them to go).
async fn cluster() -> (TestCluster, Arc<ClusterClients>) {
    let cluster = TestCluster::from_env_terminating_quickly()
        .await
        .expect("start a Kubernetes API");
    let clients = ClusterClients::new(hubwright_testkit::work::clusters(&cluster));
    (cluster, clients)
}

/// The output of a `Done`, or a panic naming what it was instead.
#[track_caller]
fn done(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Done(output) => output,
        other => panic!("expected Done, got {other:?}"),
    }
}

/// The error of a `Retry`, or a panic naming what it was instead.
#[track_caller]
fn retried(outcome: Outcome) -> StepError {
    match outcome {
        Outcome::Retry(error) => {
            assert_eq!(error.class, ErrorClass::Retryable, "{error:?}");
            error
        }
        other => panic!("expected Retry, got {other:?}"),
    }
}

/// The error of a `Fail`, or a panic naming what it was instead.
#[track_caller]
fn failed(outcome: Outcome) -> StepError {
    match outcome {
        Outcome::Fail(error) => {
            assert_eq!(error.class, ErrorClass::Permanent, "{error:?}");
            error
        }
        other => panic!("expected Fail, got {other:?}"),
    }
}

/// The `until` and `reason` of a `Wait`, or a panic naming what it was instead.
#[track_caller]
fn waiting(outcome: Outcome) -> (chrono::DateTime<chrono::Utc>, String) {
    match outcome {
        Outcome::Wait { until, reason } => (until, reason),
        other => panic!("expected Wait, got {other:?}"),
    }
}
