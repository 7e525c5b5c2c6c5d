//! The admin pages: tokens (the secret shown once, revocation through a
//! confirmation page), the policy in force and everyone's own limits, and
//! the audit log with its filters and the JSON-lines export through the
//! session.

use hubwright_state::model::Role;
use hubwright_testkit::console::{ConsoleUser, Page};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir};
use serde_json::{Value, json};

async fn serve(db: &TestDatabase) -> ApiServer {
    ApiServer::start(db, &scratch_dir("no-workflows"), &[]).await
}

/// The secret in the page's `new-secret` field, if it shows one.
fn shown_secret(page: &Page) -> Option<String> {
    let field = "id=\"new-secret\" type=\"text\" value=\"";
    let at = page.html.find(field)? + field.len();
    page.html[at..].split('"').next().map(str::to_owned)
}

/// The id of `subject`'s newest token, from the API.
async fn token_id(server: &ApiServer, admin: &str, subject: &str) -> String {
    let tokens = server.get("/v1/tokens").token(admin).send().await;
    tokens.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"] == subject)
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no token for {subject}: {:#}", tokens.body))
        .to_owned()
}

#[tokio::test]
async fn an_admin_creates_a_token_whose_secret_is_shown_once_and_signs_in() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let admin = ConsoleUser::sign_in(&server, &root).await;

    let empty_form = admin.get("/tokens").await;
    assert_eq!(empty_form.status, StatusCode::OK);
    empty_form.assert_says("Create a token");
    empty_form.assert_says("<label for=\"subject\">Subject</label>");

    let created = admin
        .post("/tokens", &[("subject", "gail"), ("role", "operator")])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.html);
    created.assert_says("Token created for gail");
    created.assert_says("it will not be shown again");
    let secret = shown_secret(&created).expect("the new secret in a read-only field");
    assert!(secret.starts_with("hw_"), "{secret}");
    assert!(
        created
            .html
            .contains("<label for=\"new-secret\">Secret for gail (operator)</label>"),
        "the secret's field has a label: {}",
        created.html
    );

    let again = admin.get("/tokens").await;
    again.assert_says("gail");
    assert!(
        !again.html.contains(&secret) && shown_secret(&again).is_none(),
        "the secret is shown once only"
    );

    let gail = ConsoleUser::sign_in(&server, &secret).await;
    let home = gail.get("/environments").await;
    home.assert_says("gail <span class=\"role\">operator</span>");
}

/// The `request_key` the page's create form carries.
fn form_key(page: &hubwright_testkit::console::Page) -> String {
    let marker = "name=\"request_key\" value=\"";
    let start = page.html.find(marker).expect("a request key on the form") + marker.len();
    let end = page.html[start..].find('"').expect("the key's end") + start;
    page.html[start..end].to_owned()
}

#[tokio::test]
async fn a_token_form_sent_twice_makes_one_token_and_says_so() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let admin = ConsoleUser::sign_in(&server, &root).await;
    let form = admin.get("/tokens").await;
    let key = form_key(&form);
    let fields = [
        ("subject", "ivy"),
        ("role", "developer"),
        ("request_key", key.as_str()),
    ];

    let created = admin.post("/tokens", &fields).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.html);
    let secret = shown_secret(&created).expect("the secret, once");
    assert_ne!(form_key(&created), key, "the next form is a new request");

    // The browser's reload of that answer sends the same form again.
    let reloaded = admin.post("/tokens", &fields).await;
    assert_eq!(reloaded.status, StatusCode::CONFLICT, "{}", reloaded.html);
    reloaded.assert_says("This form was sent before, and no second token was made.");
    let id = token_id(&server, &root, "ivy").await;
    reloaded.assert_says(&format!("to create token {id} for ivy (developer)"));
    assert!(
        shown_secret(&reloaded).is_none() && !reloaded.html.contains(&secret),
        "the secret is not shown again"
    );
    let tokens = server.get("/v1/tokens").token(&root).send().await;
    let ivys = tokens.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["subject"] == "ivy")
        .count();
    assert_eq!(ivys, 1, "{:#}", tokens.body);
}

#[tokio::test]
async fn a_refused_token_request_keeps_the_input_and_names_the_field() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let admin = ConsoleUser::sign_in(&server, &root).await;

    let refused = admin
        .post("/tokens", &[("subject", "scheduler"), ("role", "admin")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_says("The token was not created");
    refused.assert_says("value=\"scheduler\"");
    refused.assert_says("<option value=\"admin\" selected>");
    refused.assert_says("aria-describedby=\"subject-help subject-error\" aria-invalid=\"true\"");
    refused.assert_says("<p id=\"subject-error\" class=\"field-error\">");
    assert!(shown_secret(&refused).is_none());
    let tokens = server.get("/v1/tokens").token(&root).send().await;
    assert_eq!(
        tokens.body["items"].as_array().unwrap().len(),
        1,
        "only root's"
    );
}

#[tokio::test]
async fn a_token_revoked_through_the_confirmation_page_stops_working() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let hank_secret = token(&db.store, "hank", Role::Developer).await;
    let hank = ConsoleUser::sign_in(&server, &hank_secret).await;
    let admin = ConsoleUser::sign_in(&server, &root).await;
    let id = token_id(&server, &root, "hank").await;

    let list = admin.get("/tokens").await;
    list.assert_says(&format!("href=\"/tokens/{id}/revoke\""));
    let confirm = admin.get(&format!("/tokens/{id}/revoke")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    confirm.assert_says("Revoke token for hank?");
    confirm.assert_says("Revoke token for hank</button>");
    assert!(
        !confirm.html.contains("the token you are signed in with"),
        "not the admin's own token"
    );
    let still = server
        .get("/v1/environments")
        .token(&hank_secret)
        .send()
        .await;
    assert_eq!(
        still.status,
        StatusCode::OK,
        "nothing happens before the POST"
    );

    let revoked = admin.post(&format!("/tokens/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let back = revoked.location.expect("a redirect to the list");
    let after = admin.get(&back).await;
    after.assert_says("The token for hank is revoked");
    after.assert_says("revoked</span>");

    let refused = server
        .get("/v1/environments")
        .token(&hank_secret)
        .send()
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let ended = hank.get("/environments").await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "hank's session ended");
}

#[tokio::test]
async fn revoking_the_token_one_is_signed_in_with_warns_first_and_signs_out() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let admin = ConsoleUser::sign_in(&server, &root).await;
    let id = token_id(&server, &root, "root").await;

    admin.get("/tokens").await.assert_says("(your session)");
    let confirm = admin.get(&format!("/tokens/{id}/revoke")).await;
    confirm.assert_says("This is the token you are signed in with.");
    let revoked = admin.post(&format!("/tokens/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(revoked.location.as_deref(), Some("/sign-in"));
    assert_eq!(admin.get("/tokens").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_developer_gets_the_403_page_for_tokens_and_audit_and_only_their_limits() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let dev = token(&db.store, "dora", Role::Developer).await;
    let dora = ConsoleUser::sign_in(&server, &dev).await;

    for path in ["/tokens", "/audit", "/audit/export"] {
        let page = dora.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        page.assert_says("Not allowed");
    }
    let home = dora.get("/environments").await;
    assert!(!home.html.contains("href=\"/tokens\""), "no admin links");
    home.assert_says(">My limits</a>");

    let limits = dora.get("/policy").await;
    assert_eq!(limits.status, StatusCode::OK);
    limits.assert_says("Your limits");
    limits.assert_says("No limits apply to you");
    assert!(!limits.html.contains("Policy file in force"));
}

#[tokio::test]
async fn the_policy_page_shows_the_file_in_force_and_each_viewers_own_limits() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("console-policy");
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "defaults: { environments: 7, max_ttl: 12h }\n\
         groups:\n  teachers:\n    members: [tess]\n    limits: { environments: 30 }\n",
    )
    .unwrap();
    let server = ApiServer::start(
        &db,
        &scratch_dir("no-workflows"),
        &["--policy", policy.to_str().unwrap()],
    )
    .await;
    let root = token(&db.store, "root", Role::Admin).await;
    let tess = token(&db.store, "tess", Role::Developer).await;

    let admin = ConsoleUser::sign_in(&server, &root).await;
    let page = admin.get("/policy").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_says("Policy file in force");
    page.assert_says("policy.yaml");
    page.assert_says("<th scope=\"row\"><code>environments</code></th><td>7</td>");
    page.assert_says("<th scope=\"row\">teachers</th>");
    page.assert_says("tess");
    page.assert_says("Every template is open to everyone.");

    let teacher = ConsoleUser::sign_in(&server, &tess).await;
    let mine = teacher.get("/policy").await;
    mine.assert_says("My limits");
    mine.assert_says("teachers");
    mine.assert_says("<code>groups.teachers.limits.environments</code>");
    mine.assert_says("<td>30</td>");
    assert!(!mine.html.contains("Policy file in force"));
}

#[tokio::test]
async fn the_audit_log_lists_token_creations_with_their_actor_and_filters_by_actor() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let ivy = token(&db.store, "ivy", Role::Admin).await;
    let admin = ConsoleUser::sign_in(&server, &root).await;
    let created = admin
        .post("/tokens", &[("subject", "jack"), ("role", "developer")])
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let by_ivy = server
        .post("/v1/tokens")
        .token(&ivy)
        .json(&json!({"subject": "kim", "role": "developer"}))
        .send()
        .await;
    assert_eq!(by_ivy.status, StatusCode::CREATED);
    let jack = token_id(&server, &root, "jack").await;
    let kim = token_id(&server, &root, "kim").await;

    let all = admin.get("/audit").await;
    assert_eq!(all.status, StatusCode::OK);
    all.assert_says("<code>token.create</code>");
    all.assert_says(&jack);
    all.assert_says(&kim);
    all.assert_says("href=\"/audit?actor=root\"");
    all.assert_says("admin, with a token");
    all.assert_says("admin, with a token, in the console");
    all.assert_says("<time datetime=");
    // Both with a token, one through the console and one straight to the API.
    let ways: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT target_id, channel FROM audit_log WHERE action = 'token.create' ORDER BY id",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    assert_eq!(
        ways,
        [
            (jack.clone(), Some("console".to_owned())),
            (kim.clone(), Some("api".to_owned()))
        ]
    );
    // Filtered by the way in: the API, and the console's form.
    let targets = |channel: &'static str| {
        let server = &server;
        let root = &root;
        async move {
            let page = server
                .get(&format!("/v1/audit?action=token.create&channel={channel}"))
                .token(root)
                .send()
                .await;
            assert_eq!(page.status, StatusCode::OK, "{:#}", page.body);
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["target_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(targets("console").await, [jack.as_str()]);
    assert_eq!(targets("api").await, [kim.as_str()]);
    let bad = server
        .get("/v1/audit?channel=web")
        .token(&root)
        .send()
        .await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap()
            .contains("channel: must be `api` or `console`"),
        "{:#}",
        bad.body
    );
    let in_console = admin.get("/audit?channel=console").await;
    in_console.assert_says(&jack);
    in_console.assert_says("<option value=\"console\" selected>");
    assert!(
        !in_console.html.contains(&kim),
        "the API's entry is filtered out"
    );

    let only_ivy = admin.get("/audit?actor=ivy").await;
    only_ivy.assert_says(&kim);
    only_ivy.assert_says("id=\"f-actor\" name=\"actor\" type=\"text\" value=\"ivy\"");
    assert!(
        !only_ivy.html.contains(&jack),
        "root's entry is filtered out"
    );
    assert!(!only_ivy.html.contains("href=\"/audit?actor=root\""));

    let bad = admin.get("/audit?since=yesterday").await;
    bad.assert_says("id=\"f-since\"");
    bad.assert_says("aria-invalid=\"true\" aria-describedby=\"f-since-error\"");
    bad.assert_says("RFC 3339");
}

#[tokio::test]
async fn the_audit_export_through_the_session_answers_json_lines_as_a_download() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let admin = ConsoleUser::sign_in(&server, &root).await;
    for subject in ["lee", "max"] {
        let created = admin
            .post("/tokens", &[("subject", subject), ("role", "developer")])
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    admin
        .get("/audit?action=token.create")
        .await
        .assert_says("href=\"/audit/export?action=token.create\"");

    let export = server
        .get("/audit/export?action=token.create")
        .header("cookie", &admin.cookie)
        .send()
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.content_type(), "application/x-ndjson");
    let disposition = export.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"hubwright-audit-"),
        "{disposition}"
    );
    let text = match &export.body {
        Value::String(text) => text.clone(),
        one_line => format!("{one_line}\n"),
    };
    let entries: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{text}");
    for entry in &entries {
        assert_eq!(entry["action"], "token.create");
        assert_eq!(entry["actor"], "root");
        assert_eq!(entry["auth"], "token");
    }
}
