//! Create an environment and follow it live, list it, see refusals with their
//! exit codes, delete it.

use hubwright_testkit::server::ApiServer;
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};

use super::{hubwright, stderr, stdout};
use crate::BIN;

#[tokio::test]
async fn the_cli_asks_for_follows_lists_and_deletes_an_environment_through_the_api() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("cli");
    let workflows = write_workflow(
        &dir.join("workflows"),
        "lab",
        r#"
name: lab
ttl: { default: 1h, maximum: 4h }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: warm-up, kind: sleep, with: { duration: 300ms } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#,
    );
    // The API and the worker in one process, as `hubwright serve` runs by default.
    let serve = ApiServer::start_process(
        BIN,
        &db,
        &workflows,
        &[
            "--worker",
            "--poll-interval",
            "200ms",
            "--rescue-interval",
            "500ms",
        ],
    )
    .await;
    let server = serve.url.clone();

    // The first admin token goes straight into the database; the rest are
    // asked of the API with it.
    let bootstrapped = hubwright(
        &db,
        &server,
        None,
        &[
            "admin",
            "token",
            "create",
            "--role",
            "admin",
            "--subject",
            "root",
        ],
    )
    .await;
    assert!(bootstrapped.status.success(), "{}", stderr(&bootstrapped));
    let admin = stdout(&bootstrapped).trim().to_owned();
    let created = hubwright(
        &db,
        &server,
        Some(&admin),
        &[
            "token",
            "create",
            "--role",
            "developer",
            "--subject",
            "alice",
        ],
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));
    let token = stdout(&created).trim().to_owned();
    assert!(
        token.starts_with("hw_"),
        "the token is printed once on stdout"
    );

    let create = hubwright(
        &db,
        &server,
        Some(&token),
        &[
            "env",
            "create",
            "lab-1",
            "--template",
            "lab",
            "--ttl",
            "2h",
            "--wait",
        ],
    )
    .await;
    assert_eq!(create.status.code(), Some(0), "{}", stderr(&create));
    assert_eq!(stdout(&create).trim(), "lab-1 is ready");
    let progress = stderr(&create);
    for line in [
        "step 1/2 namespace",
        "step namespace succeeded",
        "step 2/2 warm-up",
        "run succeeded",
    ] {
        assert!(
            progress.contains(line),
            "progress shows `{line}`:\n{progress}"
        );
    }

    let listed = hubwright(
        &db,
        &server,
        Some(&token),
        &["env", "list", "--output", "json"],
    )
    .await;
    let items: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("JSON from --output json");
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!(items[0]["phase"], "ready");
    let id = items[0]["id"].as_str().expect("an id").to_owned();

    // It expires in an hour (the template's default TTL): within 2h, not 10m.
    for (within, count) in [("2h", 1), ("10m", 0)] {
        let expiring = hubwright(
            &db,
            &server,
            Some(&token),
            &[
                "env",
                "list",
                "--expiring-within",
                within,
                "--output",
                "json",
            ],
        )
        .await;
        let items: serde_json::Value =
            serde_json::from_slice(&expiring.stdout).expect("JSON from --output json");
        assert_eq!(
            items.as_array().map(Vec::len),
            Some(count),
            "within {within}"
        );
    }

    let again = hubwright(
        &db,
        &server,
        Some(&token),
        &["env", "create", "lab-1", "--template", "lab"],
    )
    .await;
    assert_eq!(again.status.code(), Some(3), "a refusal exits 3");
    assert!(
        stderr(&again).contains("name: alice already has an environment named `lab-1`"),
        "{}",
        stderr(&again)
    );

    let no_token = hubwright(&db, &server, None, &["env", "list"]).await;
    assert_eq!(no_token.status.code(), Some(1));
    assert!(
        stderr(&no_token).contains("set HUBWRIGHT_TOKEN"),
        "{}",
        stderr(&no_token)
    );

    let deleted = hubwright(
        &db,
        &server,
        Some(&token),
        &["env", "delete", &id, "--wait"],
    )
    .await;
    assert_eq!(deleted.status.code(), Some(0), "{}", stderr(&deleted));
    assert_eq!(stdout(&deleted).trim(), "lab-1 is deleted");
    drop(serve);

    let unreachable = hubwright(&db, &server, Some(&token), &["env", "list"]).await;
    assert_eq!(
        unreachable.status.code(),
        Some(4),
        "an unreachable server exits 4"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn the_shipped_workflow_files_are_valid() {
    let workflows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let out = tokio::process::Command::new(BIN)
        .args(["workflows", "check", "--workflows"])
        .arg(&workflows)
        .output()
        .await
        .expect("run the CLI");
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    for line in [
        "jupyterhub/provision: namespace → idp → approval → helm → health → idp-callback",
        "jupyterhub/teardown: helm → idp → namespace",
        "workshop/provision: namespace → idp → helm → health",
    ] {
        assert!(listed.contains(line), "{listed}");
    }
}
