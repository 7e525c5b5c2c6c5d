//! `/v1/templates`: everything a portal needs to build a request form, from
//! the shipped workflow files: parameters as JSON Schema, TTL policy,
//! clusters, workflows and whether the caller may use the template.

use std::path::Path;

use hubwright_state::model::Role;
use hubwright_state::workflow::QUANTITY_PATTERN;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::{Value, json};

/// A server over the repository's own `workflows/`, with two clusters.
async fn shipped(db: &TestDatabase) -> ApiServer {
    let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let dir = scratch_dir("templates-clusters");
    let clusters = dir.join("clusters.yaml");
    std::fs::write(&clusters, "clusters:\n  east: {}\n  west: {}\n").unwrap();
    let clusters = clusters.display().to_string();
    ApiServer::start(db, &workflows, &["--clusters", &clusters]).await
}

#[tokio::test]
async fn every_caller_lists_the_shipped_templates_with_what_a_portal_needs() {
    let db = TestDatabase::create().await;
    let server = shipped(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;

    let listed = server.get("/v1/templates").token(&alice).send().await;
    assert_eq!(listed.status, StatusCode::OK, "{:#}", listed.body);
    let items = listed.body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["demo", "jupyterhub", "workshop"]);

    let hub = server
        .get("/v1/templates/jupyterhub")
        .token(&alice)
        .send()
        .await;
    assert_eq!(hub.status, StatusCode::OK, "{:#}", hub.body);
    assert_eq!(&hub.body, &items[1], "one template reads as it is listed");
    assert_eq!(
        hub.body["description"],
        "A JupyterHub with single sign-on, resource limits and idle culling."
    );
    assert_eq!(
        hub.body["ttl"],
        json!({"default": "8h", "default_seconds": 28800, "maximum": "72h",
               "maximum_seconds": 259200, "max_extensions": null})
    );
    assert_eq!(hub.body["clusters"], json!(["east", "west"]));
    assert_eq!(
        hub.body["workflows"],
        json!(["assign", "provision", "teardown"])
    );
    assert_eq!(hub.body["usable"], true);
    assert!(
        hub.body["usable_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );

    let schema = &hub.body["parameters"];
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["required"],
        json!([]),
        "every parameter has a default"
    );
    let properties = &schema["properties"];
    assert_eq!(
        properties["profile"],
        json!({"type": "string", "description": "Server profile offered first.",
               "default": "minimal", "enum": ["minimal", "datascience", "spark", "gpu"]})
    );
    assert_eq!(
        properties["cpu_limit"],
        json!({"type": "string", "pattern": QUANTITY_PATTERN,
               "x-kubernetes-quantity": {"kind": "cpu", "minimum": "500m", "maximum": "16"},
               "default": "2", "description": "CPU each server may use at most."})
    );
    assert_eq!(
        properties["memory_limit"]["x-kubernetes-quantity"],
        json!({"kind": "memory", "minimum": "512Mi", "maximum": "16Gi"})
    );
    assert_eq!(
        properties["quota_cpu"],
        json!({"type": "string", "pattern": QUANTITY_PATTERN,
               "x-kubernetes-quantity": {"kind": "cpu"}, "default": "20", "readOnly": true,
               "description": "CPU all servers of the hub may use together."}),
        "the platform team's: shown, not settable"
    );
    assert_eq!(
        properties["admin_users"],
        json!({"type": "array", "items": {"type": "string", "maxLength": 128}, "maxItems": 50,
               "default": [], "description": "Hub admins besides the owner."})
    );
    assert_eq!(properties["image_tag"]["maxLength"], 128);
    assert_eq!(
        properties["image_tag"]["pattern"],
        "^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
    );
    for name in [
        "quota_memory",
        "quota_storage",
        "quota_pods",
        "container_cpu_max",
    ] {
        assert_eq!(properties[name]["readOnly"], true, "{name}");
    }
    assert_eq!(
        properties["idle_cull_timeout"],
        json!({"type": "integer", "default": 3600, "minimum": 300, "maximum": 86400,
               "description": "Seconds before an idle server is stopped."})
    );
    let declared = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub.yaml"),
    )
    .unwrap();
    let declared: Value = serde_yaml_ng::from_str(&declared).unwrap();
    let declared: Vec<&String> = declared["parameters"].as_object().unwrap().keys().collect();
    let described: Vec<&String> = properties.as_object().unwrap().keys().collect();
    assert_eq!(
        {
            let mut d = declared.clone();
            d.sort();
            d
        },
        described,
        "every declared parameter, and no other"
    );
    let workshop = &items[2];
    assert_eq!(workshop["ttl"]["maximum"], "12h");
    assert_eq!(
        workshop["parameters"]["properties"]["auth_mode"]["enum"],
        json!(["local"])
    );
    db.drop_now().await;
}

#[tokio::test]
async fn an_unknown_template_is_a_404_and_templates_need_a_token() {
    let db = TestDatabase::create().await;
    let server = shipped(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let missing = server
        .get("/v1/templates/no-such")
        .token(&alice)
        .send()
        .await;
    missing.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(missing.detail(), "no template no-such");
    let anonymous = server.get("/v1/templates").send().await;
    anonymous.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    db.drop_now().await;
}

const STRICT: &str = r#"
name: strict
description: Every parameter type, one of them required.
ttl: { default: 30m, maximum: 90m, max_extensions: 2 }
parameters:
  project: { type: string, description: Whose budget pays. }
  gpus: { type: integer, default: 0, minimum: 0, maximum: 4 }
  share: { type: number, default: 0.25, minimum: 0, maximum: 1 }
  public: { type: boolean, default: false }
  tags: { type: strings, default: [] }
workflows:
  provision:
    steps:
      - { name: only, kind: noop }
  teardown:
    steps:
      - { name: only, kind: noop }
"#;

#[tokio::test]
async fn a_parameter_without_a_default_is_required_in_the_schema_and_by_the_api() {
    let db = TestDatabase::create().await;
    let dir = write_workflow(&scratch_dir("templates-strict"), "strict", STRICT);
    let server = ApiServer::start(&db, &dir, &[]).await;
    let alice = token(&db.store, "alice", Role::Developer).await;

    let strict = server
        .get("/v1/templates/strict")
        .token(&alice)
        .send()
        .await;
    assert_eq!(strict.status, StatusCode::OK, "{:#}", strict.body);
    assert_eq!(
        strict.body["ttl"],
        json!({"default": "30m", "default_seconds": 1800, "maximum": "90m",
               "maximum_seconds": 5400, "max_extensions": 2})
    );
    assert_eq!(strict.body["clusters"], json!(["default"]));
    let schema = &strict.body["parameters"];
    assert_eq!(schema["required"], json!(["project"]));
    assert_eq!(
        schema["properties"],
        json!({
            "project": {"type": "string", "description": "Whose budget pays."},
            "gpus": {"type": "integer", "default": 0, "minimum": 0, "maximum": 4},
            "share": {"type": "number", "default": 0.25, "minimum": 0, "maximum": 1},
            "public": {"type": "boolean", "default": false},
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
        })
    );

    // The API holds requests to what the schema says.
    let request = |parameters: Value| {
        server
            .post("/v1/environments")
            .token(&alice)
            .json(&json!({"name": "lab", "template": "strict", "parameters": parameters}))
            .send()
    };
    for (parameters, pointer) in [
        (json!({}), "/parameters/project"),
        (json!({"project": "x", "gpus": 5}), "/parameters/gpus"),
        (json!({"project": "x", "gpus": 1.5}), "/parameters/gpus"),
        (json!({"project": "x", "share": -0.1}), "/parameters/share"),
        (
            json!({"project": "x", "public": "yes"}),
            "/parameters/public",
        ),
        (json!({"project": "x", "tags": [1]}), "/parameters/tags"),
        (json!({"project": "x", "extra": 1}), "/parameters/extra"),
    ] {
        let refused = request(parameters.clone()).await;
        refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert_eq!(
            refused.body["errors"][0]["pointer"], pointer,
            "{parameters}"
        );
    }
    let accepted =
        request(json!({"project": "x", "gpus": 4, "share": 1, "public": true, "tags": ["a"]}))
            .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:#}", accepted.body);
    db.drop_now().await;
}
