//! `hubwright approval ...`: an approver lists what waits for them and
//! approves it from the command line.

use std::process::Output;

use super::*;
use crate::BIN;

impl Lab {
    /// Runs the CLI with `args` as `token`, with a config file of its own.
    async fn cli(&self, token: &str, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(BIN);
        command
            .args(args)
            .env("HUBWRIGHT_URL", &self.server.url)
            .env("HUBWRIGHT_TOKEN", token)
            .env(
                "HUBWRIGHT_CONFIG",
                scratch_dir("approval-cli").join("config.yaml"),
            )
            .env_remove("HUBWRIGHT_CONTEXT")
            .stdin(std::process::Stdio::null());
        tokio::time::timeout(WITHIN, command.output())
            .await
            .expect("the CLI finished")
            .expect("run the CLI")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn an_approver_lists_and_approves_from_the_cli_and_the_developer_who_asked_is_told_who_may() {
    let lab = Lab::new().await;
    let env = lab.create(&lab.alice, "gated", json!({})).await;
    let approval = lab.pending(&lab.bob, &env).await;
    let id = approval["id"].as_str().unwrap();

    let listed = lab.cli(&lab.bob, &["approval", "list", "-o", "name"]).await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert_eq!(text(&listed.stdout).trim(), id);
    let table = lab.cli(&lab.bob, &["approval", "list"]).await;
    let table = text(&table.stdout);
    assert!(table.contains("REQUESTED BY"), "{table}");
    assert!(table.contains("alice"), "{table}");

    let own = lab
        .cli(
            &lab.alice,
            &["approval", "approve", id, "--comment", "mine"],
        )
        .await;
    assert!(!own.status.success(), "a developer cannot approve");
    let said = text(&own.stderr);
    assert!(said.contains("needs approval by operator"), "{said}");
    assert!(said.contains("403"), "{said}");

    let approved = lab
        .cli(
            &lab.bob,
            &[
                "approval",
                "approve",
                id,
                "--comment",
                "budget confirmed",
                "-o",
                "json",
            ],
        )
        .await;
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let shown: Value = serde_json::from_slice(&approved.stdout).unwrap();
    assert_eq!(shown["state"], "approved");
    assert_eq!(shown["comment"], "budget confirmed");
    lab.until_phase(&env, "ready").await;
}
