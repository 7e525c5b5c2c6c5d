use std::path::Path;

use serde_json::json;

use super::*;

const DEMO: &str = r#"
name: demo
parameters:
  size: { type: integer, default: 2, minimum: 1, maximum: 8 }
  owner: { type: string }
workflows:
  provision:
    steps:
      - { name: first, kind: noop }
      - name: second
        kind: sleep
        with: { duration: 1s }
        retry: { max_attempts: 3 }
        timeout: 30s
"#;

#[test]
fn a_valid_file_parses_with_defaults_filled_in() {
    let loaded = parse(Path::new("workflows/demo.yaml"), DEMO).unwrap();
    let steps = &loaded.template.workflows["provision"].steps;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].retry, RetryPolicy::default());
    assert_eq!(steps[1].retry.max_attempts, 3);
    assert_eq!(steps[1].timeout, Dur::from_secs(30));
    assert_eq!(steps[1].params, json!({"duration": "1s"}));
}

#[test]
fn the_template_name_must_match_the_file_name() {
    let err = parse(Path::new("workflows/other.yaml"), DEMO).unwrap_err();
    assert_eq!(err.place, "name");
    assert!(
        err.rule.contains("must equal the file name `other`"),
        "{err}"
    );
}

#[test]
fn an_unknown_field_names_its_line() {
    let text = DEMO.replace("timeout: 30s", "timeout: 30s\n        retries: 3");
    let err = parse(Path::new("workflows/demo.yaml"), &text).unwrap_err();
    assert_eq!(err.place, "workflows.provision.steps[1]");
    assert!(
        err.rule
            .starts_with("unknown field `retries`, expected one of"),
        "{err}"
    );
    assert!(err.rule.ends_with("(line 15 column 9)"), "{err}");
}

#[test]
fn duplicate_step_names_are_refused() {
    let text = DEMO.replace("name: second", "name: first");
    let err = parse(Path::new("workflows/demo.yaml"), &text).unwrap_err();
    assert_eq!(err.place, "workflows.provision.steps[1] (first)");
    assert!(err.rule.contains("unique"), "{err}");
}

#[test]
fn a_bad_duration_is_explained() {
    let text = DEMO.replace("timeout: 30s", "timeout: soon");
    let err = parse(Path::new("workflows/demo.yaml"), &text).unwrap_err();
    assert!(err.rule.contains("`soon` is not a duration"), "{err}");
}

#[test]
fn zero_attempts_are_refused() {
    let text = DEMO.replace("max_attempts: 3", "max_attempts: 0");
    let err = parse(Path::new("workflows/demo.yaml"), &text).unwrap_err();
    assert_eq!(
        err.place,
        "workflows.provision.steps[1] (second).retry.max_attempts"
    );
}

#[test]
fn parameters_are_resolved_against_the_declaration() {
    let template = parse(Path::new("workflows/demo.yaml"), DEMO)
        .unwrap()
        .template;
    let given = json!({"owner": "alice"});
    let resolved = template
        .resolve_parameters(given.as_object().unwrap())
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(resolved),
        json!({"owner": "alice", "size": 2})
    );

    let missing = template
        .resolve_parameters(&serde_json::Map::new())
        .unwrap_err();
    assert_eq!(missing.to_string(), "parameters.owner: is required");

    let too_big = json!({"owner": "a", "size": 9});
    let err = template
        .resolve_parameters(too_big.as_object().unwrap())
        .unwrap_err();
    assert_eq!(err.to_string(), "parameters.size: must be at most 8");

    let unknown = json!({"owner": "a", "colour": "red"});
    let err = template
        .resolve_parameters(unknown.as_object().unwrap())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("parameters.colour: template `demo` declares no such parameter")
    );
}

#[test]
fn the_digest_changes_with_the_definition_and_only_then() {
    let template = parse(Path::new("workflows/demo.yaml"), DEMO)
        .unwrap()
        .template;
    let a = Snapshot::of(&template, "provision").unwrap();
    let b = Snapshot::of(&template, "provision").unwrap();
    assert_eq!(a.digest(), b.digest());
    let mut c = a.clone();
    c.steps[1].timeout = Dur::from_secs(31);
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn the_namespace_defaults_to_jh_name_suffix_and_a_pattern_that_is_no_label_is_refused() {
    let template = parse(Path::new("workflows/demo.yaml"), DEMO)
        .unwrap()
        .template;
    let id: uuid::Uuid = "0190a6b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b".parse().unwrap();
    assert_eq!(template.namespace_for("lab", id), "jh-lab-4e5f6a7b");

    let custom = DEMO.replace("name: demo\n", "name: demo\nnamespace: team-{name}-hub\n");
    let template = parse(Path::new("workflows/demo.yaml"), &custom)
        .unwrap()
        .template;
    assert_eq!(template.namespace_for("lab", id), "team-lab-hub");

    for bad in ["Hub-{name}", "hub", "hub_{name}", "{name}-"] {
        let text = DEMO.replace(
            "name: demo\n",
            &format!("name: demo\nnamespace: \"{bad}\"\n"),
        );
        let err = parse(Path::new("workflows/demo.yaml"), &text).unwrap_err();
        assert_eq!(err.place, "namespace", "{bad}: {err}");
    }
}
