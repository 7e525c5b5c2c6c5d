//! A real `hubwright serve --api` that also accepts the OpenID provider's
//! tokens: users signed in at the real `oidc-provider` (authorization code
//! flow, as a portal does it) call the API as themselves, with the role their
//! groups give them; tokens for another audience, forged or tampered with are
//! refused, and hubwright's own tokens keep working beside them.

use hubwright_sandbox::oidc::{Client, OidcProvider, Options};
use hubwright_state::model::Role;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::json;

const LAB: &str = r#"
name: lab
workflows:
  provision:
    steps:
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

struct Setup {
    db: TestDatabase,
    provider: OidcProvider,
    portal: Client,
    server: ApiServer,
}

/// The provider (carol is in `hub-ops`, erin in `hub-admins`), a portal
/// client registered there, and the API accepting the portal's tokens.
async fn setup() -> Setup {
    setup_with(&[]).await
}

/// [`setup`] with more `serve` flags.
async fn setup_with(extra: &[&str]) -> Setup {
    let groups = [("carol", "hub-ops"), ("erin", "hub-admins")]
        .into_iter()
        .map(|(user, group)| (user.to_owned(), vec![group.to_owned()]))
        .collect();
    let provider = OidcProvider::start(Options {
        groups,
        ..Options::default()
    })
    .await
    .unwrap();
    let portal = provider.register_client("portal").await.unwrap();
    let db = TestDatabase::create().await;
    let workflows = write_workflow(&scratch_dir("oidc-api"), "lab", LAB);
    // `=`: a generated client id may start with `-`, which a separate
    // argument would make a flag.
    let audience = format!("--oidc-audience={}", portal.id);
    let server = ApiServer::start(
        &db,
        &workflows,
        &[
            "--oidc-issuer",
            provider.issuer(),
            &audience,
            "--oidc-operator-groups",
            "hub-ops",
            "--oidc-admin-groups",
            "hub-admins",
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect::<Vec<_>>(),
    )
    .await;
    Setup {
        db,
        provider,
        portal,
        server,
    }
}

/// `username`'s ID token, signed in through `client`.
async fn id_token(provider: &OidcProvider, client: &Client, username: &str) -> String {
    let tokens = provider
        .sign_in(client, username, "openid profile groups")
        .await
        .unwrap();
    tokens["id_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_signed_in_user_calls_the_api_as_themselves_with_the_role_of_their_groups() {
    let s = setup().await;
    let alice = id_token(&s.provider, &s.portal, "alice").await;

    let created = s
        .server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": "lab", "template": "lab" }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    assert_eq!(created.body["environment"]["owner"], "alice");
    let metrics = s.server.get("/metrics").token(&alice).send().await;
    assert_eq!(
        metrics.status,
        StatusCode::FORBIDDEN,
        "alice is a developer"
    );
    assert!(
        metrics.body["detail"]
            .as_str()
            .unwrap()
            .contains("alice is a developer"),
        "{:#}",
        metrics.body
    );

    let carol = id_token(&s.provider, &s.portal, "carol").await;
    let metrics = s.server.get("/metrics").token(&carol).send().await;
    assert_eq!(metrics.status, StatusCode::OK, "carol is in hub-ops");
    let listed = s.server.get("/v1/environments").token(&carol).send().await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "an operator sees alice's: {:#}",
        listed.body
    );
    let tokens = s.server.get("/v1/tokens").token(&carol).send().await;
    assert_eq!(tokens.status, StatusCode::FORBIDDEN, "not an admin");

    let erin = id_token(&s.provider, &s.portal, "erin").await;
    let tokens = s.server.get("/v1/tokens").token(&erin).send().await;
    assert_eq!(tokens.status, StatusCode::OK, "erin is in hub-admins");

    // hubwright's own tokens work beside the provider's.
    let own = token(&s.db.store, "bot", Role::Developer).await;
    let listed = s.server.get("/v1/environments").token(&own).send().await;
    assert_eq!(listed.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_for_another_audience_tampered_or_from_no_provider_are_refused() {
    let s = setup().await;
    let detail = |body: &serde_json::Value| body["detail"].as_str().unwrap_or_default().to_owned();

    // Signed by the provider, but for another client.
    let other = s.provider.register_client("other").await.unwrap();
    let elsewhere = id_token(&s.provider, &other, "alice").await;
    let refused = s
        .server
        .get("/v1/environments")
        .token(&elsewhere)
        .send()
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        detail(&refused.body).contains(&format!("audience does not include {}", s.portal.id)),
        "{:#}",
        refused.body
    );

    // The claims changed after signing: mallory makes herself erin.
    let alice = id_token(&s.provider, &s.portal, "alice").await;
    let parts: Vec<&str> = alice.split('.').collect();
    let claims = String::from_utf8(base64url_decode(parts[1])).unwrap();
    let forged = claims.replace("\"alice\"", "\"erin\"");
    assert_ne!(claims, forged);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64url_encode(forged.as_bytes()),
        parts[2]
    );
    let refused = s
        .server
        .get("/v1/environments")
        .token(&tampered)
        .send()
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        detail(&refused.body).contains("signature does not verify"),
        "{:#}",
        refused.body
    );

    // HS256 with a guessable secret: never accepted, whatever it claims.
    let header = base64url_encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let hs = format!("{header}.{}.c2lnbmF0dXJl", parts[1]);
    let refused = s.server.get("/v1/environments").token(&hs).send().await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        detail(&refused.body).contains("HS256"),
        "{:#}",
        refused.body
    );
}

fn base64url_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

fn base64url_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[tokio::test]
async fn with_a_username_prefix_the_providers_users_and_token_subjects_never_meet() {
    let s = setup_with(&["--oidc-username-prefix", "oidc:"]).await;
    let alice = id_token(&s.provider, &s.portal, "alice").await;
    let created = s
        .server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": "lab", "template": "lab" }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    assert_eq!(created.body["environment"]["owner"], "oidc:alice");

    // A hubwright token for `alice` is someone else.
    let token_alice = token(&s.db.store, "alice", Role::Developer).await;
    let theirs = s
        .server
        .get("/v1/environments")
        .token(&token_alice)
        .send()
        .await;
    assert_eq!(theirs.body["items"], json!([]), "{:#}", theirs.body);
    let mine = s.server.get("/v1/environments").token(&alice).send().await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);

    // And no token can be made that poses as one of the provider's users.
    let erin = id_token(&s.provider, &s.portal, "erin").await;
    let posing = s
        .server
        .post("/v1/tokens")
        .token(&erin)
        .json(&json!({ "subject": "oidc:alice", "role": "developer" }))
        .send()
        .await;
    posing.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(posing.body["errors"][0]["pointer"], "/subject");
    let made = s
        .server
        .post("/v1/tokens")
        .token(&erin)
        .json(&json!({ "subject": "ci-bot", "role": "developer" }))
        .send()
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:#}", made.body);
    assert_eq!(made.body["created_by"], "oidc:erin");
    drop(s.server);
    s.db.drop_now().await;
}
