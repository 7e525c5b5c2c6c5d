//! Signing in to the console through the real `oidc-provider`: the
//! authorization code flow with PKCE, the role from the user's groups, a
//! callback that works once, and a state the console never issued.

use std::sync::Arc;

use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::SystemClock;
use hubwright_testkit::console::{ConsoleUser, no_redirects};
use hubwright_testkit::server::{ApiServer, StatusCode};
use hubwright_testkit::{TestDatabase, scratch_dir};

struct Setup {
    _db: TestDatabase,
    provider: OidcProvider,
    server: ApiServer,
}

/// The provider (carol is in `hub-ops`), the console's client registered
/// with its callback, and the API and console trusting the provider.
async fn setup() -> Setup {
    let groups = [("carol".to_owned(), vec!["hub-ops".to_owned()])].into();
    let provider = OidcProvider::start(Options {
        groups,
        ..Options::default()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let client = provider
        .register_client_for("console", &format!("{base}/sign-in/callback"))
        .await
        .unwrap();
    let db = TestDatabase::create().await;
    // `=`: a generated client id may start with `-`.
    let audience = format!("--oidc-audience={}", client.id);
    let client_id = format!("--console-client-id={}", client.id);
    let secret = format!("--console-client-secret={}", client.secret);
    let public_url = format!("--public-url={base}");
    let server = ApiServer::start_on(
        listener,
        &db,
        &scratch_dir("no-workflows"),
        &[
            "--oidc-issuer",
            provider.issuer(),
            &audience,
            "--oidc-operator-groups",
            "hub-ops",
            &client_id,
            &secret,
            &public_url,
        ],
        Arc::new(SystemClock),
    )
    .await;
    Setup {
        _db: db,
        provider,
        server,
    }
}

#[tokio::test]
async fn a_user_signs_in_at_the_provider_and_their_groups_give_their_role() {
    let setup = setup().await;
    let page = setup.server.get("/sign-in").send().await;
    assert!(
        page.text().contains("Sign in with your organisation"),
        "{}",
        page.text()
    );

    let carol = ConsoleUser::sign_in_oidc(&setup.server, &setup.provider, "carol").await;
    let home = carol.get("/environments").await;
    assert_eq!(home.status, StatusCode::OK);
    home.assert_says("carol <span class=\"role\">operator</span>");

    let dana = ConsoleUser::sign_in_oidc(&setup.server, &setup.provider, "dana").await;
    dana.get("/environments")
        .await
        .assert_says("dana <span class=\"role\">developer</span>");
}

#[tokio::test]
async fn a_callback_works_once_and_a_state_the_console_never_issued_opens_nothing() {
    let setup = setup().await;
    let client = no_redirects();
    let start = client
        .get(format!("{}/sign-in/oidc", setup.server.url))
        .send()
        .await
        .unwrap();
    let authorization = reqwest::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let query: Vec<(String, String)> = authorization.query_pairs().into_owned().collect();
    let get = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(
        get("code_challenge_method").as_deref(),
        Some("S256"),
        "PKCE"
    );
    assert!(
        get("code_challenge").is_some_and(|c| c.len() == 43),
        "{query:?}"
    );
    assert!(
        get("nonce").is_some() && get("state").is_some(),
        "{query:?}"
    );
    let callback = setup
        .provider
        .log_in_at(authorization, "erin")
        .await
        .unwrap();

    let (cookie, first) = ConsoleUser::finish_oidc(&client, callback.as_str()).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{first:?}");
    assert!(cookie.is_some(), "the first use opens a session");

    let (cookie, again) = ConsoleUser::finish_oidc(&client, callback.as_str()).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(cookie.is_none(), "a replayed callback opens no session");
    again.assert_says("That sign-in expired or was already used");

    let forged = callback
        .as_str()
        .replace(&format!("state={}", get("state").unwrap()), "state=0000");
    let (cookie, forged) = ConsoleUser::finish_oidc(&client, &forged).await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert!(cookie.is_none());
}
