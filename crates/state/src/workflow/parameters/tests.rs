use std::path::Path;

use serde_json::{Value, json};

use crate::workflow::{Template, parse};

const BOUNDED: &str = r#"
name: bounded
parameters:
  cpu_limit: { type: quantity, kind: cpu, default: "2", minimum: 500m, maximum: "16" }
  memory_limit: { type: quantity, kind: memory, default: 4G, minimum: 512Mi, maximum: 16Gi }
  storage: { type: quantity, kind: storage, default: 10Gi, maximum: 100Gi }
  quota_cpu: { type: quantity, kind: cpu, default: "20", settable: false }
  image_tag: { type: string, default: "2024-10-07", max_length: 128, pattern: "^[A-Za-z0-9_][A-Za-z0-9_.-]*$" }
  note: { type: string, default: "", max_length: 5 }
  users: { type: strings, default: [], max_items: 2, max_length: 8 }
  size: { type: integer, default: 2, minimum: 1, maximum: 8 }
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
"#;

fn template(text: &str) -> Template {
    parse(Path::new("workflows/bounded.yaml"), text)
        .unwrap()
        .template
}

fn refusal(given: Value) -> String {
    template(BOUNDED)
        .resolve_parameters(given.as_object().unwrap())
        .unwrap_err()
        .to_string()
}

fn load_error(text: &str) -> String {
    parse(Path::new("workflows/bounded.yaml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn quantities_within_their_bounds_are_accepted_as_strings_or_numbers() {
    let given = json!({"cpu_limit": "1500m", "memory_limit": "16Gi", "storage": 1e9});
    let resolved = template(BOUNDED)
        .resolve_parameters(given.as_object().unwrap())
        .unwrap();
    assert_eq!(resolved["cpu_limit"], "1500m", "kept as given");
    assert_eq!(resolved["memory_limit"], "16Gi");
    assert_eq!(resolved["quota_cpu"], "20", "the platform team's value");
    assert_eq!(resolved["users"], json!([]));
    let numbers = json!({"cpu_limit": 0.5, "memory_limit": 17179869184u64});
    assert!(
        template(BOUNDED)
            .resolve_parameters(numbers.as_object().unwrap())
            .is_ok()
    );
}

#[test]
fn a_quantity_that_is_not_one_or_out_of_bounds_names_the_parameter_and_the_rule() {
    assert_eq!(
        refusal(json!({"memory_limit": "100Ti"})),
        "parameters.memory_limit: must be a memory quantity at most 16Gi (got 100Ti)"
    );
    assert_eq!(
        refusal(json!({"memory_limit": "17179869185"})),
        "parameters.memory_limit: must be a memory quantity at most 16Gi (got 17179869185)",
        "one byte above 16Gi"
    );
    assert_eq!(
        refusal(json!({"cpu_limit": "100m"})),
        "parameters.cpu_limit: must be a CPU quantity at least 500m (got 100m)"
    );
    assert_eq!(
        refusal(json!({"cpu_limit": "abc"})),
        "parameters.cpu_limit: must be a CPU quantity from 500m to 16, such as \"500m\" or \"2\" (got abc: it does not start with a number)"
    );
    assert!(
        refusal(json!({"cpu_limit": "-1"})).contains("not a negative one (got -1)"),
        "{}",
        refusal(json!({"cpu_limit": "-1"}))
    );
    assert!(
        refusal(json!({"cpu_limit": true}))
            .starts_with("parameters.cpu_limit: must be a CPU quantity")
    );
    assert_eq!(
        refusal(json!({"cpu_limit": "1.0005"})),
        "parameters.cpu_limit: must be a CPU quantity in whole millicores (1m is the finest) (got 1.0005)"
    );
    assert_eq!(
        refusal(json!({"memory_limit": "1000m"})),
        "parameters.memory_limit: must be a memory quantity at least 512Mi (got 1000m)"
    );
    assert_eq!(
        refusal(json!({"memory_limit": "1.5k"})),
        "parameters.memory_limit: must be a memory quantity at least 512Mi (got 1.5k)"
    );
    assert_eq!(
        refusal(json!({"storage": "0.5"})),
        "parameters.storage: must be a storage quantity in whole bytes (got 0.5)"
    );
}

#[test]
fn an_operator_only_parameter_is_refused_from_a_request() {
    assert_eq!(
        refusal(json!({"quota_cpu": "100000"})),
        "parameters.quota_cpu: is set by the platform team: template `bounded` does not let a request choose it"
    );
    let unknown = refusal(json!({"colour": "red"}));
    assert!(!unknown.contains("quota_cpu"), "not offered: {unknown}");
}

#[test]
fn strings_and_lists_keep_to_their_length_pattern_and_count() {
    assert_eq!(
        refusal(json!({"note": "toolong"})),
        "parameters.note: must be at most 5 characters long (got 7)"
    );
    assert!(
        template(BOUNDED)
            .resolve_parameters(json!({"note": "ééééé"}).as_object().unwrap())
            .is_ok(),
        "characters, not bytes"
    );
    assert_eq!(
        refusal(json!({"image_tag": "latest; rm"})),
        "parameters.image_tag: must match `^[A-Za-z0-9_][A-Za-z0-9_.-]*$` (got \"latest; rm\")"
    );
    assert_eq!(
        refusal(json!({"users": ["a", "b", "c"]})),
        "parameters.users: must list at most 2 items (got 3)"
    );
    assert_eq!(
        refusal(json!({"users": ["a", "abcdefghi"]})),
        "parameters.users: item 1 must be at most 8 characters long (got 9)"
    );
}

#[test]
fn declarations_that_cannot_hold_are_template_errors() {
    let cases = [
        (
            "maximum: 16Gi }",
            "maximum: 16Gb }",
            "maximum `16Gb` is not a Kubernetes quantity",
        ),
        (
            "minimum: 500m, maximum: \"16\"",
            "minimum: \"32\", maximum: \"16\"",
            "minimum 32 is above maximum 16",
        ),
        (
            "minimum: 500m,",
            "minimum: 0.5m,",
            "minimum `0.5m` must be a CPU quantity in whole millicores",
        ),
        (
            "default: \"20\", settable: false",
            "settable: false",
            "needs a default",
        ),
        (
            "max_items: 2, max_length: 8",
            "max_items: 2, pattern: \"[a-z]+\"",
            "must be anchored",
        ),
        (
            "max_items: 2, max_length: 8",
            "max_items: 2, pattern: \"^[a-z+$\"",
            "is not a regular expression",
        ),
        (
            "default: 2, minimum: 1",
            "default: 2, max_length: 3, minimum: 1",
            "`max_length` does not apply to a parameter of type integer",
        ),
        (
            "maximum: 100Gi",
            "maximum: 100Gi, max_items: 3",
            "`max_items` does not apply",
        ),
        (
            "default: 10Gi, maximum: 100Gi",
            "default: 1Ti, maximum: 100Gi",
            "must be a storage quantity at most 100Gi (got 1Ti)",
        ),
        (
            "kind: cpu, default: \"2\"",
            "kind: gpu, default: \"2\"",
            "unknown variant `gpu`",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(BOUNDED.contains(from), "{from}");
        let err = load_error(&BOUNDED.replacen(from, to, 1));
        assert!(err.contains(expected), "{to}: {err}");
    }
}

#[test]
fn unbounded_settable_parameters_are_listed_and_operator_only_ones_are_not() {
    assert_eq!(template(BOUNDED).unbounded_parameters(), []);
    let open = r#"
name: bounded
parameters:
  free: { type: string, default: "" }
  choice: { type: string, default: a, enum: [a, b] }
  fixed: { type: string, default: "", settable: false }
  count: { type: integer, default: 1, minimum: 0 }
  cpu: { type: quantity, default: "1" }
  tags: { type: strings, default: [], max_length: 8 }
  flag: { type: boolean, default: false }
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
"#;
    let open = template(open);
    let listed: Vec<&str> = open
        .unbounded_parameters()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(listed, ["count", "cpu", "free", "tags"]);
}

#[test]
fn the_shipped_templates_bound_every_parameter_a_request_may_set() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let loaded = crate::workflow::load_dir(&dir).unwrap();
    assert!(loaded.len() >= 3);
    for template in loaded {
        let template = template.template;
        assert_eq!(
            template.unbounded_parameters(),
            [],
            "template {}",
            template.name
        );
    }
}
