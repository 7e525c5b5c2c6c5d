//! `/v1/tokens` of a real `hubwright serve --api` process over HTTP: only
//! admins create, list and revoke tokens; a secret is shown once; a revoked
//! token stops working at once; who did what is on the token's timeline.

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir};
use serde_json::json;

async fn serve(db: &TestDatabase) -> ApiServer {
    ApiServer::start(db, &scratch_dir("no-workflows"), &[]).await
}

/// (kind, actor) of every event on a token's timeline, oldest first.
async fn timeline(db: &TestDatabase, token_id: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT kind, actor FROM events WHERE token_id = $1 ORDER BY id")
        .bind(token_id.parse::<uuid::Uuid>().unwrap())
        .fetch_all(db.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_creates_a_token_that_works_and_its_secret_is_shown_once() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;

    let created = server
        .post("/v1/tokens")
        .token(&root)
        .json(&json!({"subject": "carol", "role": "operator"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    assert_eq!(created.body["subject"], "carol");
    assert_eq!(created.body["role"], "operator");
    assert_eq!(created.body["created_by"], "root");
    assert_eq!(created.body["revoked_at"], serde_json::Value::Null);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("hw_"), "{secret}");
    let id = created.body["id"].as_str().unwrap().to_owned();

    let as_carol = server.get("/metrics").token(&secret).send().await;
    assert_eq!(as_carol.status, StatusCode::OK, "carol is an operator now");

    let listed = server.get("/v1/tokens").token(&root).send().await;
    assert_eq!(listed.status, StatusCode::OK);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "root's own and carol's: {items:?}");
    assert_eq!(items[0]["id"], id.as_str(), "newest first");
    assert!(
        items[1]["last_used_at"].is_string(),
        "root's token has been used: {:#}",
        items[1]
    );
    assert!(
        !listed.body.to_string().contains(&secret[3..]),
        "the secret is never listed"
    );
    assert!(
        items
            .iter()
            .all(|t| t.get("secret").is_none() && t.get("token_hash").is_none())
    );
    assert_eq!(
        timeline(&db, &id).await,
        [("token_created".to_owned(), "root".to_owned())]
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_creation_sent_again_with_its_idempotency_key_makes_no_second_token() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let other_admin = token(&db.store, "rita", Role::Admin).await;
    let create = |admin: &str, key: &str| {
        server
            .post("/v1/tokens")
            .token(admin)
            .header("Idempotency-Key", key)
            .json(&json!({"subject": "dora", "role": "developer"}))
    };

    let first = create(&root, "form-1").send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{:#}", first.body);
    let id = first.body["id"].as_str().unwrap().to_owned();
    let secret = first.body["secret"].as_str().unwrap().to_owned();

    let again = create(&root, "form-1").send().await;
    again.assert_problem(StatusCode::CONFLICT, "conflict");
    let detail = again.body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("Idempotency-Key: was used at ")
            && detail.contains(&format!("to create token {id} for dora (developer)")),
        "{detail}"
    );
    assert!(!again.body.to_string().contains(&secret[3..]), "no secret");

    // Keys are each admin's own, and a new key is a new token.
    let rita = create(&other_admin, "form-1").send().await;
    assert_eq!(rita.status, StatusCode::CREATED, "{:#}", rita.body);
    let next = create(&root, "form-2").send().await;
    assert_eq!(next.status, StatusCode::CREATED, "{:#}", next.body);
    let bad = create(&root, "with space").send().await;
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:#}",
        bad.body
    );

    let doras: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE subject = 'dora'")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(doras, 3, "root's two keys and rita's one");
    assert_eq!(
        timeline(&db, &id).await,
        [("token_created".to_owned(), "root".to_owned())],
        "one creation recorded"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once_and_revoking_again_is_harmless() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let created = server
        .post("/v1/tokens")
        .token(&root)
        .json(&json!({"subject": "dave", "role": "developer"}))
        .send()
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .get("/v1/environments")
            .token(&secret)
            .send()
            .await
            .status,
        StatusCode::OK
    );

    let revoked = server
        .delete(&format!("/v1/tokens/{id}"))
        .token(&root)
        .send()
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{:#}", revoked.body);
    assert_eq!(revoked.body["id"], id.as_str());
    assert!(revoked.body["revoked_at"].is_string());
    let refused = server.get("/v1/environments").token(&secret).send().await;
    refused.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");

    let again = server
        .delete(&format!("/v1/tokens/{id}"))
        .token(&root)
        .send()
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.body["revoked_at"], revoked.body["revoked_at"],
        "the first revocation stands"
    );
    assert_eq!(
        timeline(&db, &id).await,
        [
            ("token_created".to_owned(), "root".to_owned()),
            ("token_revoked".to_owned(), "root".to_owned()),
        ],
        "recorded once"
    );

    let unknown = server
        .delete(&format!("/v1/tokens/{}", uuid::Uuid::now_v7()))
        .token(&root)
        .send()
        .await;
    unknown.assert_problem(StatusCode::NOT_FOUND, "not-found");
    let not_an_id = server.delete("/v1/tokens/dave").token(&root).send().await;
    not_an_id.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn only_admins_manage_tokens() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let ops = token(&db.store, "ops", Role::Operator).await;
    let target = db
        .store
        .create_token("erin", Role::Developer, chrono::Utc::now())
        .await
        .unwrap();
    let revoke = format!("/v1/tokens/{}", target.id);

    for caller in [&alice, &ops] {
        let create = server
            .post("/v1/tokens")
            .token(caller)
            .json(&json!({"subject": "mallory", "role": "admin"}))
            .send()
            .await;
        create.assert_problem(StatusCode::FORBIDDEN, "forbidden");
        let list = server.get("/v1/tokens").token(caller).send().await;
        list.assert_problem(StatusCode::FORBIDDEN, "forbidden");
        let revoked = server.delete(&revoke).token(caller).send().await;
        revoked.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    for (method, path) in [
        ("POST", "/v1/tokens"),
        ("GET", "/v1/tokens"),
        ("DELETE", revoke.as_str()),
    ] {
        let anonymous = server.request(method, path).send().await;
        anonymous.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(
        server
            .get("/v1/environments")
            .token(&target.secret)
            .send()
            .await
            .status,
        StatusCode::OK,
        "erin's token still works"
    );
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(tokens, 3, "nobody made a token");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_token_request_names_what_is_wrong() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let cases = [
        (json!({"subject": "frank"}), "role: is required"),
        (
            json!({"subject": "frank", "role": "owner"}),
            "role: unknown variant `owner`",
        ),
        (
            json!({"role": "developer"}),
            "subject: must be 1 to 200 characters",
        ),
        (
            json!({"subject": "   ", "role": "developer"}),
            "subject: must be 1 to 200 characters",
        ),
        (
            json!({"subject": "f".repeat(201), "role": "developer"}),
            "subject: must be 1 to 200 characters",
        ),
        (
            json!({"subject": "frank", "role": "developer", "expires": "1d"}),
            "expires: unknown field `expires`",
        ),
        (
            json!({"subject": 7, "role": "developer"}),
            "subject: invalid type",
        ),
    ];
    for (body, expected) in cases {
        let reply = server
            .post("/v1/tokens")
            .token(&root)
            .json(&body)
            .send()
            .await;
        reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert!(
            reply.detail().starts_with(expected),
            "{body}: `{}` should start with `{expected}`",
            reply.detail()
        );
    }
    let not_json = server
        .post("/v1/tokens")
        .token(&root)
        .body("text/plain", "frank")
        .send()
        .await;
    not_json.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(tokens, 1, "only root's");
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn last_use_is_written_once_a_minute_and_a_revocation_counts_at_the_next_request() {
    let db = TestDatabase::create().await;
    let t0: chrono::DateTime<chrono::Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
    let issued = db
        .store
        .create_token("gina", Role::Developer, t0)
        .await
        .unwrap();
    let last_used = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM api_tokens WHERE id = $1",
        )
        .bind(issued.id)
        .fetch_one(db.store.pool())
        .await
        .unwrap()
    };
    let at = |seconds: i64| t0 + chrono::TimeDelta::seconds(seconds);
    let authenticate = |seconds: i64| db.store.authenticate(&issued.secret, at(seconds));

    let gina = authenticate(1).await.unwrap().expect("a live token");
    assert_eq!(
        (gina.subject.as_str(), gina.role),
        ("gina", Role::Developer)
    );
    assert_eq!(last_used().await, Some(at(1)), "the first use is written");
    assert!(authenticate(59).await.unwrap().is_some());
    assert_eq!(
        last_used().await,
        Some(at(1)),
        "not again within the minute"
    );
    assert!(authenticate(61).await.unwrap().is_some());
    assert_eq!(last_used().await, Some(at(61)), "a minute later, again");

    db.store.revoke_token(issued.id, at(62)).await.unwrap();
    assert_eq!(authenticate(62).await.unwrap(), None, "revoked at once");
    assert_eq!(authenticate(200).await.unwrap(), None);
    assert_eq!(
        last_used().await,
        Some(at(61)),
        "a revoked token is not touched"
    );
    db.drop_now().await;
}
