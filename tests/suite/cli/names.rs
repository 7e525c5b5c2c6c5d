//! Environments by name, run lists, and every output format, as a person and
//! a script (`-o name | xargs`) use them.

use super::{Served, finish, json, stderr, stdout};
use crate::BIN;

#[tokio::test]
async fn an_environment_is_shown_extended_and_deleted_by_name_and_only_by_its_owner() {
    let served = Served::start().await;
    served
        .ok(
            &served.alice,
            &["env", "create", "lab-1", "--template", "lab", "--wait"],
        )
        .await;

    let shown = json(
        &served
            .ok(&served.alice, &["env", "show", "lab-1", "-o", "json"])
            .await,
    );
    assert_eq!(shown["name"], "lab-1");
    assert_eq!(shown["phase"], "ready");
    let id = shown["id"].as_str().expect("an id").to_owned();
    let by_id = json(
        &served
            .ok(&served.alice, &["env", "show", &id, "-o", "json"])
            .await,
    );
    assert_eq!(by_id["name"], "lab-1", "the id names the same environment");
    let human = served.ok(&served.alice, &["env", "show", "lab-1"]).await;
    assert!(
        human.contains("environment lab-1") && human.contains("phase      ready"),
        "{human}"
    );

    // Bob has no lab-1: his name finds nothing, as another's id would not.
    let refused = served.run(&served.bob, &["env", "show", "lab-1"]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("(404 Not Found)"),
        "{}",
        stderr(&refused)
    );
    let refused = served
        .run(&served.bob, &["env", "delete", "lab-1", "--yes"])
        .await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    // An operator names it with its owner.
    let olga = json(
        &served
            .ok(
                &served.operator,
                &["env", "show", "lab-1", "--owner", "alice", "-o", "json"],
            )
            .await,
    );
    assert_eq!(olga["id"].as_str(), Some(id.as_str()));

    let extended = served
        .ok(&served.alice, &["env", "extend", "lab-1", "--ttl", "2h"])
        .await;
    assert!(extended.starts_with("lab-1 now expires at "), "{extended}");

    let deleted = served
        .ok(
            &served.alice,
            &["env", "delete", "lab-1", "--yes", "--wait"],
        )
        .await;
    assert_eq!(deleted.trim(), "lab-1 is deleted");
    let gone = served
        .ok(
            &served.alice,
            &["env", "list", "--phase", "deleted", "-o", "name"],
        )
        .await;
    assert_eq!(
        gone.trim(),
        "lab-1",
        "a phase filter finds deleted environments"
    );
    served.db.drop_now().await;
}

#[tokio::test]
async fn names_piped_to_xargs_delete_every_listed_environment() {
    let served = Served::start().await;
    for name in ["a-1", "b-2", "c-3"] {
        served
            .ok(&served.alice, &["env", "create", name, "--template", "lab"])
            .await;
    }
    let names = served
        .ok(&served.alice, &["env", "list", "-o", "name"])
        .await;
    assert_eq!(names, "a-1\nb-2\nc-3\n");

    let mut pipeline = tokio::process::Command::new("sh");
    pipeline
        .args([
            "-c",
            r#""$BIN" env list -o name | xargs -n1 "$BIN" env delete --yes"#,
        ])
        .env("BIN", BIN)
        .env("HUBWRIGHT_URL", &served.serve.url)
        .env("HUBWRIGHT_TOKEN", &served.alice)
        .env("HUBWRIGHT_CONFIG", "/nonexistent/hubwright/config.yaml");
    let out = finish(pipeline).await;
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["a-1", "b-2", "c-3"] {
        assert!(
            stderr(&out).contains(&format!("teardown of {name}: ")),
            "{}",
            stderr(&out)
        );
    }

    let live = json(
        &served
            .ok(&served.alice, &["env", "list", "-o", "json"])
            .await,
    );
    let phases: Vec<&str> = live
        .as_array()
        .map(|items| items.iter().filter_map(|e| e["phase"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        phases
            .iter()
            .all(|phase| *phase == "tearing_down" || *phase == "deleted"),
        "every listed environment is being torn down: {phases:?}"
    );
    served.db.drop_now().await;
}

#[tokio::test]
async fn run_list_filters_by_environment_state_and_kind_and_prints_every_format() {
    let served = Served::start().await;
    served
        .ok(
            &served.alice,
            &["env", "create", "lab-1", "--template", "lab", "--wait"],
        )
        .await;
    served
        .ok(
            &served.bob,
            &["env", "create", "lab-2", "--template", "lab", "--wait"],
        )
        .await;
    served
        .ok(
            &served.alice,
            &["env", "delete", "lab-1", "--yes", "--wait"],
        )
        .await;

    let alices = json(
        &served
            .ok(&served.alice, &["run", "list", "-o", "json"])
            .await,
    );
    let kinds: Vec<&str> = alices
        .as_array()
        .map(|runs| runs.iter().filter_map(|r| r["workflow"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        kinds,
        ["teardown", "provision"],
        "alice's runs, newest first"
    );

    let teardowns = served
        .ok(
            &served.operator,
            &["run", "list", "--kind", "teardown", "-o", "name"],
        )
        .await;
    assert_eq!(teardowns.lines().count(), 1, "{teardowns}");
    let by_env = served
        .ok(
            &served.operator,
            &[
                "run", "list", "--env", "lab-2", "--owner", "bob", "-o", "jsonl",
            ],
        )
        .await;
    let lines: Vec<serde_json::Value> = by_env.lines().map(json).collect();
    assert_eq!(lines.len(), 1, "{by_env}");
    assert_eq!(lines[0]["workflow"], "provision");
    assert_eq!(lines[0]["state"], "succeeded");

    let failed = served
        .ok(
            &served.operator,
            &["run", "list", "--state", "failed", "-o", "name"],
        )
        .await;
    assert_eq!(failed, "", "no run failed");
    let everyone = served
        .ok(
            &served.operator,
            &["run", "list", "--limit", "2", "-o", "name"],
        )
        .await;
    assert_eq!(
        everyone.lines().count(),
        2,
        "--limit caps the list: {everyone}"
    );

    let table = served
        .ok(&served.operator, &["run", "list", "-o", "wide"])
        .await;
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "ID",
        "TEMPLATE",
        "KIND",
        "STATE",
        "STEP",
        "ENVIRONMENT",
        "ERROR",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &served
            .ok(&served.operator, &["run", "list", "-o", "yaml"])
            .await,
    )
    .expect("YAML from -o yaml");
    assert_eq!(yaml.as_sequence().map(Vec::len), Some(3));

    let id = teardowns.trim();
    let watched = served
        .run(&served.alice, &["run", "watch", id, "--exit-status"])
        .await;
    assert_eq!(watched.status.code(), Some(0), "{}", stderr(&watched));
    assert!(
        stdout(&watched).contains("teardown  succeeded"),
        "{}",
        stdout(&watched)
    );
    served.db.drop_now().await;
}
