//! The Keycloak admin API driver against a real Keycloak when `KEYCLOAK_URL`
//! is set (with `KEYCLOAK_REALM`, `KEYCLOAK_CLIENT_ID`,
//! `KEYCLOAK_CLIENT_SECRET`), else against the recorded-Keycloak fake.
//! Fault-injection tests skip, saying so, against a real Keycloak.

use std::time::Duration;

use hubwright_state::model::ErrorClass;
use hubwright_state::secrets::SecretString;
use hubwright_testkit::keycloak::{FakeKeycloak, Fault, KeycloakTarget};
use hubwright_worker::StepError;
use hubwright_worker::idp::keycloak::{Keycloak, KeycloakClient};
use serde_json::{Value, json};

struct Setup {
    target: KeycloakTarget,
    http: reqwest::Client,
    secret: SecretString,
}

impl Setup {
    async fn new() -> Self {
        let target = KeycloakTarget::from_env_or_fake().await.unwrap();
        let secret = SecretString::new(target.admin_client_secret.clone());
        let http = hubwright_http::client_builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        Setup {
            target,
            http,
            secret,
        }
    }

    fn keycloak(&self) -> Keycloak<'_> {
        Keycloak {
            http: &self.http,
            base_url: &self.target.base_url,
            realm: &self.target.realm,
            admin_client_id: &self.target.admin_client_id,
            admin_client_secret: &self.secret,
        }
    }

    /// The fake, or `None` after saying why the test is skipped.
    fn fake(&self, test: &str) -> Option<&FakeKeycloak> {
        let fake = self.target.fake();
        if fake.is_none() {
            eprintln!("{test}: skipped against a real Keycloak (it needs fault injection)");
        }
        fake
    }

    fn client_id(&self, label: &str) -> String {
        self.target.unique_client_id(label)
    }

    fn hub_uris(client_id: &str, host: &str) -> Vec<String> {
        vec![format!("https://{host}/hub/oauth_callback?c={client_id}")]
    }

    async fn cleanup(&self, client_id: &str) {
        let _ = self.keycloak().delete(client_id).await;
    }
}

fn assert_class(error: &StepError, class: ErrorClass) {
    assert_eq!(error.class, class, "{}", error.message);
}

#[tokio::test]
async fn ensure_creates_the_client_once_and_a_second_ensure_finds_the_same_one() {
    let setup = Setup::new().await;
    let client_id = setup.client_id("ensure");
    let uris = Setup::hub_uris(&client_id, "hub.example.org");
    let keycloak = setup.keycloak();

    let first = keycloak
        .ensure(&client_id, "hubwright test hub", &uris)
        .await
        .unwrap();
    let second = keycloak
        .ensure(&client_id, "hubwright test hub", &uris)
        .await
        .unwrap();

    assert_eq!(first.client_id, client_id);
    assert_eq!(second.id, first.id, "a second ensure must find, not create");
    assert_eq!(second.secret.expose(), first.secret.expose());
    assert!(!first.secret.expose().is_empty());
    if let Some(fake) = setup.target.fake() {
        let creates: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == setup.target.clients_path())
            .collect();
        assert_eq!(creates.len(), 1, "{creates:?}");
        assert_eq!(creates[0].status, 201);
        let client = fake.client(&client_id).unwrap();
        assert_eq!(client["id"], json!(first.id));
        assert_eq!(client["name"], json!("hubwright test hub"));
        assert_eq!(client["protocol"], json!("openid-connect"));
        assert_eq!(client["publicClient"], json!(false));
        assert_eq!(client["clientAuthenticatorType"], json!("client-secret"));
        assert_eq!(client["standardFlowEnabled"], json!(true));
        assert_eq!(client["directAccessGrantsEnabled"], json!(false));
        assert_eq!(client["redirectUris"], json!(uris));
        assert_eq!(client["webOrigins"], json!(["+"]));
        assert_eq!(
            client["attributes"]["post.logout.redirect.uris"],
            json!("+")
        );
        assert_eq!(client["secret"], json!(first.secret.expose()));
    }
    setup.cleanup(&client_id).await;
}

#[tokio::test]
async fn a_409_on_create_is_resolved_by_looking_the_client_up_again() {
    let setup = Setup::new().await;
    let Some(fake) = setup.fake("a_409_on_create") else {
        return;
    };
    let client_id = setup.client_id("race");
    let uris = Setup::hub_uris(&client_id, "hub.example.org");
    let keycloak = setup.keycloak();
    let first = keycloak.ensure(&client_id, "race", &uris).await.unwrap();
    // The lookup misses it once, as if a concurrent attempt created it after
    // this attempt looked: the create meets Keycloak's real 409.
    fake.inject(
        Fault::status(setup.target.clients_path(), 200)
            .method("GET")
            .body(json!([])),
    );

    let second = keycloak.ensure(&client_id, "race", &uris).await.unwrap();

    assert_eq!(second.id, first.id);
    assert_eq!(second.secret.expose(), first.secret.expose());
    let statuses: Vec<(String, u16)> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == setup.target.clients_path())
        .map(|r| (r.method, r.status))
        .collect();
    assert!(
        statuses.ends_with(&[
            ("GET".into(), 200),
            ("POST".into(), 409),
            ("GET".into(), 200)
        ]),
        "{statuses:?}"
    );
    assert_eq!(
        fake.client_ids()
            .iter()
            .filter(|id| **id == client_id)
            .count(),
        1
    );
}

#[tokio::test]
async fn two_concurrent_ensures_make_one_client() {
    let setup = Setup::new().await;
    let client_id = setup.client_id("concurrent");
    let uris = Setup::hub_uris(&client_id, "hub.example.org");
    let (a, b) = (setup.keycloak(), setup.keycloak());

    let (a, b) = tokio::join!(
        a.ensure(&client_id, "concurrent", &uris),
        b.ensure(&client_id, "concurrent", &uris)
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(a.id, b.id);
    assert_eq!(a.secret.expose(), b.secret.expose());
    if let Some(fake) = setup.target.fake() {
        assert_eq!(
            fake.client_ids()
                .iter()
                .filter(|id| **id == client_id)
                .count(),
            1
        );
    }
    setup.cleanup(&client_id).await;
}

#[tokio::test]
async fn redirect_uris_follow_ensure_and_update_redirects() {
    let setup = Setup::new().await;
    let client_id = setup.client_id("redirects");
    let keycloak = setup.keycloak();
    let first_uris = Setup::hub_uris(&client_id, "first.example.org");
    let second_uris = Setup::hub_uris(&client_id, "second.example.org");
    let third_uris = vec![
        "https://third.example.org/hub/oauth_callback".to_owned(),
        "https://third.example.org/alt/oauth_callback".to_owned(),
    ];
    let redirects = |fake: &FakeKeycloak| fake.client(&client_id).unwrap()["redirectUris"].clone();

    let created = keycloak.ensure(&client_id, "r", &first_uris).await.unwrap();
    let changed = keycloak
        .ensure(&client_id, "r", &second_uris)
        .await
        .unwrap();
    assert_eq!(changed.id, created.id);
    if let Some(fake) = setup.target.fake() {
        assert_eq!(redirects(fake), json!(second_uris));
    }

    assert!(
        keycloak
            .update_redirects(&client_id, &third_uris)
            .await
            .unwrap()
    );
    if let Some(fake) = setup.target.fake() {
        assert_eq!(redirects(fake), json!(third_uris));
        let puts = fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .count();
        // Unchanged URIs (in any order) are not written again.
        let reordered: Vec<String> = third_uris.iter().rev().cloned().collect();
        assert!(
            keycloak
                .update_redirects(&client_id, &reordered)
                .await
                .unwrap()
        );
        let after = fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .count();
        assert_eq!(after, puts);
    }

    assert!(keycloak.delete(&client_id).await.unwrap());
    assert!(
        !keycloak
            .update_redirects(&client_id, &first_uris)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn delete_deletes_and_deleting_again_answers_false() {
    let setup = Setup::new().await;
    let client_id = setup.client_id("delete");
    let keycloak = setup.keycloak();
    keycloak
        .ensure(
            &client_id,
            "d",
            &Setup::hub_uris(&client_id, "hub.example.org"),
        )
        .await
        .unwrap();

    assert!(keycloak.delete(&client_id).await.unwrap());
    assert!(!keycloak.delete(&client_id).await.unwrap());
    assert!(
        !keycloak
            .delete(&setup.client_id("never-created"))
            .await
            .unwrap()
    );
    if let Some(fake) = setup.target.fake() {
        assert!(fake.client(&client_id).is_none());
    }
}

#[tokio::test]
async fn a_client_deleted_between_lookup_and_delete_counts_as_gone() {
    let setup = Setup::new().await;
    let Some(fake) = setup.fake("a_client_deleted_between_lookup_and_delete") else {
        return;
    };
    let client_id = setup.client_id("gone");
    let keycloak = setup.keycloak();
    let client = keycloak
        .ensure(
            &client_id,
            "g",
            &Setup::hub_uris(&client_id, "hub.example.org"),
        )
        .await
        .unwrap();
    fake.inject(
        Fault::status(
            format!("{}/{}", setup.target.clients_path(), client.id),
            404,
        )
        .method("DELETE")
        .body(json!({ "error": "Could not find client" })),
    );

    assert!(!keycloak.delete(&client_id).await.unwrap());
}

#[tokio::test]
async fn bad_admin_credentials_are_permanent_and_quote_keycloak() {
    let setup = Setup::new().await;
    let wrong = SecretString::new("not-the-admin-secret-7f3a");
    let keycloak = Keycloak {
        admin_client_secret: &wrong,
        ..setup.keycloak()
    };

    let error = keycloak
        .ensure(
            "never-created",
            "n",
            &Setup::hub_uris("n", "hub.example.org"),
        )
        .await
        .unwrap_err();

    assert_class(&error, ErrorClass::Permanent);
    assert!(
        error
            .message
            .contains("Keycloak refused hubwright's admin client credentials"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains("unauthorized_client: Invalid client or Invalid client credentials"),
        "{}",
        error.message
    );
    assert!(error.message.contains(&setup.target.admin_client_id));
    assert!(!error.message.contains(wrong.expose()));
    assert_eq!(error.detail.as_ref().unwrap()["status"], json!(401));

    let unknown = Keycloak {
        admin_client_id: "no-such-admin-client",
        ..setup.keycloak()
    };
    let error = unknown.delete("never-created").await.unwrap_err();
    assert_class(&error, ErrorClass::Permanent);
    assert!(
        error
            .message
            .contains("invalid_client: Invalid client or Invalid client credentials"),
        "{}",
        error.message
    );
    assert!(!error.message.contains(setup.secret.expose()));
}

#[tokio::test]
async fn a_503_from_keycloak_is_retryable_wherever_it_comes() {
    let setup = Setup::new().await;
    let Some(fake) = setup.fake("a_503_from_keycloak") else {
        return;
    };
    let client_id = setup.client_id("unavailable");
    let uris = Setup::hub_uris(&client_id, "hub.example.org");
    let keycloak = setup.keycloak();

    for prefix in [setup.target.token_path(), setup.target.clients_path()] {
        fake.inject(Fault::status(prefix.clone(), 503));
        let error = keycloak.ensure(&client_id, "u", &uris).await.unwrap_err();
        assert_class(&error, ErrorClass::Retryable);
        assert!(error.message.contains("answered 503"), "{}", error.message);
        assert!(
            error.message.contains("Service Unavailable"),
            "{}",
            error.message
        );
        assert_eq!(error.detail.as_ref().unwrap()["status"], json!(503));
    }
    fake.inject(Fault::status(setup.target.clients_path(), 429));
    let error = keycloak.delete(&client_id).await.unwrap_err();
    assert_class(&error, ErrorClass::Retryable);

    // The faults retired: the next attempt succeeds, with one client.
    keycloak.ensure(&client_id, "u", &uris).await.unwrap();
    assert_eq!(
        fake.client_ids()
            .iter()
            .filter(|id| **id == client_id)
            .count(),
        1
    );
}

#[tokio::test]
async fn an_unreachable_or_hanging_keycloak_is_retryable() {
    let setup = Setup::new().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let keycloak = Keycloak {
        base_url: &closed,
        ..setup.keycloak()
    };
    let error = keycloak.delete("anything").await.unwrap_err();
    assert_class(&error, ErrorClass::Retryable);
    assert!(
        error.message.starts_with("cannot reach Keycloak"),
        "{}",
        error.message
    );

    let Some(fake) = setup.fake("an_unreachable_or_hanging_keycloak (hang)") else {
        return;
    };
    fake.inject(Fault::hang(setup.target.clients_path()));
    let error = setup.keycloak().delete("anything").await.unwrap_err();
    assert_class(&error, ErrorClass::Retryable);
    assert!(fake.requests().iter().any(|r| r.status == 0));
}

#[tokio::test]
async fn keycloaks_refusals_are_permanent_and_quoted_verbatim() {
    let setup = Setup::new().await;
    let Some(fake) = setup.fake("keycloaks_refusals") else {
        return;
    };
    let client_id = setup.client_id("refused");
    let uris = Setup::hub_uris(&client_id, "hub.example.org");
    let keycloak = setup.keycloak();

    // A service account without manage-clients: Keycloak's own 403 body.
    fake.inject(Fault::status(setup.target.clients_path(), 403).method("POST"));
    let error = keycloak.ensure(&client_id, "r", &uris).await.unwrap_err();
    assert_class(&error, ErrorClass::Permanent);
    assert!(
        error.message.contains(": HTTP 403 Forbidden"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("manage-clients and view-clients"),
        "{}",
        error.message
    );

    // An ErrorRepresentation: its errorMessage, word for word.
    fake.inject(
        Fault::status(setup.target.clients_path(), 400)
            .method("POST")
            .body(json!({ "errorMessage": "Invalid characters in clientId «x»" })),
    );
    let error = keycloak.ensure(&client_id, "r", &uris).await.unwrap_err();
    assert_class(&error, ErrorClass::Permanent);
    assert!(
        error.message.ends_with("answered 400 to create the client in realm hubwright: Invalid characters in clientId «x»"),
        "{}",
        error.message
    );

    // An OAuth-style body: error and error_description.
    fake.inject(Fault::status(setup.target.token_path(), 400).body(json!({
        "error": "unauthorized_client",
        "error_description": "Client not enabled to retrieve service account"
    })));
    let error = keycloak.delete(&client_id).await.unwrap_err();
    assert_class(&error, ErrorClass::Permanent);
    assert!(
        error
            .message
            .ends_with(": unauthorized_client: Client not enabled to retrieve service account"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_refused_admin_token_is_replaced_once_then_the_refusal_is_permanent() {
    let setup = Setup::new().await;
    let Some(fake) = setup.fake("a_refused_admin_token") else {
        return;
    };
    let client_id = setup.client_id("token");
    let uris = Setup::hub_uris(&client_id, "hub.example.org");
    let keycloak = setup.keycloak();
    let tokens = || {
        fake.requests()
            .iter()
            .filter(|r| r.path == setup.target.token_path())
            .count()
    };

    fake.inject(Fault::status(setup.target.clients_path(), 401));
    keycloak.ensure(&client_id, "t", &uris).await.unwrap();
    assert_eq!(tokens(), 2, "one token, then one fresh one after the 401");

    fake.inject(Fault::status(setup.target.clients_path(), 401).times(2));
    let error = keycloak.delete(&client_id).await.unwrap_err();
    assert_class(&error, ErrorClass::Permanent);
    assert!(
        error
            .message
            .contains("refused the admin token it had just issued"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("HTTP 401 Unauthorized"),
        "{}",
        error.message
    );

    // A Keycloak that forgot its sessions: the next call simply gets a new token.
    fake.revoke_tokens();
    assert!(keycloak.delete(&client_id).await.unwrap());
}

#[tokio::test]
async fn a_public_client_with_the_same_client_id_is_refused_permanently() {
    let setup = Setup::new().await;
    let Some(fake) = setup.fake("a_public_client") else {
        return;
    };
    let client_id = setup.client_id("public");
    fake.insert_client(json!({ "clientId": client_id, "publicClient": true }));

    let error = setup
        .keycloak()
        .ensure(
            &client_id,
            "p",
            &Setup::hub_uris(&client_id, "hub.example.org"),
        )
        .await
        .unwrap_err();

    assert_class(&error, ErrorClass::Permanent);
    assert!(error.message.contains("has no secret"), "{}", error.message);
}

#[tokio::test]
async fn secrets_never_appear_in_errors_or_debug_output() {
    let setup = Setup::new().await;
    let Some(fake) = setup.fake("secrets_never_appear") else {
        return;
    };
    let client_id = setup.client_id("secret");
    let uris = Setup::hub_uris(&client_id, "hub.example.org");
    let keycloak = setup.keycloak();
    let client: KeycloakClient = keycloak.ensure(&client_id, "s", &uris).await.unwrap();
    let secret = client.secret.expose().to_owned();
    let admin_secret = setup.target.admin_client_secret.clone();
    let secret_path = format!(
        "{}/{}/client-secret",
        setup.target.clients_path(),
        client.id
    );
    let leaky = |error: &str| json!({ "error": error, "type": "secret", "value": secret, "secret": secret });

    let mut errors = Vec::new();
    // A failing secret read whose body carries the secret anyway.
    fake.inject(Fault::status(secret_path.clone(), 500).body(leaky("unknown_error")));
    errors.push(keycloak.ensure(&client_id, "s", &uris).await.unwrap_err());
    // A lookup answer that is not a list but carries the client's secret.
    fake.inject(
        Fault::status(setup.target.clients_path(), 200)
            .method("GET")
            .body(json!({ "clientId": client_id, "secret": secret })),
    );
    errors.push(keycloak.ensure(&client_id, "s", &uris).await.unwrap_err());
    // A secret answer that is not a credential.
    fake.inject(Fault::status(secret_path, 200).body(json!(secret)));
    errors.push(keycloak.ensure(&client_id, "s", &uris).await.unwrap_err());
    // A token answer that is not a token response but has the admin secret in it.
    fake.inject(
        Fault::status(setup.target.token_path(), 200).body(json!({ "token": admin_secret })),
    );
    errors.push(keycloak.delete(&client_id).await.unwrap_err());

    for error in &errors {
        let shown = format!("{} {:?} {:?}", error.message, error.detail, error);
        assert!(!shown.contains(&secret), "client secret leaked: {shown}");
        assert!(
            !shown.contains(&admin_secret),
            "admin secret leaked: {shown}"
        );
    }
    assert_class(&errors[0], ErrorClass::Retryable);
    let debug = format!("{client:?} {:?}", setup.keycloak());
    assert!(
        !debug.contains(&secret) && !debug.contains(&admin_secret),
        "{debug}"
    );
    let _: Value = fake.client(&client_id).unwrap();
    setup.cleanup(&client_id).await;
}
