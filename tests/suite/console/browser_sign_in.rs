//! In Chromium: signing in at the real oidc-provider and out again.

use super::browser_setup::Console;

#[tokio::test]
async fn a_developer_signs_in_at_the_provider_sees_an_empty_list_and_signs_out() {
    let Some(console) = Console::start().await else {
        return;
    };
    console.script("console-sign-in").run().await;
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM console_sessions")
        .fetch_one(console.db.store.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0, "signing out ended the session on the server");
}
