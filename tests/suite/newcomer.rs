//! The path a newcomer takes, as real processes: `migrate` makes the
//! database it is pointed at, `serve -h` names the secret key `serve` needs,
//! `serve` says at start-up which template lacks a cluster or helm, and the
//! demo's closing hint works when pasted as printed.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use hubwright_state::Store;
use hubwright_testkit::server::ApiServer;
use hubwright_testkit::{TestDatabase, admin_url, scratch_dir, wait, with_database};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

use crate::BIN;

const WITHIN: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `hubwright ARGS` with only `env` of hubwright's own variables set.
async fn hubwright(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .current_dir(repo())
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("HUBWRIGHT_TOKEN")
        .env_remove("HUBWRIGHT_URL")
        .envs(env.iter().copied());
    tokio::time::timeout(WITHIN, command.output())
        .await
        .expect("hubwright finished")
        .expect("run hubwright")
}

/// `script` in bash, from the project's root, with none of hubwright's
/// variables but `env`: what a new terminal has.
async fn bash(script: &str, env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(repo())
        .env_remove("DATABASE_URL")
        .env_remove("HUBWRIGHT_TOKEN")
        .env_remove("HUBWRIGHT_URL")
        .env_remove("HUBWRIGHT_SECRET_KEY")
        .envs(env.iter().copied());
    tokio::time::timeout(WITHIN, command.output())
        .await
        .expect("the commands finished")
        .expect("run bash")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn migrate_creates_the_database_it_is_pointed_at_when_it_does_not_exist() {
    let admin = admin_url();
    let name = format!("hw_test_{}", uuid::Uuid::now_v7().simple());
    let url = with_database(&admin, &name);

    let first = hubwright(&["migrate"], &[("DATABASE_URL", &url)]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout),
        format!("created database {url}\nmigrations applied\n")
    );
    let again = hubwright(&["migrate"], &[("DATABASE_URL", &url)]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), "migrations applied\n");
    let store = Store::connect(&url, 1).await.unwrap();
    assert!(store.migrations_current().await.unwrap());
    store.pool().close().await;

    let mut conn = PgConnection::connect(&admin).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .await
    .unwrap();
}

#[tokio::test]
async fn serve_help_names_the_secret_key_without_which_the_worker_does_not_start() {
    let help = hubwright(&["serve", "-h"], &[]).await;
    assert!(help.status.success());
    let help = text(&help.stdout);
    assert!(help.contains("HUBWRIGHT_SECRET_KEY"), "{help}");
    assert!(help.contains("openssl rand -hex 32"), "{help}");
}

#[tokio::test]
async fn serve_warns_at_start_up_naming_each_template_whose_cluster_or_helm_is_missing() {
    let db = TestDatabase::create().await;
    let home = scratch_dir("newcomer-home");
    let kubeconfig = home.join("no-such-kubeconfig").display().to_string();
    let empty = scratch_dir("no-helm").display().to_string();
    let home = home.display().to_string();
    let env = [
        ("HOME", home.as_str()),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("PATH", empty.as_str()),
        ("HELM_BIN", ""),
    ];
    let server =
        ApiServer::start_process_with_env(BIN, &db, &repo().join("workflows"), &["--worker"], &env)
            .await;
    let warnings: Vec<Value> = server
        .process()
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["level"] == "WARN")
        .collect();
    let about = |template: &str, needle: &str| {
        warnings.iter().any(|line| {
            line["template"] == template
                && line["message"].as_str().is_some_and(|m| {
                    m.contains(&format!("template `{template}`")) && m.contains(needle)
                })
        })
    };
    for template in ["jupyterhub", "workshop"] {
        assert!(about(template, "set HELM_BIN"), "{warnings:#?}");
        assert!(about(template, "cluster `default`"), "{warnings:#?}");
        assert!(about(template, "KUBECONFIG"), "{warnings:#?}");
    }
    assert!(
        !warnings.iter().any(|line| line["template"] == "demo"),
        "the demo template needs neither: {warnings:#?}"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn the_demo_engines_closing_hint_shows_the_run_when_followed_as_written() {
    let db = TestDatabase::create().await;
    let demo = hubwright(&["demo"], &[("DATABASE_URL", &db.url)]).await;
    let printed = text(&demo.stdout);
    assert!(demo.status.success(), "{printed}{}", text(&demo.stderr));
    // The commands are the lines indented by four spaces after the hint.
    let commands: Vec<&str> = printed
        .lines()
        .skip_while(|line| !line.contains("To see it through the API"))
        .filter_map(|line| line.strip_prefix("    "))
        .collect();
    let [serve, token, show] = commands[..] else {
        panic!("three commands expected:\n{printed}");
    };
    let run_id = show.rsplit(' ').next().unwrap();

    // The first in a terminal of its own, on a port of its own (a test must
    // not take 8080): the one change, which the others learn through
    // HUBWRIGHT_URL. It needs no secret key.
    let log = scratch_dir("hint").join("serve.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut server = tokio::process::Command::new("bash")
        // One simple command: bash runs it in its own place (no fork), so
        // killing this child stops the server.
        .args([
            "-c",
            &format!("{serve} --listen 127.0.0.1:0 --log-format json"),
        ])
        .current_dir(repo())
        .env_remove("DATABASE_URL")
        .env_remove("HUBWRIGHT_SECRET_KEY")
        .stdout(Stdio::null())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let address = wait::until_some("serve listening", WITHIN, || {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        async move {
            log.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| line["message"] == "api listening")
                .and_then(|line| line["address"].as_str().map(str::to_owned))
        }
    })
    .await;

    let url = format!("http://{address}");
    let shown = bash(&format!("{token}\n{show}"), &[("HUBWRIGHT_URL", &url)]).await;
    let stdout = text(&shown.stdout);
    assert!(shown.status.success(), "{stdout}{}", text(&shown.stderr));
    assert!(stdout.contains(run_id), "{stdout}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    server.kill().await.ok();
    db.drop_now().await;
}
