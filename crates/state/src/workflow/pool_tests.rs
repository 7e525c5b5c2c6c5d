use std::path::Path;

use serde_json::{Map, Value, json};

use super::super::{LoadedTemplate, WorkflowError, parse};

const PATH: &str = "workflows/hub.yaml";

/// A template with a pool; `{pool}` is replaced by the test's pool block.
fn with_pool(pool: &str) -> Result<LoadedTemplate, WorkflowError> {
    let text = format!(
        r#"
name: hub
ttl: {{ default: 8h, maximum: 72h }}
parameters:
  profile: {{ type: string, default: minimal, enum: [minimal, gpu] }}
  allowed_users: {{ type: strings, default: [], max_items: 5, max_length: 20 }}
  quota: {{ type: integer, default: 4, minimum: 1, maximum: 8, settable: false }}
{pool}
workflows:
  provision: {{ steps: [{{ name: hub, kind: noop }}] }}
  assign: {{ steps: [{{ name: assign, kind: noop }}] }}
  teardown: {{ steps: [{{ name: remove, kind: noop }}] }}
"#
    );
    parse(Path::new(PATH), &text)
}

fn pool_error(pool: &str) -> WorkflowError {
    with_pool(pool).expect_err("the pool is refused")
}

fn map(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[test]
fn a_pool_parses_with_its_defaults() {
    let loaded = with_pool("pool: { size: 2, claimable: [allowed_users] }").unwrap();
    let pool = loaded.template.pool.clone().unwrap();
    assert_eq!(pool.size, 2);
    assert_eq!(pool.clusters, vec!["default".to_owned()]);
    assert_eq!(pool.max_idle.0.as_secs(), 24 * 3600);
    assert_eq!(
        loaded.template.pool_parameters().unwrap(),
        map(json!({"profile": "minimal", "allowed_users": [], "quota": 4}))
    );
}

#[test]
fn a_pool_may_set_operator_only_parameters() {
    let loaded = with_pool("pool: { size: 1, parameters: { quota: 2 } }").unwrap();
    assert_eq!(
        loaded.template.pool_parameters().unwrap()["quota"],
        json!(2)
    );
}

#[test]
fn pool_errors_name_the_field_and_the_rule() {
    let cases = [
        ("pool: { size: 51 }", "pool.size", "at most 50"),
        (
            "pool: { size: 1, max_idle: 10s }",
            "pool.max_idle",
            "at least 1m",
        ),
        (
            "pool: { size: 1, max_idle: 100h }",
            "pool.max_idle",
            "ttl.maximum",
        ),
        (
            "pool: { size: 1, claimable: [owner] }",
            "pool.claimable",
            "`owner` is not a parameter",
        ),
        (
            "pool: { size: 1, claimable: [quota] }",
            "pool.claimable",
            "platform team",
        ),
        (
            "pool: { size: 1, clusters: [] }",
            "pool.clusters",
            "at least one",
        ),
        (
            "pool: { size: 1, clusters: [Big] }",
            "pool.clusters",
            "DNS-1123",
        ),
        (
            "pool: { size: 1, parameters: { colour: red } }",
            "pool.parameters.colour",
            "not a parameter",
        ),
        (
            "pool: { size: 1, parameters: { profile: huge } }",
            "pool.parameters.profile",
            "must be one of",
        ),
        (
            "pool: { size: 1, spare: 3 }",
            "pool",
            "unknown field `spare`",
        ),
    ];
    for (pool, place, rule) in cases {
        let err = pool_error(pool);
        assert!(err.place.starts_with(place), "{pool}: {err}");
        assert!(err.rule.contains(rule), "{pool}: {err}");
    }
}

#[test]
fn a_pool_needs_an_assign_workflow() {
    let text = r#"
name: hub
pool: { size: 1 }
workflows:
  provision: { steps: [{ name: hub, kind: noop }] }
  teardown: { steps: [{ name: remove, kind: noop }] }
"#;
    let err = parse(Path::new(PATH), text).unwrap_err();
    assert_eq!(err.place, "pool");
    assert!(err.rule.contains("`assign` workflow"), "{err}");
}

#[test]
fn the_digest_follows_what_members_are_built_from_not_the_size() {
    let digest = |pool: &str| with_pool(pool).unwrap().template.pool_digest().unwrap();
    let base = digest("pool: { size: 2 }");
    assert_eq!(base, digest("pool: { size: 5, max_idle: 2h }"));
    assert_ne!(
        base,
        digest("pool: { size: 2, parameters: { profile: gpu } }")
    );
    assert_ne!(
        base,
        digest("pool: { size: 2, claimable: [allowed_users] }")
    );
}

#[test]
fn a_request_is_served_when_only_claimable_parameters_differ() {
    let template = with_pool("pool: { size: 1, claimable: [allowed_users] }")
        .unwrap()
        .template;
    let pool = template.pool_parameters().unwrap();
    let mut requested = pool.clone();
    requested.insert("allowed_users".to_owned(), json!(["bob"]));
    assert_eq!(template.pool_serves(&pool, &requested), Ok(()));
    let claimed = template
        .pool
        .as_ref()
        .unwrap()
        .claimed_parameters(&pool, &requested);
    assert_eq!(claimed["allowed_users"], json!(["bob"]));

    requested.insert("profile".to_owned(), json!("gpu"));
    let miss = template.pool_serves(&pool, &requested).unwrap_err();
    assert!(miss.contains("`profile`"), "{miss}");
}
