//! `hubwright audit` as an admin runs it, and `hubwright admin token`
//! recorded in the trail as the operating system's user who ran it.

use hubwright_testkit::TestDatabase;
use hubwright_testkit::scratch_dir;
use hubwright_testkit::server::ApiServer;

use super::{finish, hubwright, json, stderr, stdout};
use crate::BIN;

/// `hubwright admin token ARGS…` as the OS user `ursula`.
async fn admin_token(db: &TestDatabase, args: &[&str]) -> String {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["admin", "token"])
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("USER", "ursula");
    let out = finish(command).await;
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

#[tokio::test]
async fn admin_token_commands_are_audited_and_audit_lists_and_exports_them() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;
    let root = admin_token(&db, &["create", "--role", "admin", "--subject", "root"]).await;
    let created = hubwright(
        &db,
        &server.url,
        Some(&root),
        &[
            "token",
            "create",
            "--role",
            "developer",
            "--subject",
            "dana",
        ],
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));
    let listed = json(&stdout(
        &hubwright(
            &db,
            &server.url,
            Some(&root),
            &["token", "list", "-o", "json"],
        )
        .await,
    ));
    let dana = listed[0]["id"].as_str().unwrap().to_owned();
    admin_token(&db, &["revoke", &dana]).await;

    let out = hubwright(
        &db,
        &server.url,
        Some(&root),
        &["audit", "list", "--action", "token.revoke", "-o", "json"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let revokes = json(&stdout(&out));
    assert_eq!(revokes.as_array().unwrap().len(), 1, "{revokes:#}");
    assert_eq!(revokes[0]["actor"], "ursula");
    assert_eq!(revokes[0]["auth"], "database");
    assert_eq!(revokes[0]["target_id"], dana.as_str());
    assert_eq!(revokes[0]["client_addr"], serde_json::Value::Null);
    assert_eq!(
        revokes[0]["channel"],
        serde_json::Value::Null,
        "not an API call"
    );
    // The token made through the API, and nothing done on the database.
    let through_api = json(&stdout(
        &hubwright(
            &db,
            &server.url,
            Some(&root),
            &["audit", "list", "--channel", "api", "-o", "json"],
        )
        .await,
    ));
    let actions: Vec<&str> = through_api
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token.create"], "{through_api:#}");
    assert_eq!(through_api[0]["actor"], "root");

    let table = stdout(&hubwright(&db, &server.url, Some(&root), &["audit", "list"]).await);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("token.create") && table.contains("ursula"),
        "{table}"
    );

    let export = hubwright(&db, &server.url, Some(&root), &["audit", "export"]).await;
    assert!(export.status.success(), "{}", stderr(&export));
    let lines: Vec<serde_json::Value> = stdout(&export)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let actions: Vec<(&str, &str)> = lines
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("token.revoke", "ursula"),
            ("token.create", "root"),
            ("token.create", "ursula"),
        ],
        "newest first: the CLI's own and the API's"
    );

    let refused = hubwright(
        &db,
        &server.url,
        Some(stdout(&created).trim()),
        &["audit", "list"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(3), "a developer is refused");
    drop(server);
    db.drop_now().await;
}
