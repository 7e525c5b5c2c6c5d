//! `/v1/environments`: requests validated before anything is stored, and idempotency keys.

use super::*;

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
        (
            json!({"template": "lab"}),
            "name: must be a DNS-1123 label",
            "/name",
        ),
        (
            json!({"name": "Lab", "template": "lab"}),
            "name: must be a DNS-1123 label",
            "/name",
        ),
        (
            json!({"name": "-lab", "template": "lab"}),
            "name: must be a DNS-1123 label",
            "/name",
        ),
        (
            json!({"name": "a".repeat(41), "template": "lab"}),
            "name: must be a DNS-1123 label: 1 to 40",
            "/name",
        ),
        (
            json!({"name": "lab", "template": "nope"}),
            "template: no template named `nope` (known: lab)",
            "/template",
        ),
        (
            json!({"name": "lab", "template": "lab", "colour": "red"}),
            "colour: unknown field `colour`",
            "/colour",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"gpu": 1}}),
            "parameters.gpu: template `lab` declares no such parameter",
            "/parameters/gpu",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"cpu": "two"}}),
            "parameters.cpu: must be a number",
            "/parameters/cpu",
        ),
        (
            json!({"name": "lab", "template": "lab", "parameters": {"cpu": 8}}),
            "parameters.cpu: must be at most 4",
            "/parameters/cpu",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": "5h"}),
            "ttl: 5h is beyond the maximum of template `lab` (4h)",
            "/ttl",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": "soon"}),
            "ttl: `soon` is not a duration",
            "/ttl",
        ),
        (
            json!({"name": "lab", "template": "lab", "ttl": 3}),
            "ttl: invalid type",
            "/ttl",
        ),
        (
            json!({"name": "lab", "template": "lab", "cluster": "Prod!"}),
            "cluster: no cluster named `Prod!` (known: default)",
            "/cluster",
        ),
    ];
    for (body, expected, pointer) in cases {
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
        // `errors` says the same for machines: a JSON Pointer into the body and the rule.
        let errors = reply.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{body}: {:#}", reply.body);
        assert_eq!(errors[0]["pointer"], pointer, "{body}");
        assert!(
            detail.ends_with(errors[0]["rule"].as_str().unwrap()),
            "{body}: the rule is the detail's: {:#}",
            reply.body
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
        Bad { what: "a step name that names no step", method: "POST", path: retry.clone(), body: json_body(r#"{"from_step": "0"}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a step number below 1", method: "POST", path: retry.clone(), body: json_body(r#"{"from_step": 0}"#), headers: &[], status: unprocessable, kind: invalid },
        Bad { what: "a fractional step number", method: "POST", path: retry.clone(), body: json_body(r#"{"from_step": 0.5}"#), headers: &[], status: unprocessable, kind: invalid },
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
        Bad { what: "an environment that is neither an id nor a name", method: "GET", path: "/v1/environments/Not_a_name".to_owned(), body: None, headers: &[], status: StatusCode::NOT_FOUND, kind: "not-found" },
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
            format!("/docs/problems/{}", row.kind),
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

/// Every field of a creation's `environment` is what a read of it says then
/// (the answer is built without reading the database back).
async fn assert_answer_is_what_a_read_says(api: &Api, token: &str, created: &Reply) {
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let answered = created.body["environment"].as_object().unwrap();
    let id = environment_id(created);
    let shown = api
        .call("GET", &format!("/v1/environments/{id}"), token, None)
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:#}", shown.body);
    for (field, value) in answered {
        assert_eq!(
            &shown.body[field], value,
            "`{field}`: the answer says {value}, a read says {}",
            shown.body[field]
        );
    }
    assert_eq!(shown.body["current_run"]["id"], created.body["run_id"]);
    assert!(
        answered.len() >= 13,
        "the answer has the environment's fields: {answered:?}"
    );
}

#[tokio::test]
async fn a_creations_answer_is_what_a_read_of_the_environment_says() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    let plain = api
        .create(
            &alice,
            json!({"name": "plain", "template": "lab", "parameters": {"cpu": 2}}),
        )
        .await;
    assert_answer_is_what_a_read_says(&api, &alice, &plain).await;
    let conditions = &plain.body["environment"]["conditions"];
    assert_eq!(conditions[0]["reason"], "Pending");
    assert_eq!(conditions[0]["message"], "waiting for a worker");
    assert_eq!(conditions[1]["message"], "not started");

    let keyed = api
        .create_with_key(
            &alice,
            "answer-1",
            json!({"name": "keyed", "template": "lab"}),
        )
        .await;
    assert_answer_is_what_a_read_says(&api, &alice, &keyed).await;
    let replayed = api
        .create_with_key(
            &alice,
            "answer-1",
            json!({"name": "keyed", "template": "lab"}),
        )
        .await;
    assert_eq!(
        replayed.body, keyed.body,
        "a replay answers the stored answer"
    );
    api.finish().await;
}
