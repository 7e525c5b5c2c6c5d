//! helm killed mid-install while its worker lives, and killed with its
//! worker mid-upgrade: the release left `pending-install` or
//! `pending-upgrade` is recovered (uninstalled, or rolled back) once no helm
//! can still be finishing it, and the environment becomes ready. (A worker
//! and its helm killed mid-install: `helm_release`; a hub never healthy:
//! `health` and `helm_release`.)

use std::time::Duration;

use hubwright_sandbox::apiserver::{Fault, KubeApiServer, Verb};
use hubwright_sandbox::helm::HelmVersion;
use hubwright_state::model::{EnvironmentPhase, RunState};
use hubwright_testkit::wait;
use serde_json::json;

use super::{WITHIN, retries, settles};
use crate::helm_release::{helm_output, lab, lab_log, worker};

/// The pid of `parent`'s child process whose command line contains `needle`.
fn child_of(parent: u32, needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid …`: comm may hold spaces, so read after it.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent)
                && String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(needle)
        })
}

/// SIGKILLs the `helm upgrade --install` that `worker` runs.
async fn kill_helm_of(worker: u32, release: &str) {
    let needle = format!("upgrade --install {release}");
    let helm = wait::until_some("helm to run", WITHIN, || async {
        child_of(worker, &needle)
    })
    .await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &helm.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "helm {helm} was running");
}

/// Until the stand-in has seen a request `matches` accepts.
async fn requested(
    standin: &KubeApiServer,
    what: &str,
    matches: impl Fn(&hubwright_sandbox::apiserver::RequestRecord) -> bool,
) {
    wait::until(what, WITHIN, || {
        let seen = standin.requests().iter().any(&matches);
        async move { seen }
    })
    .await;
}

#[tokio::test]
async fn helm_killed_mid_install_while_its_worker_lives_is_retried_and_its_pending_install_recovered()
 {
    let (lab, env) = lab(HelmVersion::V3, "5s").await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    // helm hangs writing the hub Deployment, its release pending-install.
    standin.inject(
        Fault::latency(Duration::from_secs(60))
            .on_verb(Verb::Create)
            .on_resource("deployments")
            .times(1),
    );
    let process = worker(&lab, &env, "worker");
    let environment = lab.request(json!({})).await;
    requested(standin, "helm to write the Deployment", |r| {
        r.verb == Some(Verb::Create) && r.resource.as_deref() == Some("deployments")
    })
    .await;
    kill_helm_of(process.pid(), &environment.namespace).await;

    settles(
        lab.store(),
        environment.id,
        environment.run_id,
        RunState::Succeeded,
        EnvironmentPhase::Ready,
    )
    .await;
    let retried = retries(lab.store(), environment.run_id).await;
    assert!(
        retried.first().is_some_and(|event| event
            .message
            .contains("helm upgrade --install was killed by signal 9")),
        "{retried:#?}"
    );
    let events = lab
        .store()
        .events(environment.run_id, 0, 1000)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|event| event.message.contains("is pending-install since")),
        "it waited for a helm that might still be running: {events:#?}"
    );
    let output = helm_output(&lab.store().steps(environment.run_id).await.unwrap());
    assert_eq!(
        (output["status"].as_str(), output["revision"].as_i64()),
        (Some("deployed"), Some(1))
    );
    let log = std::fs::read_to_string(lab_log(&lab, "worker")).unwrap();
    assert!(
        log.contains("recovering a release an interrupted attempt left pending"),
        "{log}"
    );
}

#[tokio::test]
async fn a_worker_and_its_helm_killed_mid_upgrade_leave_pending_upgrade_which_is_rolled_back_then_upgraded()
 {
    let (lab, env) = lab(HelmVersion::V3, "5s").await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    let first = worker(&lab, &env, "first");
    let environment = lab.request(json!({})).await;
    wait::run_state(lab.store(), environment.run_id, RunState::Succeeded, WITHIN).await;

    // The upgrade hangs recording its outcome: revision 2 stays pending-upgrade.
    let second_revision = format!("sh.helm.release.v1.{}.v2", environment.namespace);
    standin.inject(
        Fault::latency(Duration::from_secs(60))
            .on_verb(Verb::Update)
            .on_resource("secrets")
            .on_name(&second_revision)
            .times(1),
    );
    let upgrade = lab.run_again(environment.id, "provision").await;
    requested(standin, "helm to record revision 2", |r| {
        r.verb == Some(Verb::Update) && r.name.as_deref() == Some(second_revision.as_str())
    })
    .await;
    let helm = format!("upgrade --install {}", environment.namespace);
    let helm = child_of(first.pid(), &helm).expect("helm is running");
    first.kill9().await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &helm.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "helm {helm} outlived its worker");

    let _second = worker(&lab, &env, "second");
    settles(
        lab.store(),
        environment.id,
        upgrade,
        RunState::Succeeded,
        EnvironmentPhase::Ready,
    )
    .await;
    let events = lab.store().events(upgrade, 0, 1000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|event| event.message.contains("is pending-upgrade since")),
        "{events:#?}"
    );
    let output = helm_output(&lab.store().steps(upgrade).await.unwrap());
    // 1 installed, 2 interrupted, 3 the rollback to 1, 4 the upgrade again.
    assert_eq!(
        (output["status"].as_str(), output["revision"].as_i64()),
        (Some("deployed"), Some(4))
    );
    let log = std::fs::read_to_string(lab_log(&lab, "second")).unwrap();
    assert!(
        log.contains(r#""status":"pending-upgrade""#)
            && log.contains("recovering a release an interrupted attempt left pending"),
        "{log}"
    );
}
