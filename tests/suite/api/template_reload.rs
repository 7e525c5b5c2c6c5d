//! Reloading the templates without a restart (decision 0029): a poll that
//! sees the workflow files change, or SIGHUP. Files that do not load, or
//! that would take a template from the policy in force or from environments
//! that still need its teardown, leave the templates in force and say why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::ManualClock;
use hubwright_state::model::Role;
use hubwright_testkit::console::ConsoleUser;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use serde_json::{Value, json};

use crate::BIN;

const WITHIN: Duration = Duration::from_secs(30);

const HUB: &str = r#"
name: hub
workflows:
  provision:
    steps:
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// `lab` without a teardown: its environments never expire.
const LAB: &str = r#"
name: lab
ttl: { default: 1h, maximum: 8h }
workflows:
  provision:
    steps:
      - { name: lab, kind: noop }
"#;

/// `lab` with a teardown.
fn lab_with_teardown() -> String {
    format!("{LAB}  teardown:\n    steps:\n      - {{ name: remove, kind: noop }}\n")
}

/// A workflow directory holding `hub` and, when given, `lab`.
fn workflows(lab: Option<&str>) -> PathBuf {
    let dir = scratch_dir("template-reload").join("workflows");
    write_workflow(&dir, "hub", HUB);
    if let Some(lab) = lab {
        write_workflow(&dir, "lab", lab);
    }
    dir
}

/// Puts `text` at `path` at once, as an editor saving by rename or a
/// ConfigMap update does: a poll never reads it half written.
fn replace(path: &Path, text: &str) {
    let name = path.file_name().unwrap().to_string_lossy();
    let partial = path.with_file_name(format!(".{name}.new"));
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// [`replace`] for `name`'s workflow file in `dir`.
fn replace_workflow(dir: &Path, name: &str, yaml: &str) {
    replace(&dir.join(format!("{name}.yaml")), yaml);
}

/// A server over `dir` with `policy` as its policy file beside it, both
/// polled every 100 ms; the policy file's path, to change it.
async fn with_policy(db: &TestDatabase, dir: &Path, policy: &str) -> (ApiServer, PathBuf) {
    let path = dir.parent().unwrap().join("policy.yaml");
    replace(&path, policy);
    let flags = [
        "--templates-poll-interval",
        "100ms",
        "--policy",
        path.to_str().unwrap(),
        "--policy-poll-interval",
        "100ms",
    ];
    (ApiServer::start(db, dir, &flags).await, path)
}

/// `GET /v1/templates` as `token`.
async fn templates(server: &ApiServer, token: &str) -> Value {
    let reply = server.get("/v1/templates").token(token).send().await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    reply.body
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The reload error operators see, once there is one.
async fn reload_error(server: &ApiServer, operator: &str) -> String {
    wait::until_some("the failed reload to be reported", WITHIN, || async {
        templates(server, operator).await["files"]["last_reload_error"]
            .as_str()
            .map(str::to_owned)
    })
    .await
}

async fn create(server: &ApiServer, token: &str, name: &str, template: &str) -> Reply {
    server
        .post("/v1/environments")
        .token(token)
        .json(&json!({"name": name, "template": template}))
        .send()
        .await
}

/// `(outcome, detail)` of each `templates.reload` in the audit trail, oldest first.
async fn reloads(db: &TestDatabase) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT outcome, coalesce(detail, '') FROM audit_log
         WHERE action = 'templates.reload' AND actor = 'system' AND auth = 'system' ORDER BY id",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_new_template_is_offered_after_the_poll_and_a_broken_file_leaves_the_old_ones_in_force() {
    let db = TestDatabase::create().await;
    let dir = workflows(None);
    let server = ApiServer::start(&db, &dir, &["--templates-poll-interval", "100ms"]).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let carol = token(&db.store, "carol", Role::Operator).await;

    let before = templates(&server, &carol).await;
    assert_eq!(names(&before), ["hub"]);
    assert_eq!(before["files"]["source"], dir.display().to_string());
    assert!(before["files"]["digest"].is_string(), "{before:#}");
    assert!(before["files"]["last_reload_error"].is_null(), "{before:#}");
    assert!(
        templates(&server, &alice).await.get("files").is_none(),
        "developers are not shown where the templates come from"
    );
    create(&server, &alice, "early", "lab")
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");

    replace_workflow(&dir, "lab", LAB);
    wait::until("lab to be offered", WITHIN, || async {
        names(&templates(&server, &alice).await) == ["hub", "lab"]
    })
    .await;
    assert_eq!(
        create(&server, &alice, "first", "lab").await.status,
        StatusCode::ACCEPTED,
        "lab's workflows were registered before it was offered"
    );
    let applied = templates(&server, &carol).await["files"].clone();
    assert_ne!(applied["digest"], before["files"]["digest"]);

    replace_workflow(
        &dir,
        "lab",
        &LAB.replace("kind: noop", "kind: no-such-kind"),
    );
    let why = reload_error(&server, &carol).await;
    assert!(
        why.contains("lab.yaml") && why.contains("unknown step kind `no-such-kind`"),
        "{why}"
    );
    let failed = templates(&server, &carol).await;
    assert_eq!(
        names(&failed),
        ["hub", "lab"],
        "the templates in force stay"
    );
    assert_eq!(failed["files"]["digest"], applied["digest"]);
    assert_eq!(
        create(&server, &alice, "second", "lab").await.status,
        StatusCode::ACCEPTED,
        "lab is still served as it was"
    );
    // So do `hubwright template list` (on stderr, the list still JSON) ...
    let cli = crate::cli::hubwright(
        &db,
        &server.url,
        Some(&carol),
        &["template", "list", "-o", "json"],
    )
    .await;
    assert!(cli.status.success(), "{cli:?}");
    let listed: Value = serde_json::from_slice(&cli.stdout).expect("a JSON list");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed:#}");
    let warned = String::from_utf8_lossy(&cli.stderr);
    assert!(
        warned.contains("warning: the template files on disk do not load")
            && warned.contains("no-such-kind"),
        "{warned}"
    );
    // ... and the console's catalogue, to operators only.
    let operator = ConsoleUser::sign_in(&server, &carol).await;
    let page = operator.get("/environments/new").await;
    page.assert_says("The template files on disk do not load");
    page.assert_says("unknown step kind `no-such-kind`");
    page.assert_says("Choose lab");
    let developer = ConsoleUser::sign_in(&server, &alice).await;
    let page = developer.get("/environments/new").await;
    page.assert_says("Choose lab");
    assert!(
        !page.html.contains("do not load"),
        "developers are not told: {}",
        page.html
    );

    replace_workflow(&dir, "lab", LAB);
    wait::until("the fixed file to be in force", WITHIN, || async {
        templates(&server, &carol).await["files"]["last_reload_error"].is_null()
    })
    .await;
    // The reload is in force before its audit entry is written (the entry
    // comes after the swap, `crates/api/src/reload.rs`): wait for it.
    wait::until("the third reload's audit entry", WITHIN, || async {
        reloads(&db).await.len() >= 3
    })
    .await;
    let entries = reloads(&db).await;
    assert_eq!(entries.len(), 3, "one audit entry per reload: {entries:?}");
    assert_eq!(entries[0].0, "success");
    assert!(entries[0].1.contains("templates: hub, lab"), "{entries:?}");
    assert_eq!(entries[1].0, "failure");
    assert!(entries[1].1.contains("no-such-kind"), "{entries:?}");
    assert_eq!(entries[2].0, "success");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_template_the_policy_or_a_live_environment_needs_is_not_taken_away() {
    let db = TestDatabase::create().await;
    let dir = workflows(Some(&lab_with_teardown()));
    let (server, policy) = with_policy(&db, &dir, "defaults: { per_template: { lab: 3 } }\n").await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let carol = token(&db.store, "carol", Role::Operator).await;
    assert_eq!(
        create(&server, &alice, "kept", "lab").await.status,
        StatusCode::ACCEPTED
    );

    std::fs::remove_file(dir.join("lab.yaml")).unwrap();
    let why = reload_error(&server, &carol).await;
    assert!(
        why.contains("the policy in force does not fit these templates")
            && why.contains("defaults.per_template.lab"),
        "{why}"
    );
    assert_eq!(names(&templates(&server, &carol).await), ["hub", "lab"]);

    // Without the policy's rule, the live environment still needs lab's teardown.
    replace(&policy, "defaults: { environments: 10 }\n");
    wait::until("the new policy to be in force", WITHIN, || async {
        let reply = server.get("/v1/policy").token(&carol).send().await;
        reply.body["policy"]["defaults"]["per_template"]
            .as_object()
            .is_none_or(|rules| rules.is_empty())
    })
    .await;
    replace_workflow(&dir, "lab", LAB);
    let why = wait::until_some("the teardown's removal to be refused", WITHIN, || async {
        templates(&server, &carol).await["files"]["last_reload_error"]
            .as_str()
            .filter(|why| why.contains("not deleted yet"))
            .map(str::to_owned)
    })
    .await;
    assert!(
        why.contains("template `lab` or its `teardown` workflow is gone")
            && why.contains("1 of its environments"),
        "{why}"
    );
    let delete = server
        .delete("/v1/environments/kept")
        .token(&alice)
        .send()
        .await;
    assert_eq!(
        delete.status,
        StatusCode::ACCEPTED,
        "the environment can still be torn down: {:#}",
        delete.body
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_policy_refused_for_a_template_not_there_yet_applies_once_the_template_arrives() {
    let db = TestDatabase::create().await;
    let dir = workflows(None);
    let (server, policy) = with_policy(&db, &dir, "defaults: { environments: 10 }\n").await;
    let carol = token(&db.store, "carol", Role::Operator).await;
    let current = || async { server.get("/v1/policy").token(&carol).send().await.body };

    replace(&policy, "defaults: { per_template: { lab: 2 } }\n");
    let why = wait::until_some("the policy to be refused", WITHIN, || async {
        current().await["last_reload_error"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    assert!(why.contains("no template named `lab`"), "{why}");

    // The policy file does not change again: the template's arrival is what
    // has it read once more.
    replace_workflow(&dir, "lab", LAB);
    let applied = wait::until_some("the policy to apply", WITHIN, || async {
        let body = current().await;
        body["last_reload_error"].is_null().then_some(body)
    })
    .await;
    assert_eq!(
        applied["policy"]["defaults"]["per_template"]["lab"],
        json!(2),
        "{applied:#}"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn the_scheduler_expires_with_a_teardown_that_arrived_by_a_reload() {
    let db = TestDatabase::create().await;
    let dir = workflows(Some(LAB));
    let clock = ManualClock::new(chrono::Utc::now());
    let server = ApiServer::start_with_clock(
        &db,
        &dir,
        &[
            "--scheduler",
            "--expiry-sweep-interval",
            "100ms",
            "--templates-poll-interval",
            "100ms",
        ],
        Arc::new(clock.clone()),
    )
    .await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let carol = token(&db.store, "carol", Role::Operator).await;
    let created = create(&server, &alice, "short", "lab").await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);

    replace_workflow(&dir, "lab", &lab_with_teardown());
    wait::until("lab's teardown to be in force", WITHIN, || async {
        templates(&server, &carol).await["items"][1]["workflows"]
            == json!(["provision", "teardown"])
    })
    .await;
    clock.advance(chrono::Duration::hours(2));
    wait::until(
        "the expired environment to be torn down",
        WITHIN,
        || async {
            let reply = server
                .get("/v1/environments/short")
                .token(&alice)
                .send()
                .await;
            reply.body["phase"] == "tearing_down" || reply.body["phase"] == "deleted"
        },
    )
    .await;
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn sighup_reloads_the_templates_of_a_serve_process() {
    let db = TestDatabase::create().await;
    let dir = workflows(None);
    let server =
        ApiServer::start_process(BIN, &db, &dir, &["--templates-poll-interval", "0s"]).await;
    let carol = token(&db.store, "carol", Role::Operator).await;
    replace_workflow(&dir, "lab", LAB);
    // No poll: only the signal reads the directory again.
    server.process().signal("HUP");
    server
        .process()
        .wait_for_log("templates reloaded", WITHIN)
        .await;
    assert_eq!(names(&templates(&server, &carol).await), ["hub", "lab"]);
    drop(server);
    db.drop_now().await;
}
