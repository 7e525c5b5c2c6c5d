//! In Chromium: an admin creates a token, sees its secret once, and revokes
//! it; the policy and audit pages on the way.

use super::browser_setup::Console;

#[tokio::test]
async fn an_admin_creates_a_token_sees_its_secret_once_and_revokes_it() {
    let Some(console) = Console::start().await else {
        return;
    };
    console.script("console-admin").run().await;

    let tokens: Vec<(String, bool)> = sqlx::query_as(
        "SELECT subject, revoked_at IS NOT NULL FROM api_tokens ORDER BY created_at",
    )
    .fetch_all(console.db.store.pool())
    .await
    .unwrap();
    assert_eq!(
        tokens,
        [("ci-bot".to_owned(), true)],
        "made and revoked by the browser"
    );
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action IN ('token.create', 'token.revoke') ORDER BY id",
    )
    .fetch_all(console.db.store.pool())
    .await
    .unwrap();
    assert_eq!(
        actors,
        ["ada", "ada"],
        "both in the audit trail as the admin"
    );
}
