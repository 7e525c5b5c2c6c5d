//! The `hubwright` binary as people and scripts run it, against a real
//! `hubwright serve` process and real Postgres.

mod audit;
mod bench;
mod check;
mod completion;
mod contexts;
mod lifecycle;
mod names;
mod pools;
mod watch;

use std::process::Output;
use std::time::Duration;

use hubwright_testkit::TestDatabase;
use hubwright_testkit::server::ApiServer;
use hubwright_testkit::{scratch_dir, write_workflow};

use crate::BIN;

/// Runs the CLI with `args` against `server` as `token`, with a config file
/// of its own so the machine's contexts never leak in.
pub(crate) async fn hubwright(
    db: &TestDatabase,
    server: &str,
    token: Option<&str>,
    args: &[&str],
) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("HUBWRIGHT_URL", server)
        .env(
            "HUBWRIGHT_CONFIG",
            scratch_dir("cli-config").join("config.yaml"),
        )
        .env_remove("HUBWRIGHT_TOKEN")
        .env_remove("HUBWRIGHT_CONTEXT");
    if let Some(token) = token {
        command.env("HUBWRIGHT_TOKEN", token);
    }
    finish(command).await
}

/// Runs `command` to the end, with a deadline.
async fn finish(mut command: tokio::process::Command) -> Output {
    command.stdin(std::process::Stdio::null());
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the CLI finished")
        .expect("run the CLI")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `hubwright serve` process (API and worker) over a two-step `lab`
/// template, and tokens for an admin, an operator and two developers.
struct Served {
    db: TestDatabase,
    serve: ApiServer,
    operator: String,
    alice: String,
    bob: String,
}

impl Served {
    async fn start() -> Self {
        let db = TestDatabase::create().await;
        let dir = scratch_dir("cli");
        let workflows = write_workflow(
            &dir.join("workflows"),
            "lab",
            r#"
name: lab
description: A lab for the CLI tests.
ttl: { default: 1h, maximum: 4h }
parameters:
  size: { type: integer, default: 1, minimum: 1, maximum: 8, description: How big. }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: warm-up, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#,
        );
        let serve = ApiServer::start_process(
            BIN,
            &db,
            &workflows,
            &["--worker", "--poll-interval", "100ms"],
        )
        .await;
        let admin = token(&db, &serve.url, None, "admin", "root").await;
        let operator = token(&db, &serve.url, Some(&admin), "operator", "olga").await;
        let alice = token(&db, &serve.url, Some(&admin), "developer", "alice").await;
        let bob = token(&db, &serve.url, Some(&admin), "developer", "bob").await;
        Self {
            db,
            serve,
            operator,
            alice,
            bob,
        }
    }

    /// The CLI as the holder of `token`.
    async fn run(&self, token: &str, args: &[&str]) -> Output {
        hubwright(&self.db, &self.serve.url, Some(token), args).await
    }

    /// The CLI as the holder of `token`, which must succeed; its stdout.
    async fn ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.run(token, args).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "hubwright {}: {}",
            args.join(" "),
            stderr(&out)
        );
        stdout(&out)
    }
}

/// A token made with `admin` (or, without one, straight in the database).
async fn token(
    db: &TestDatabase,
    server: &str,
    admin: Option<&str>,
    role: &str,
    subject: &str,
) -> String {
    let args: Vec<&str> = match admin {
        None => vec![
            "admin",
            "token",
            "create",
            "--role",
            role,
            "--subject",
            subject,
        ],
        Some(_) => vec!["token", "create", "--role", role, "--subject", subject],
    };
    let out = hubwright(db, server, admin, &args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// A document the CLI printed as JSON.
fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|err| panic!("JSON ({err}): {out}"))
}
