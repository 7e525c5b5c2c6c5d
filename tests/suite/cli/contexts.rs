//! Named contexts: set once, used by every API command, tokens never printed.

use std::os::unix::fs::PermissionsExt;

use hubwright_testkit::scratch_dir;

use super::{Served, finish, stderr, stdout};
use crate::BIN;

/// The CLI with only a config file: no server or token in the environment.
fn with_config(config: &std::path::Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env("HUBWRIGHT_CONFIG", config)
        .env_remove("HUBWRIGHT_URL")
        .env_remove("HUBWRIGHT_TOKEN")
        .env_remove("HUBWRIGHT_CONTEXT");
    command
}

#[tokio::test]
async fn a_context_supplies_server_and_token_from_the_file_or_a_command_and_never_prints_them() {
    let served = Served::start().await;
    served
        .ok(
            &served.alice,
            &["env", "create", "lab-1", "--template", "lab"],
        )
        .await;
    let config = scratch_dir("cli-contexts")
        .join("nested")
        .join("config.yaml");

    // The token arrives on stdin, as `token create | config set-context` pipes it.
    let mut set = with_config(
        &config,
        &[
            "--server",
            &served.serve.url,
            "config",
            "set-context",
            "alice",
            "--token-stdin",
            "--use",
        ],
    );
    set.stdin(std::process::Stdio::piped());
    let mut child = set
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the CLI");
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(format!("{}\n", served.alice).as_bytes())
            .await
            .expect("write the token");
    }
    let out = child.wait_with_output().await.expect("the CLI finished");
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(&config)
        .expect("the file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only its owner reads the file");

    // Bob's token comes from a command each time, as from a password manager.
    let secret = config.with_file_name("bob.token");
    std::fs::write(&secret, &served.bob).expect("write bob's token");
    let command = format!("cat {}", secret.display());
    let out = finish(with_config(
        &config,
        &[
            "--server",
            &served.serve.url,
            "config",
            "set-context",
            "bob",
            "--token-command",
            &command,
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));

    let listed = finish(with_config(&config, &["env", "list", "-o", "name"])).await;
    assert_eq!(
        stdout(&listed),
        "lab-1\n",
        "the current context is alice's: {}",
        stderr(&listed)
    );
    let bobs = finish(with_config(
        &config,
        &["--context", "bob", "env", "list", "-o", "name"],
    ))
    .await;
    assert!(bobs.status.success(), "{}", stderr(&bobs));
    assert_eq!(stdout(&bobs), "", "bob's context sees bob's environments");

    let contexts = finish(with_config(&config, &["config", "get-contexts"])).await;
    let table = stdout(&contexts);
    assert!(
        table.contains("*         alice") && table.contains("file"),
        "{table}"
    );
    assert!(table.contains("command"), "{table}");
    let view = finish(with_config(&config, &["config", "view"])).await;
    for shown in [stdout(&view), table, stderr(&contexts)] {
        assert!(
            !shown.contains(&served.alice),
            "a token was printed: {shown}"
        );
        assert!(!shown.contains(&served.bob), "a token was printed: {shown}");
    }
    assert!(
        stdout(&view).contains("token: REDACTED"),
        "{}",
        stdout(&view)
    );

    let switched = finish(with_config(&config, &["config", "use-context", "bob"])).await;
    assert!(switched.status.success(), "{}", stderr(&switched));
    let current = finish(with_config(&config, &["config", "current-context"])).await;
    assert_eq!(stdout(&current), "bob\n");

    let unknown = finish(with_config(
        &config,
        &["--context", "staging", "env", "list"],
    ))
    .await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no context named `staging` (known: alice, bob)"),
        "{}",
        stderr(&unknown)
    );
    served.db.drop_now().await;
}
