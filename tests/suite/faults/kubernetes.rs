//! The Kubernetes API (the stand-in's fault injection) answering 429 with
//! `Retry-After`, 500, 503 with `Retry-After`, not answering in time, and
//! resetting the connection: once, each environment becomes ready; for
//! good, it fails naming the last answer. (403 and 401 are permanent at
//! once: `namespace::faults`.)

use std::time::Duration;

use hubwright_sandbox::apiserver::{Fault, FaultAction, Verb};
use hubwright_state::model::{EnvironmentPhase, ErrorClass, RunState};
use hubwright_testkit::lab::{Lab, Requested};
use serde_json::json;

use super::{retries, settles};

/// One `namespace` step: three attempts, two seconds each.
const TEMPLATE: &str = r#"
name: hub
namespace: "hwf-{name}"
workflows:
  provision:
    steps:
      - name: namespace
        kind: namespace
        timeout: 2s
        retry: { max_attempts: 3, initial_delay: 50ms, max_delay: 200ms }
  teardown:
    steps:
      - { name: namespace, kind: namespace-delete }
"#;

/// The server-side apply of `requested`'s namespace, which follows its
/// creation: a fault there hits one environment only.
fn on_apply(fault: Fault, requested: &Requested) -> Fault {
    fault
        .on_verb(Verb::Patch)
        .on_resource("namespaces")
        .on_name(&requested.namespace)
}

fn unavailable_for(seconds: u64) -> Fault {
    let mut fault = Fault::status(503);
    fault.action = FaultAction::Status {
        code: 503,
        retry_after: Some(seconds),
    };
    fault
}

#[tokio::test]
async fn each_transient_kubernetes_fault_once_is_retried_and_the_environment_becomes_ready() {
    let lab = Lab::new(TEMPLATE).await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    // (fault, what the retry's event must say, the least pause before the retry)
    let cells = [
        (
            Fault::too_many_requests(2),
            "answered 429 TooManyRequests",
            Duration::from_secs(2),
        ),
        (
            Fault::status(500),
            "answered 500 InternalError",
            Duration::ZERO,
        ),
        (
            unavailable_for(1),
            "answered 503 ServiceUnavailable",
            Duration::from_secs(1),
        ),
        (
            Fault::latency(Duration::from_secs(30)),
            "step namespace timed out after 2s",
            Duration::ZERO,
        ),
        (
            Fault::drop_connection(),
            "cannot reach cluster `default`",
            Duration::ZERO,
        ),
    ];
    // Requested before any worker runs, so each fault is in place first.
    let mut requested = Vec::new();
    for (fault, _, _) in &cells {
        let environment = lab.request(json!({})).await;
        standin.inject(on_apply(fault.clone(), &environment).times(1));
        requested.push(environment);
    }
    let _worker = lab.worker("w1");

    for ((_, says, least), environment) in cells.iter().zip(&requested) {
        let (env, run_id) = (environment.id, environment.run_id);
        settles(
            lab.store(),
            env,
            run_id,
            RunState::Succeeded,
            EnvironmentPhase::Ready,
        )
        .await;
        let retried = retries(lab.store(), run_id).await;
        assert_eq!(retried.len(), 1, "{says}: retried once: {retried:#?}");
        assert!(retried[0].message.contains(says), "{}", retried[0].message);
        let retry_at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(retried[0].data.as_ref().unwrap()["retry_at"].clone()).unwrap();
        let pause = (retry_at - retried[0].at).to_std().unwrap_or_default();
        assert!(
            pause >= *least,
            "{says}: retried after {pause:?}, asked for {least:?}"
        );
        let steps = lab.store().steps(run_id).await.unwrap();
        assert_eq!(steps[0].attempts, 2, "{says}");
    }
}

#[tokio::test]
async fn kubernetes_failing_or_hanging_for_good_fails_the_environment_naming_the_last_answer() {
    let lab = Lab::new(TEMPLATE).await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    let failing = lab.request(json!({})).await;
    standin.inject(on_apply(Fault::status(500), &failing));
    let hanging = lab.request(json!({})).await;
    standin.inject(on_apply(Fault::latency(Duration::from_secs(30)), &hanging));
    let _worker = lab.worker("w1");

    for (environment, says) in [
        (&failing, "answered 500 InternalError to apply namespaces"),
        (&hanging, "step namespace timed out after 2s"),
    ] {
        let (env, run_id) = (environment.id, environment.run_id);
        settles(
            lab.store(),
            env,
            run_id,
            RunState::Failed,
            EnvironmentPhase::Failed,
        )
        .await;
        let run = lab.store().run(run_id).await.unwrap();
        let error = run.error.unwrap();
        assert!(error.message.contains(says), "{}", error.message);
        assert_eq!(error.class, ErrorClass::Retryable, "retries ran out");
        assert_eq!(lab.store().steps(run_id).await.unwrap()[0].attempts, 3);
        let environment = lab.store().environment(env).await.unwrap();
        assert!(
            environment
                .last_error
                .as_deref()
                .is_some_and(|last| last.contains(says)),
            "the environment says why: {:?}",
            environment.last_error
        );
    }
}
