//! `hubwright workflows check --policy`: the policy file checked against the
//! templates before a rollout, with the place and rule of what is wrong.

use hubwright_testkit::{scratch_dir, write_workflow};

use super::{finish, stderr, stdout};
use crate::BIN;

const LAB: &str = r#"
name: lab
parameters:
  profile: { type: string, default: small, enum: [small, gpu] }
workflows:
  provision: { steps: [{ name: hub, kind: noop }] }
"#;

async fn check(workflows: &std::path::Path, policy: &std::path::Path) -> std::process::Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["workflows", "check", "--workflows"])
        .arg(workflows)
        .arg("--policy")
        .arg(policy)
        .env_remove("HUBWRIGHT_POLICY");
    finish(command).await
}

#[tokio::test]
async fn a_policy_is_checked_against_the_templates_and_a_wrong_one_names_its_place() {
    let dir = scratch_dir("policy-check");
    let workflows = write_workflow(&dir.join("workflows"), "lab", LAB);
    let good = dir.join("good.yaml");
    std::fs::write(
        &good,
        "groups:\n  gpu-users: { members: [alice], limits: { environments: 2 } }\n\
         templates:\n  lab: { profiles: { gpu: [gpu-users] } }\n",
    )
    .unwrap();
    let out = check(&workflows, &good).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("is valid: 1 group(s), 0 owner(s) with limits of their own, access rules for 1 template(s)"),
        "{}",
        stdout(&out)
    );

    // A template the catalogue does not have.
    let wrong = dir.join("wrong.yaml");
    std::fs::write(&wrong, "templates:\n  notebook: { groups: [everyone] }\n").unwrap();
    let out = check(&workflows, &wrong).await;
    assert!(!out.status.success(), "{}", stdout(&out));
    let said = stderr(&out);
    assert!(
        said.contains("wrong.yaml") && said.contains("templates.notebook"),
        "names the file and the place: {said}"
    );
}
