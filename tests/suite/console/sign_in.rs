//! Signing in to the console with a token, sessions that follow their
//! token, sign-out, CSRF, and the 404 page.

use hubwright_state::model::Role;
use hubwright_testkit::console::ConsoleUser;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir};
use serde_json::json;

async fn serve(db: &TestDatabase) -> ApiServer {
    ApiServer::start(db, &scratch_dir("no-workflows"), &[]).await
}

#[tokio::test]
async fn a_page_without_a_session_sends_the_browser_to_sign_in_and_back() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let answer = server.get("/environments?phase=ready").send().await;
    // reqwest follows the redirect to the sign-in page.
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.text().contains("Sign in to hubwright"),
        "{}",
        answer.text()
    );
    assert!(
        answer
            .text()
            .contains("name=\"next\" value=\"&#x2f;environments?phase=ready\""),
        "the sign-in form goes back to the page asked for: {}",
        answer.text()
    );
}

#[tokio::test]
async fn a_token_signs_in_and_revoking_it_ends_the_session_at_once() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let root = token(&db.store, "root", Role::Admin).await;
    let created = server
        .post("/v1/tokens")
        .token(&root)
        .json(&json!({"subject": "dana", "role": "developer"}))
        .send()
        .await;
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();

    let dana = ConsoleUser::sign_in(&server, &secret).await;
    let page = dana.get("/environments").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_says("My environments");
    page.assert_says("dana");
    assert!(!page.html.contains(&secret), "the token is never on a page");

    let revoked = server
        .delete(&format!("/v1/tokens/{id}"))
        .token(&root)
        .send()
        .await;
    assert!(revoked.status.is_success(), "{:?}", revoked.body);
    let after = dana.get("/environments").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(
        after.location.as_deref(),
        Some("/sign-in?next=%2Fenvironments")
    );
}

#[tokio::test]
async fn an_unknown_token_is_refused_on_the_sign_in_page() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let page = server.get("/sign-in").send().await;
    let csrf = hubwright_testkit::console::csrf_in(page.text()).unwrap();
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hubwright_sign_in="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let refused = server
        .post("/sign-in/token")
        .header("cookie", &cookie)
        .body(
            "application/x-www-form-urlencoded",
            format!("token=hw_not_a_token&csrf={csrf}"),
        )
        .send()
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.text().contains("That token is unknown or revoked."),
        "{}",
        refused.text()
    );
    assert!(
        !refused.text().contains("hw_not_a_token"),
        "the token is not echoed"
    );
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let erin = token(&db.store, "erin", Role::Developer).await;
    let mut user = ConsoleUser::sign_in(&server, &erin).await;
    user.csrf = "0".repeat(64);
    let page = user.post("/sign-out", &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.assert_says("did not come from this console");
    // Still signed in: the forged sign-out did nothing.
    assert_eq!(user.get("/environments").await.status, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let frank = token(&db.store, "frank", Role::Developer).await;
    let user = ConsoleUser::sign_in(&server, &frank).await;
    let out = user.post("/sign-out", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location.as_deref(), Some("/sign-in"));
    // The old cookie opens nothing any more, even if a browser kept it.
    assert_eq!(
        user.get("/environments").await.status,
        StatusCode::SEE_OTHER
    );
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM console_sessions")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0);
}

#[tokio::test]
async fn a_browser_asking_for_a_page_that_does_not_exist_gets_the_consoles_404_page() {
    let db = TestDatabase::create().await;
    let server = serve(&db).await;
    let page = server
        .get("/no/such/page")
        .header("accept", "text/html")
        .send()
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.text()
            .contains("there is no page at &#x2f;no&#x2f;such&#x2f;page"),
        "{}",
        page.text()
    );
    // A program still gets the API's problem document.
    let api = server.get("/no/such/page").send().await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.content_type(), "application/problem+json");
}
