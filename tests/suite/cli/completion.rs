//! `hubwright completion`: scripts each shell accepts, naming the commands.

use super::{finish, stderr, stdout};
use crate::BIN;

#[tokio::test]
async fn completion_scripts_load_in_their_shell_and_name_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let mut command = tokio::process::Command::new(BIN);
        command.args(["completion", shell]);
        let out = finish(command).await;
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in ["env", "run", "template", "config", "set-context", "output"] {
            assert!(script.contains(word), "{shell} completes `{word}`");
        }
    }

    // bash itself loads the script and registers the completion.
    let mut bash = tokio::process::Command::new("bash");
    bash.args([
        "-c",
        r#"source <("$BIN" completion bash) && complete -p hubwright"#,
    ])
    .env("BIN", BIN);
    let out = finish(bash).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("-F _hubwright hubwright"),
        "{}",
        stdout(&out)
    );
}
