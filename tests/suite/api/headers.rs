//! Security headers on every kind of answer: HTML pages carry a
//! Content-Security-Policy without inline script, refuse framing and send no
//! referrer; everything says `nosniff`; API answers, and above all the one
//! that carries a new token's secret, are not stored by caches.

use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, Reply, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir};
use serde_json::json;

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[track_caller]
fn assert_nosniff(what: &str, reply: &Reply) {
    assert_eq!(header(reply, "x-content-type-options"), "nosniff", "{what}");
}

#[tokio::test]
async fn html_pages_carry_a_policy_without_inline_script_and_refuse_framing() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;
    for path in ["/docs", "/docs/problems", "/docs/problems/not-found"] {
        let page = server.get(path).send().await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.content_type().starts_with("text/html"), "{path}");
        let policy = header(&page, "content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_nosniff(path, &page);
        assert_eq!(header(&page, "referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header(&page, "x-frame-options"), "DENY", "{path}");
        // What the policy would block must not be needed: no inline script
        // or style, no handler attributes.
        let html = page.text();
        assert!(
            !html.contains("<script>") && !html.contains("<style"),
            "{path}"
        );
        assert!(
            !html.contains(" style=") && !html.contains(" onclick="),
            "{path}"
        );
    }
    for (path, media) in [
        ("/docs/app.js", "text/javascript"),
        ("/docs/app.css", "text/css"),
        ("/docs/problems.css", "text/css"),
    ] {
        let asset = server.get(path).send().await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        assert!(asset.content_type().starts_with(media), "{path}");
        assert_nosniff(path, &asset);
    }
    let script = server.get("/docs/app.js").send().await;
    assert!(
        script.text().contains("/v1/openapi.json"),
        "the page's script is the one served"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn json_text_and_problem_answers_say_nosniff_and_api_answers_are_not_stored() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let answers = [
        (
            "list",
            server.get("/v1/environments").token(&root).send().await,
        ),
        ("problem", server.get("/v1/environments").send().await),
        ("no path", server.get("/nowhere").send().await),
        ("metrics", server.get("/metrics").token(&root).send().await),
        ("openapi", server.get("/v1/openapi.json").send().await),
        ("probe", server.get("/healthz").send().await),
    ];
    for (what, reply) in &answers {
        assert_nosniff(what, reply);
    }
    assert_eq!(header(&answers[0].1, "cache-control"), "no-store");
    assert_eq!(header(&answers[1].1, "cache-control"), "no-store");

    let created = server
        .post("/v1/tokens")
        .token(&root)
        .json(&json!({ "subject": "dora", "role": "developer" }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    assert!(created.body["secret"].is_string());
    assert_eq!(header(&created, "cache-control"), "no-store");
    assert_nosniff("token", &created);
    drop(server);
    db.drop_now().await;
}
