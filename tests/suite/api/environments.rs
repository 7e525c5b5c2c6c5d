//! `/v1/environments` of a real `hubwright serve --api` process over HTTP:
//! requests validated before anything is stored, owners isolated, pages
//! stable, idempotency keys, teardown and extension.

use std::time::Duration;

use hubwright_state::Store;
use hubwright_state::model::{Role, RunState};
use hubwright_testkit::harness::{fast_config, spawn_worker};
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait, write_workflow};
use serde_json::{Value, json};

const LAB: &str = r#"
name: lab
ttl: { default: 1h, maximum: 4h }
parameters:
  cpu: { type: number, default: 1, minimum: 0.5, maximum: 4 }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// A server with some templates, and its database.
struct Api {
    db: TestDatabase,
    server: ApiServer,
}

/// The id of the environment a create answered with.
fn environment_id(created: &Reply) -> String {
    created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

impl Api {
    async fn new() -> Self {
        Self::with_templates(&[("lab", LAB)]).await
    }

    async fn with_templates(templates: &[(&str, &str)]) -> Self {
        let db = TestDatabase::create().await;
        let dir = scratch_dir("env-api");
        for (name, yaml) in templates {
            write_workflow(&dir, name, yaml);
        }
        let server = ApiServer::start(&db, &dir, &[]).await;
        Self { db, server }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    async fn token(&self, subject: &str, role: Role) -> String {
        token(self.store(), subject, role).await
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        let call = self.server.request(method, path).token(token);
        match body {
            Some(body) => call.json(&body).send().await,
            None => call.send().await,
        }
    }

    async fn create(&self, token: &str, body: Value) -> Reply {
        self.call("POST", "/v1/environments", token, Some(body))
            .await
    }

    async fn extend(&self, token: &str, id: &str, body: Value) -> Reply {
        self.call(
            "POST",
            &format!("/v1/environments/{id}/extend"),
            token,
            Some(body),
        )
        .await
    }

    async fn create_with_key(&self, token: &str, key: &str, body: Value) -> Reply {
        self.server
            .post("/v1/environments")
            .token(token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
    }

    async fn environments(&self) -> i64 {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM environments")
            .fetch_one(self.store().pool())
            .await
            .unwrap();
        rows
    }

    async fn finish(self) {
        drop(self.server);
        self.db.drop_now().await;
    }
}

fn names(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {:#}", reply.body))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_request_is_accepted_with_its_provisioning_run() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;

    let reply = api
        .create(
            &alice,
            json!({"name": "lab-1", "template": "lab", "parameters": {"cpu": 2}, "ttl": "2h"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
    assert_eq!(reply.content_type(), "application/json");
    let env = &reply.body["environment"];
    assert_eq!(env["owner"], "alice");
    assert_eq!(env["phase"], "requested");
    assert_eq!(env["parameters"], json!({"cpu": 2}));
    let created: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(env["created_at"].clone()).unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(env["expires_at"].clone()).unwrap();
    assert_eq!(expires - created, chrono::Duration::hours(2));

    let id = env["id"].as_str().unwrap();
    let shown = api
        .call("GET", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["current_run"]["id"], reply.body["run_id"]);
    assert_eq!(shown.body["current_run"]["workflow"], "provision");
    assert_eq!(
        shown.body["current_run"]["steps"].as_array().unwrap().len(),
        2
    );
    api.finish().await;
}

#[tokio::test]
async fn bad_requests_name_the_field_and_store_nothing() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let cases = [
        (json!({"template": "lab"}), "name: must be a DNS-1123 label"),
        (
            json!({"name": "Lab", "template": "lab"}),
            "name: must be a DNS-1123 label",
        ),
        (
            json!({"name": "-lab", "template": "lab"}),
            "name: must be a DNS-1123 label",
        ),
        (
            json!({"name": "a".repeat(41), "template": "lab"}),
            "name: must be a DNS-1123 label: 1 to 40",
        ),
        (
            json!({"name": "lab", "template": "nope"}),
            "template: no template named `nope` (known: lab)",
        ),
        (
            json!({"name": "lab", "template": "lab", "colour": "red"}),
            "body: unknown field `colour`",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"gpu": 1}}),
            "parameters.gpu: template `lab` declares no such parameter",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"cpu": "two"}}),
            "parameters.cpu: must be a number",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"cpu": 8}}),
            "parameters.cpu: must be at most 4",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": "5h"}),
            "ttl: 5h is beyond the maximum of template `lab` (4h)",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": "soon"}),
            "ttl: `soon` is not a duration",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": 3}),
            "body: invalid type",
        ),
        (
            json!({"name": "lab", "template": "lab", "cluster": "Prod!"}),
            "cluster: no cluster named `Prod!` (known: default)",
        ),
    ];
    for (body, expected) in cases {
        let reply = api.create(&alice, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:#}",
            reply.body
        );
        let detail = reply.detail();
        assert!(
            detail.starts_with(expected),
            "{body}: `{detail}` should start with `{expected}`"
        );
    }
    assert_eq!(api.environments().await, 0, "nothing was stored");
    api.finish().await;
}

/// One bad request and the problem it must get.
struct Bad<'a> {
    what: &'a str,
    method: &'a str,
    path: String,
    /// Content type and raw body, when there is a body.
    body: Option<(&'a str, Vec<u8>)>,
    headers: &'a [(&'a str, &'a str)],
    status: StatusCode,
    kind: &'a str,
}

#[tokio::test]
async fn every_kind_of_bad_input_gets_its_documented_problem_and_changes_nothing() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let created = api
        .create(&alice, json!({"name": "kept", "template": "lab"}))
        .await;
    let id = environment_id(&created);
    let before = api.store().environment(id.parse().unwrap()).await.unwrap();
    let failed = hubwright_testkit::factory::failed_run(api.store(), "alice", "boom").await;

    let json_body = |text: &str| Some(("application/json", text.as_bytes().to_vec()));
    let create = "/v1/environments".to_owned();
    let extend = format!("/v1/environments/{id}/extend");
    let retry = format!("/v1/runs/{failed}/retry");
    let long_key = "k".repeat(201);
    let over_limit = format!(
        r#"{{"name": "big", "template": "lab", "parameters": {{"pad": "{}"}}}}"#,
        "x".repeat(64 * 1024)
    );
    let (invalid, bad_request, too_large, media_type) = (
        "invalid-request",
        "bad-request",
        "payload-too-large",
        "unsupported-media-type",
    );
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    #[rustfmt::skip]
    let rows = [
        // What the body is made of.
        Bad { what: "malformed JSON", method: "POST", path: create.clone(), body: json_body(r#"{"name": "#), headers: &[], status: StatusCode::BAD_REQUEST, kind: bad_request },
        Bad { what: "invalid UTF-8", method: "POST", path: create.clone(), body: Some(("application/json", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'])), headers: &[], status: StatusCode::BAD_REQUEST, kind: bad_request },
        Bad { what: "invalid UTF-8 in a string value", method: "POST", path: create.clone(), body: Some(("application/json", [br#"{"name": ""#.as_slice(), &[0xc3, 0x28], br#"", "template": "lab"}"#].concat())), headers: &[], status: StatusCode::BAD_REQUEST, kind: bad_request },
        Bad { what: "a body over 64 KiB", method: "POST", path: create.clone(), body: Some(("application/json", over_limit.clone().into_bytes())), headers: &[], status: StatusCode::PAYLOAD_TOO_LARGE, kind: too_large },
        Bad { what: "a body over 64 KiB to extend", method: "POST", path: extend.clone(), body: Some(("application/json", over_limit.clone().into_bytes())), headers: &[], status: StatusCode::PAYLOAD_TOO_LARGE, kind: too_large },
        Bad { what: "text/plain", method: "POST", path: create.clone(), body: Some(("text/plain", br#"{"name": "lab"}"#.to_vec())), headers: &[], status: StatusCode::UNSUPPORTED_MEDIA_TYPE, kind: media_type },
        Bad { what: "a form", method: "POST", path: create.clone(), body: Some(("application/x-www-form-urlencoded", b"name=lab&template=lab".to_vec())), headers: &[], status: StatusCode::UNSUPPORTED_MEDIA_TYPE, kind: media_type },
        Bad { what: "text/plain to extend", method: "POST", path: extend.clone(), body: Some(("text/plain", b"2h".to_vec())), headers: &[], status: StatusCode::UNSUPPORTED_MEDIA_TYPE, kind: media_type },
        Bad { what: "a JSON array", method: "POST", path: create.clone(), body: json_body("[]"), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a JSON string", method: "POST", path: create.clone(), body: json_body(r#""lab""#), headers: &[], status: unprocessable, kind: invalid },
        // Missing, unknown and wrongly typed fields.
        Bad { what: "an empty body", method: "POST", path: create.clone(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "JSON null", method: "POST", path: create.clone(), body: json_body("null"), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "no name", method: "POST", path: create.clone(), body: json_body(r#"{"template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an unknown field", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "size": "xl"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a numeric name", method: "POST", path: create.clone(), body: json_body(r#"{"name": 7, "template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "parameters as a list", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "parameters": [1]}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a null name", method: "POST", path: create.clone(), body: json_body(r#"{"name": null, "template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "no ttl to extend", method: "POST", path: extend.clone(), body: json_body("{}"), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "centuries to extend", method: "POST", path: extend.clone(), body: json_body(r#"{"ttl": "500000y"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an unknown field to extend", method: "POST", path: extend.clone(), body: json_body(r#"{"ttl": "2h", "by": "alice"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a numeric ttl to extend", method: "POST", path: extend.clone(), body: json_body(r#"{"ttl": 2}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a step index as text", method: "POST", path: retry.clone(), body: json_body(r#"{"from_step": "0"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a negative step index", method: "POST", path: retry.clone(), body: json_body(r#"{"from_step": -1}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a fractional step index", method: "POST", path: retry.clone(), body: json_body(r#"{"from_step": 0.5}"#), headers: &[], status: unprocessable, kind: invalid },
        // Names.
        Bad { what: "an empty name", method: "POST", path: create.clone(), body: json_body(r#"{"name": "", "template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an upper-case name", method: "POST", path: create.clone(), body: json_body(r#"{"name": "Lab", "template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a name with an underscore", method: "POST", path: create.clone(), body: json_body(r#"{"name": "my_lab", "template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a name ending in -", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab-", "template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a name of 41 characters", method: "POST", path: create.clone(), body: json_body(&format!(r#"{{"name": "{}", "template": "lab"}}"#, "a".repeat(41))), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a non-ASCII name", method: "POST", path: create.clone(), body: json_body(r#"{"name": "läb", "template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a name with a dot", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab.example", "template": "lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an unknown template", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "../lab"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a cluster with a slash", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "cluster": "a/b"}"#), headers: &[], status: unprocessable, kind: invalid },
        // TTLs.
        Bad { what: "a ttl that is not a duration", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "ttl": "tomorrow"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a zero ttl", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "ttl": "0s"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a negative ttl", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "ttl": "-1h"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a ttl without a unit", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "ttl": "2"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a ttl beyond the maximum", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "ttl": "4h1s"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a ttl of centuries", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "ttl": "500000y"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an empty ttl", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab", "ttl": ""}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a zero ttl to extend", method: "POST", path: extend.clone(), body: json_body(r#"{"ttl": "0h"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a ttl beyond the maximum to extend", method: "POST", path: extend.clone(), body: json_body(r#"{"ttl": "5h"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a ttl that is not a duration to extend", method: "POST", path: extend.clone(), body: json_body(r#"{"ttl": "later"}"#), headers: &[], status: unprocessable, kind: invalid },
        // Headers, paths and query strings.
        Bad { what: "an Idempotency-Key with a space", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab"}"#), headers: &[("idempotency-key", "a b")], status: unprocessable, kind: invalid },
        Bad { what: "an Idempotency-Key over 200 characters", method: "POST", path: create.clone(), body: json_body(r#"{"name": "lab", "template": "lab"}"#), headers: &[("idempotency-key", &long_key)], status: unprocessable, kind: invalid },
        Bad { what: "an environment id that is not a UUID", method: "GET", path: "/v1/environments/lab".to_owned(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a run id that is not a UUID", method: "POST", path: "/v1/runs/1/cancel".to_owned(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a page size of 0", method: "GET", path: "/v1/environments?limit=0".to_owned(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a page size of 201", method: "GET", path: "/v1/environments?limit=201".to_owned(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a page size in words", method: "GET", path: "/v1/environments?limit=ten".to_owned(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a cursor that is not a UUID", method: "GET", path: "/v1/environments?cursor=2".to_owned(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an unknown phase", method: "GET", path: "/v1/environments?phase=sleeping".to_owned(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an unknown query parameter", method: "GET", path: "/v1/environments?colour=red".to_owned(), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an events page size of 1001", method: "GET", path: format!("/v1/runs/{failed}/events?limit=1001"), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "an events cursor in words", method: "GET", path: format!("/v1/runs/{failed}/events?after=x"), body: None, headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a PUT", method: "PUT", path: create.clone(), body: json_body("{}"), headers: &[], status: StatusCode::METHOD_NOT_ALLOWED, kind: "method-not-allowed" },
        Bad { what: "an unknown path", method: "GET", path: "/v1/environment".to_owned(), body: None, headers: &[], status: StatusCode::NOT_FOUND, kind: "not-found" },
    ];
    for row in rows {
        let token = if row.path.starts_with("/v1/runs") {
            &ops
        } else {
            &alice
        };
        let mut call = api.server.request(row.method, &row.path).token(token);
        for (name, value) in row.headers {
            call = call.header(name, value);
        }
        if let Some((content_type, bytes)) = row.body {
            call = call.body(content_type, bytes);
        }
        let reply = call.send().await;
        assert_eq!(reply.status, row.status, "{}: {:#}", row.what, reply.body);
        assert_eq!(
            reply.content_type(),
            "application/problem+json",
            "{}",
            row.what
        );
        assert_eq!(
            reply.body["type"],
            format!("urn:hubwright:problem:{}", row.kind),
            "{}",
            row.what
        );
        assert_eq!(reply.body["status"], row.status.as_u16(), "{}", row.what);
        assert!(!reply.detail().is_empty(), "{}", row.what);
    }

    // The limit itself is allowed: a body of exactly 64 KiB is read, and
    // refused for what it says, not for its size.
    let prefix = r#"{"name": "big", "template": "lab", "parameters": {"pad": ""#;
    let suffix = r#""}}"#;
    let at_limit = format!(
        "{prefix}{}{suffix}",
        "x".repeat(64 * 1024 - prefix.len() - suffix.len())
    );
    assert_eq!(at_limit.len(), 64 * 1024);
    let reply = api
        .server
        .post("/v1/environments")
        .token(&alice)
        .body("application/json", at_limit)
        .send()
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(
        reply.detail().starts_with("parameters.pad: "),
        "{}",
        reply.detail()
    );

    assert_eq!(
        api.environments().await,
        1,
        "no bad request stored anything"
    );
    let after = api.store().environment(id.parse().unwrap()).await.unwrap();
    assert_eq!(after.expires_at, before.expires_at, "nor extended anything");
    assert_eq!(
        api.store().run(failed).await.unwrap().state,
        RunState::Failed,
        "nor retried anything"
    );
    api.finish().await;
}

#[tokio::test]
async fn a_name_is_unique_per_owner_among_live_environments() {
    // A second template whose namespace pattern has no `{suffix}`: its
    // namespaces can collide across owners.
    let shared = LAB
        .replace("name: lab", "name: lab-b")
        .replace("ttl:", "namespace: lab-b-{name}\nttl:");
    let api = Api::with_templates(&[("lab", LAB), ("lab-b", &shared)]).await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let body = json!({"name": "lab", "template": "lab"});

    let first = api.create(&alice, body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let namespace = first.body["environment"]["namespace"].as_str().unwrap();
    assert!(
        namespace.starts_with("jh-lab-") && namespace.len() == "jh-lab-".len() + 8,
        "the default pattern is jh-{{name}}-{{suffix}}: {namespace}"
    );
    let taken = api.create(&alice, body.clone()).await;
    taken.assert_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        taken.body["detail"],
        "name: alice already has an environment named `lab`"
    );
    let elsewhere = json!({"name": "lab", "template": "lab-b"});
    let still_taken = api.create(&alice, elsewhere.clone()).await;
    still_taken.assert_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        still_taken.body["detail"], "name: alice already has an environment named `lab`",
        "a name is the owner's across templates"
    );
    // bob's names are his own, and the default namespaces never collide, so
    // bob cannot learn from a refusal that alice has a `lab`.
    let bobs = api.create(&bob, body).await;
    assert_eq!(bobs.status, StatusCode::ACCEPTED, "{:?}", bobs.body);
    assert_ne!(bobs.body["environment"]["namespace"], namespace);

    // A template without `{suffix}` shares namespaces across owners; the
    // second is refused up front and is not told whose it is.
    assert_eq!(
        api.create(&alice, json!({"name": "shared", "template": "lab-b"}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let namespace_taken = api
        .create(&bob, json!({"name": "shared", "template": "lab-b"}))
        .await;
    namespace_taken.assert_problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        namespace_taken.body["detail"],
        "name: namespace `lab-b-shared` on cluster `default` belongs to another live environment; choose another name"
    );
    assert!(!namespace_taken.detail().contains("alice"));
    assert_eq!(api.environments().await, 3);
    api.finish().await;
}

#[tokio::test]
async fn a_developer_cannot_read_delete_extend_or_even_detect_anothers_environment() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let admin = api.token("root", Role::Admin).await;
    let created = api
        .create(&alice, json!({"name": "private", "template": "lab"}))
        .await;
    let id = environment_id(&created);
    let run = created.body["run_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/environments/{id}");
    let missing = format!("/v1/environments/{}", uuid::Uuid::now_v7());

    for (method, suffix, body) in [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/extend", Some(json!({"ttl": "2h"}))),
    ] {
        let theirs = api
            .call(method, &format!("{path}{suffix}"), &bob, body.clone())
            .await;
        let nobodys = api
            .call(method, &format!("{missing}{suffix}"), &bob, body)
            .await;
        assert_eq!(
            theirs.status,
            StatusCode::NOT_FOUND,
            "{method} {path}{suffix}"
        );
        theirs.assert_problem(StatusCode::NOT_FOUND, "not-found");
        assert_eq!(nobodys.status, StatusCode::NOT_FOUND);
        assert_eq!(
            theirs.detail().split(' ').take(2).collect::<Vec<_>>(),
            nobodys.detail().split(' ').take(2).collect::<Vec<_>>(),
            "the answer for someone else's environment reads like the one for a missing one"
        );
    }
    // Its provisioning run is just as invisible.
    for suffix in ["", "/events"] {
        let theirs = api
            .call("GET", &format!("/v1/runs/{run}{suffix}"), &bob, None)
            .await;
        theirs.assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    let listed = api.call("GET", "/v1/environments", &bob, None).await;
    assert_eq!(listed.body["items"], json!([]));
    let asked = api
        .call("GET", "/v1/environments?owner=alice", &bob, None)
        .await;
    assert_eq!(asked.body["items"], json!([]));

    for caller in [&ops, &admin] {
        let operator = api.call("GET", &path, caller, None).await;
        assert_eq!(operator.status, StatusCode::OK, "operators see everything");
        let everyone = api
            .call("GET", "/v1/environments?owner=alice", caller, None)
            .await;
        assert_eq!(names(&everyone), ["private"], "and list anyone's");
        let run = api
            .call("GET", &format!("/v1/runs/{run}"), caller, None)
            .await;
        assert_eq!(run.status, StatusCode::OK);
    }
    assert_eq!(
        api.store()
            .environment(id.parse().unwrap())
            .await
            .unwrap()
            .phase
            .to_string(),
        "requested"
    );
    api.finish().await;
}

#[tokio::test]
async fn an_operator_extends_and_deletes_anyones_environment() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id = environment_id(&created);

    let extended = api.extend(&ops, &id, json!({"ttl": "2h"})).await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &ops, None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:#}", deleted.body);
    let shown = api
        .call("GET", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(shown.body["phase"], "tearing_down");
    api.finish().await;
}

#[tokio::test]
async fn pages_stay_stable_while_environments_are_added() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    for i in 0..5 {
        api.create(
            &alice,
            json!({"name": format!("env-{i}"), "template": "lab"}),
        )
        .await;
    }
    let first = api
        .call("GET", "/v1/environments?limit=2", &alice, None)
        .await;
    assert_eq!(names(&first), ["env-0", "env-1"]);
    api.create(&alice, json!({"name": "env-5", "template": "lab"}))
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api
        .call(
            "GET",
            &format!("/v1/environments?limit=2&cursor={cursor}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(names(&second), ["env-2", "env-3"]);
    let cursor = second.body["next_cursor"].as_str().unwrap();
    let third = api
        .call(
            "GET",
            &format!("/v1/environments?limit=2&cursor={cursor}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(names(&third), ["env-4", "env-5"]);
    assert_eq!(
        third.body["next_cursor"],
        Value::Null,
        "the last page says so"
    );

    let bad = api
        .call("GET", "/v1/environments?limit=0", &alice, None)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = api
        .call("GET", "/v1/environments?colour=red", &alice, None)
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    api.finish().await;
}

#[tokio::test]
async fn an_operator_pages_through_everyone_while_more_are_asked_for_between_pages() {
    let api = Api::new().await;
    let ops = api.token("ops", Role::Operator).await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let mut expected = Vec::new();
    for i in 0..9 {
        let (owner, token) = if i % 2 == 0 {
            ("alice", &alice)
        } else {
            ("bob", &bob)
        };
        let name = format!("{owner}-{i}");
        api.create(token, json!({"name": name, "template": "lab"}))
            .await;
        expected.push(name);
    }

    // Two more arrive, one per owner, between every two pages.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/environments?limit=4&cursor={cursor}"),
            None => "/v1/environments?limit=4".to_owned(),
        };
        let page = api.call("GET", &path, &ops, None).await;
        assert_eq!(page.status, StatusCode::OK, "{:#}", page.body);
        seen.extend(names(&page));
        for token in [&alice, &bob] {
            let name = format!("late-{added}");
            added += 1;
            let created = api
                .create(token, json!({"name": name, "template": "lab"}))
                .await;
            assert_eq!(created.status, StatusCode::ACCEPTED);
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(added < 100, "paging ends");
    }

    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no environment twice: {seen:?}");
    assert_eq!(
        seen[..expected.len()],
        expected[..],
        "the ones there before come first, in order"
    );
    // Everything listed after them was created later: rows added behind the
    // cursor never push earlier ones onto the next page.
    let ids: Vec<String> = {
        let all = api
            .call("GET", "/v1/environments?limit=200", &ops, None)
            .await;
        names(&all)
    };
    let positions: Vec<usize> = seen
        .iter()
        .map(|name| ids.iter().position(|n| n == name).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "pages follow one order: {seen:?}"
    );
    assert_eq!(
        seen.len(),
        ids.len() - 2,
        "every row but the two created after the last page was read"
    );
    api.finish().await;
}

#[tokio::test]
async fn ttl_extensions_stay_within_the_templates_maximum() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id = environment_id(&created);

    let extended = api.extend(&alice, &id, json!({"ttl": "3h"})).await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    let before: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(created.body["environment"]["expires_at"].clone()).unwrap();
    let after: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(extended.body["expires_at"].clone()).unwrap();
    assert!(
        after - before >= chrono::Duration::hours(2),
        "{before} → {after}"
    );

    let too_long = api.extend(&alice, &id, json!({"ttl": "5h"})).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        too_long
            .detail()
            .contains("beyond the template's maximum of 4h from creation")
    );
    let missing = api.extend(&alice, &id, json!({})).await;
    assert_eq!(missing.body["detail"], "ttl: is required, e.g. \"4h\"");
    api.finish().await;
}

#[tokio::test]
async fn deleting_cancels_provisioning_tears_down_and_a_second_delete_is_harmless() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "short-lived", "template": "lab"}))
        .await;
    let id = environment_id(&created);
    let provision: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();

    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(
        deleted.body["teardown"], "started",
        "the idle provisioning run was cancelled first"
    );
    assert_eq!(
        api.store().run(provision).await.unwrap().state,
        RunState::Cancelled
    );
    let stopped = api.store().events(provision, 0, 100).await.unwrap();
    assert!(
        stopped
            .iter()
            .any(|e| e.kind == "run_cancelled" && e.actor == "alice"),
        "who stopped it is on the run's timeline"
    );
    let again = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["teardown"], "already_requested");

    let worker = spawn_worker(api.store(), fast_config("w"));
    let teardown: uuid::Uuid = deleted.body["run_id"].as_str().unwrap().parse().unwrap();
    wait::run_state(
        api.store(),
        teardown,
        RunState::Succeeded,
        Duration::from_secs(20),
    )
    .await;
    worker.shutdown().await.unwrap();
    let env = api.store().environment(id.parse().unwrap()).await.unwrap();
    assert_eq!(env.phase.to_string(), "deleted");
    let listed = api.call("GET", "/v1/environments", &alice, None).await;
    assert_eq!(
        listed.body["items"],
        json!([]),
        "deleted environments are not listed by default"
    );
    let with_deleted = api
        .call("GET", "/v1/environments?include_deleted=true", &alice, None)
        .await;
    assert_eq!(names(&with_deleted), ["short-lived"]);
    api.finish().await;
}

#[tokio::test]
async fn the_phase_follows_the_runs_from_requested_to_ready() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "lab"}))
        .await;
    let id: uuid::Uuid = environment_id(&created).parse().unwrap();
    let run: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();

    let worker = spawn_worker(api.store(), fast_config("w"));
    wait::run_state(
        api.store(),
        run,
        RunState::Succeeded,
        Duration::from_secs(20),
    )
    .await;
    worker.shutdown().await.unwrap();
    assert_eq!(
        api.store().environment(id).await.unwrap().phase.to_string(),
        "ready"
    );
    let shown = api
        .call("GET", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(shown.body["phase"], "ready", "{:#}", shown.body);
    let ready = api
        .call("GET", "/v1/environments?phase=ready", &alice, None)
        .await;
    assert_eq!(names(&ready), ["lab"]);
    api.finish().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let body = json!({"name": "once", "template": "lab", "ttl": "1h"});

    let first = api.create_with_key(&alice, "key-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    // Formatting and spelled-out defaults do not make another request.
    let same = json!({"ttl": "1h", "template": "lab", "name": "once", "cluster": "default", "parameters": {}});
    let again = api.create_with_key(&alice, "key-1", same).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(
        again.body, first.body,
        "the same answer, not a second environment"
    );

    let other = api
        .create_with_key(&alice, "key-1", json!({"name": "twice", "template": "lab"}))
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        other.body["detail"],
        "Idempotency-Key: was used before with a different request; use a new key"
    );
    let bad = api.create_with_key(&alice, "has space", body.clone()).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.environments().await, 1);

    // A key is the caller's own: bob's "key-1" with another body is another
    // request, not a reuse.
    let bobs = api
        .create_with_key(
            &bob,
            "key-1",
            json!({"name": "bobs-once", "template": "lab", "ttl": "1h"}),
        )
        .await;
    assert_eq!(bobs.status, StatusCode::ACCEPTED, "{:#}", bobs.body);
    assert_eq!(bobs.body["environment"]["owner"], "bob");
    assert_ne!(bobs.body, first.body);
    assert_eq!(api.environments().await, 2);
    api.finish().await;
}

#[tokio::test]
async fn concurrent_duplicates_with_one_key_create_one_environment() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let body = json!({"name": "raced", "template": "lab"});
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        racers.spawn(
            api.server
                .post("/v1/environments")
                .token(&alice)
                .header("idempotency-key", "race")
                .json(&body)
                .send(),
        );
    }
    let replies: Vec<Reply> = racers.join_all().await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::ACCEPTED),
        "every duplicate gets the answer: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        replies.windows(2).all(|w| w[0].body == w[1].body),
        "the same answer"
    );
    assert_eq!(api.environments().await, 1);
    api.finish().await;
}

#[tokio::test]
async fn deleting_during_provisioning_stops_the_step_then_tears_down_without_waiting_for_the_sweep()
{
    let api = Api::with_templates(&[(
        "slow",
        r#"
name: slow
workflows:
  provision:
    steps:
      - { name: long, kind: test-block, with: { duration: 30s } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#,
    )])
    .await;
    let alice = api.token("alice", Role::Developer).await;
    let mut config = fast_config("w");
    // The sweep would take a minute: only the worker's own follow-up can be quick.
    config.rescue_interval = Duration::from_secs(60);
    let worker = spawn_worker(api.store(), config);

    let created = api
        .create(&alice, json!({"name": "slow", "template": "slow"}))
        .await;
    let id: uuid::Uuid = environment_id(&created).parse().unwrap();
    let provision: uuid::Uuid = created.body["run_id"].as_str().unwrap().parse().unwrap();
    wait::run_state(
        api.store(),
        provision,
        RunState::Running,
        Duration::from_secs(20),
    )
    .await;

    let deleted = api
        .call("DELETE", &format!("/v1/environments/{id}"), &alice, None)
        .await;
    assert_eq!(
        deleted.body["teardown"], "waiting",
        "the step in flight must stop first"
    );
    wait::run_state(
        api.store(),
        provision,
        RunState::Cancelled,
        Duration::from_secs(10),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.store().environment(id).await.unwrap().phase.to_string() != "deleted" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "teardown did not follow the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await.unwrap();
    api.finish().await;
}

#[tokio::test]
async fn expiring_within_lists_only_what_expires_soon_and_refuses_a_bad_duration() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    for (name, ttl) in [("soon", "1h"), ("later", "3h"), ("sooner", "30m")] {
        let created = api
            .create(&alice, json!({"name": name, "template": "lab", "ttl": ttl}))
            .await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    }
    let within = api
        .call("GET", "/v1/environments?expiring_within=2h", &alice, None)
        .await;
    assert_eq!(within.status, StatusCode::OK, "{:#}", within.body);
    assert_eq!(names(&within), ["soon", "sooner"]);
    let none = api
        .call("GET", "/v1/environments?expiring_within=10m", &alice, None)
        .await;
    assert!(names(&none).is_empty());
    let bad = api
        .call("GET", "/v1/environments?expiring_within=soon", &alice, None)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.detail().starts_with("expiring_within:"),
        "{}",
        bad.detail()
    );
    api.finish().await;
}

const LIMITED: &str = r#"
name: limited
ttl: { default: 1h, maximum: 8h, max_extensions: 2 }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

#[tokio::test]
async fn max_extensions_refuses_the_extension_after_the_last_allowed_one() {
    let api = Api::with_templates(&[("limited", LIMITED)]).await;
    let alice = api.token("alice", Role::Developer).await;
    let created = api
        .create(&alice, json!({"name": "lab", "template": "limited"}))
        .await;
    let id = environment_id(&created);
    let extend = || async { api.extend(&alice, &id, json!({"ttl": "2h"})).await };
    assert_eq!(extend().await.status, StatusCode::OK);
    assert_eq!(extend().await.status, StatusCode::OK);
    let third = extend().await;
    assert_eq!(third.status, StatusCode::CONFLICT, "{:#}", third.body);
    assert!(
        third
            .detail()
            .contains("was extended 2 times already, the most its template allows"),
        "{}",
        third.detail()
    );
    api.finish().await;
}

#[tokio::test]
async fn ttls_count_from_the_apis_clock_to_the_microsecond() {
    use hubwright_state::{Clock, ManualClock, SystemClock};
    let db = TestDatabase::create().await;
    let dir = write_workflow(&scratch_dir("env-api-clock"), "lab", LAB);
    // A whole second, so what Postgres stores (microseconds) compares equal.
    let start = chrono::DateTime::from_timestamp(SystemClock.now().timestamp(), 0).unwrap();
    let clock = ManualClock::new(start);
    let server =
        ApiServer::start_with_clock(&db, &dir, &[], std::sync::Arc::new(clock.clone())).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let expires_at = |body: &Value| -> chrono::DateTime<chrono::Utc> {
        serde_json::from_value(body["expires_at"].clone()).unwrap()
    };

    let created = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({"name": "lab", "template": "lab"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let environment = &created.body["environment"];
    assert_eq!(expires_at(environment), start + chrono::Duration::hours(1));

    clock.advance(chrono::Duration::minutes(30));
    let id = environment["id"].as_str().unwrap();
    let extend = |ttl: &'static str| {
        server
            .post(&format!("/v1/environments/{id}/extend"))
            .token(&alice)
            .json(&json!({ "ttl": ttl }))
            .send()
    };
    let extended = extend("3h").await;
    assert_eq!(extended.status, StatusCode::OK, "{:#}", extended.body);
    assert_eq!(
        expires_at(&extended.body),
        start + chrono::Duration::minutes(210),
        "three hours from the API's now, not the wall clock's"
    );
    // 4h from now is 4h30m from creation: past the template's maximum.
    let too_long = extend("4h").await;
    too_long.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(
        too_long
            .detail()
            .contains("beyond the template's maximum of 4h from creation"),
        "{}",
        too_long.detail()
    );
    drop(server);
    db.drop_now().await;
}
