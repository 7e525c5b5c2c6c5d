//! The `idp-client` steps against the real OpenID provider `oidc-provider`
//! (started by the testkit) and the Kubernetes stand-in (or a real cluster
//! with `KUBECONFIG`): registration, read-back, update, delete, crashes on
//! either side of the provider's answer, provider faults, and secrets that
//! never show up anywhere but the hub's Kubernetes Secret.

use std::time::Duration;

use hubwright_sandbox::apiserver::Fault;
use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::model::{ErrorClass, RunState, Step};
use hubwright_state::secrets::SecretString;
use hubwright_state::store::secrets::IdpClientState;
use hubwright_testkit::lab::{Lab, Requested, WITHIN};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{test_secret_keys, wait};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::BIN;
const IAT: &str = "iat-for-hubwright-tests";
const IAT_VARIABLE: &str = "HUBWRIGHT_TEST_IDP_TOKEN";

fn template(issuer: &str, iat_variable: Option<&str>) -> String {
    let iat = iat_variable
        .map(|name| format!("\n          initial_access_token_env: {name}"))
        .unwrap_or_default();
    format!(
        r#"
name: hub
namespace: "hwi-{{name}}"
parameters:
  auth_mode: {{ type: string, default: oidc }}
  callback: {{ type: string, default: "http://127.0.0.1:8000/hub/oauth_callback" }}
workflows:
  provision:
    steps:
      - {{ name: namespace, kind: namespace }}
      - name: idp
        kind: idp-client
        retry: {{ max_attempts: 3, initial_delay: 50ms, max_delay: 200ms }}
        with:
          mode: "{{auth_mode}}"
          issuer: {issuer}
          redirect_uri: "{{callback}}"{iat}
      - name: callback
        kind: idp-client-update
        with: {{ redirect_uri: "https://{{env.name}}.hubs.example.org/hub/oauth_callback" }}
  teardown:
    steps:
      - {{ name: idp, kind: idp-client-delete }}
      - {{ name: namespace, kind: namespace-delete }}
"#
    )
}

async fn hub_secret(lab: &Lab, namespace: &str) -> std::collections::BTreeMap<String, String> {
    let secret = Api::<Secret>::namespaced(lab.client().await, namespace)
        .get("hubwright-oauth")
        .await
        .unwrap();
    secret
        .data
        .unwrap()
        .into_iter()
        .map(|(key, value)| (key, String::from_utf8(value.0).unwrap()))
        .collect()
}

async fn steps(lab: &Lab, run_id: Uuid) -> Vec<Step> {
    lab.store().steps(run_id).await.unwrap()
}

fn output(steps: &[Step], name: &str) -> Value {
    steps
        .iter()
        .find(|step| step.name == name)
        .and_then(|step| step.output.clone())
        .unwrap()
}

/// Every text the database holds outside the sealed secrets table.
async fn database_text(lab: &Lab) -> String {
    let mut all = String::new();
    for table in ["events", "steps", "runs", "environments", "idp_clients"] {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM {table} t"
        )))
        .fetch_all(lab.store().pool())
        .await
        .unwrap();
        all.push_str(&rows.join("\n"));
    }
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT ciphertext FROM secrets")
        .fetch_all(lab.store().pool())
        .await
        .unwrap();
    for bytes in sealed {
        all.push_str(&String::from_utf8_lossy(&bytes));
    }
    all
}

async fn registration(lab: &Lab, env: Uuid) -> (String, SecretString) {
    let record = lab.store().idp_client(env).await.unwrap().unwrap();
    let token = lab
        .store()
        .secret(&test_secret_keys(), env, "idp-registration-access-token")
        .await
        .unwrap()
        .unwrap();
    (record.registration_client_uri.unwrap(), token)
}

#[tokio::test]
async fn a_hub_gets_a_registered_client_in_its_secret_and_teardown_removes_every_trace() {
    let provider = OidcProvider::start(Options::with_initial_access_token(IAT))
        .await
        .unwrap();
    let lab = Lab::new(&template(provider.issuer(), Some(IAT_VARIABLE))).await;
    let mut worker = lab.worker_process(BIN, "worker", &[(IAT_VARIABLE, IAT)]);
    let Requested {
        id: env,
        namespace,
        run_id,
    } = lab.request(json!({})).await;
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;

    let steps = steps(&lab, run_id).await;
    let client_id = output(&steps, "idp")["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        provider.registered_clients().await.unwrap(),
        vec![client_id.clone()]
    );
    let secret = hub_secret(&lab, &namespace).await;
    assert_eq!(secret["OAUTH_CLIENT_ID"], client_id);
    let client_secret = secret["OAUTH_CLIENT_SECRET"].clone();
    assert!(client_secret.len() >= 32, "a real secret");

    // Read back through RFC 7592: the update step pointed it at the hub's host.
    let (uri, rat) = registration(&lab, env).await;
    let read: Value = hubwright_testkit::http::client()
        .get(&uri)
        .bearer_auth(rat.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = lab.store().environment(env).await.unwrap().name;
    assert_eq!(
        read["redirect_uris"],
        json!([format!(
            "https://{name}.hubs.example.org/hub/oauth_callback"
        )])
    );
    assert_eq!(read["client_id"], client_id.as_str());
    assert_eq!(
        read["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(
        read["client_name"]
            .as_str()
            .unwrap()
            .contains(&env.to_string())
    );

    // The secret is in the Kubernetes Secret and nowhere else: not in the
    // database outside its sealed row, not in the worker's log, not in what
    // the API shows an operator.
    let clusters = lab.clusters_file.display().to_string();
    let api =
        ApiServer::start_process(BIN, &lab.db, &lab.workflows, &["--clusters", &clusters]).await;
    let ops = token(lab.store(), "ops", hubwright_state::model::Role::Operator).await;
    let shown = api
        .get(&format!("/v1/environments/{env}"))
        .token(&ops)
        .send()
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    let events = api
        .get(&format!("/v1/runs/{run_id}/events"))
        .token(&ops)
        .send()
        .await;
    let run = api
        .get(&format!("/v1/runs/{run_id}"))
        .token(&ops)
        .send()
        .await;
    for (place, text) in [
        ("the database", database_text(&lab).await),
        ("the worker's log", worker.log_text()),
        ("the API's environment", shown.body.to_string()),
        ("the API's run", run.body.to_string()),
        ("the API's events", events.body.to_string()),
        ("the API's log", api.process().log_text()),
    ] {
        for (what, value) in [
            ("client secret", client_secret.as_str()),
            ("registration token", rat.expose()),
            ("initial access token", IAT),
        ] {
            assert!(!text.contains(value), "the {what} appears in {place}");
        }
    }

    let teardown = lab.teardown(env).await;
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    assert!(
        provider.registered_clients().await.unwrap().is_empty(),
        "deleted at the provider"
    );
    let record = lab.store().idp_client(env).await.unwrap().unwrap();
    assert_eq!(record.state, IdpClientState::Deleted);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM secrets WHERE environment_id = $1")
        .bind(env)
        .fetch_one(lab.store().pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "no sealed secret outlives the environment");
    assert_eq!(
        output(&lab.store().steps(teardown).await.unwrap(), "idp")["deleted_at_provider"],
        true
    );
    worker.signal("TERM");
    worker.wait_exit(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_worker_killed_after_the_provider_answered_reuses_the_client_it_recorded() {
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    // Writing the hub's Secret hangs: the registration is recorded, the step
    // is not done, and the worker dies there.
    standin.inject(
        Fault::latency(Duration::from_secs(30))
            .on_resource("secrets")
            .times(1),
    );
    let first = lab.worker_process(BIN, "first", &[]);
    let requested = lab.request(json!({})).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !standin
        .requests()
        .iter()
        .any(|r| r.resource.as_deref() == Some("secrets"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never got to the secret"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9().await;
    let recorded = lab.store().idp_client(requested.id).await.unwrap().unwrap();
    assert_eq!(recorded.state, IdpClientState::Registered);

    let _second = lab.worker_process(BIN, "second", &[]);
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let steps = steps(&lab, requested.run_id).await;
    let idp = output(&steps, "idp");
    assert_eq!(idp["reused"], true);
    assert_eq!(idp["client_id"], recorded.client_id.unwrap().as_str());
    assert_eq!(
        provider.registered_clients().await.unwrap().len(),
        1,
        "no second client"
    );
}

#[tokio::test]
async fn a_worker_killed_while_the_provider_registers_leaves_a_named_orphan_and_says_so() {
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    // The provider takes its time; the worker dies before the answer comes.
    provider
        .hang_next("/reg", Duration::from_secs(3), 1)
        .await
        .unwrap();
    let first = lab.worker_process(BIN, "first", &[]);
    let requested = lab.request(json!({})).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let record = lab.store().idp_client(requested.id).await.unwrap();
        if record.is_some_and(|r| r.state == IdpClientState::Registering) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never started registering"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The intent is committed before the request is sent: kill only once the
    // provider holds the request, or there is nothing for it to finish.
    wait::until(
        "the provider to receive the registration",
        WITHIN,
        || async { provider.pending_faults().await.unwrap() == 0 },
    )
    .await;
    first.kill9().await;
    // The provider finishes the registration nobody will hear about.
    let deadline = tokio::time::Instant::now() + WITHIN;
    while provider.registered_clients().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the provider never registered it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let _second = lab.worker_process(BIN, "second", &[]);
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let idp = output(&steps(&lab, requested.run_id).await, "idp");
    assert_eq!(
        idp["earlier_answer_lost"], true,
        "the timeline says an orphan may exist"
    );
    let clients = provider.registered_clients().await.unwrap();
    assert_eq!(clients.len(), 2, "RFC 7591 cannot find the first one again");
    assert!(clients.contains(&idp["client_id"].as_str().unwrap().to_owned()));
    assert_eq!(
        lab.store()
            .idp_client(requested.id)
            .await
            .unwrap()
            .unwrap()
            .registrations_started,
        2
    );
}

#[tokio::test]
async fn provider_trouble_is_retried_and_refusals_are_permanent_and_verbatim() {
    let mut provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    let _worker = lab.worker("w1");

    // Two 503s, then the registration goes through.
    provider
        .fail_next("/reg", 503, json!({"error": "temporarily_unavailable"}), 2)
        .await
        .unwrap();
    let ok = lab.request(json!({})).await;
    wait::run_state(lab.store(), ok.run_id, RunState::Succeeded, WITHIN).await;
    let idp = steps(&lab, ok.run_id)
        .await
        .into_iter()
        .find(|s| s.name == "idp")
        .unwrap();
    assert_eq!(idp.attempts, 3);

    // Metadata the provider rejects: its words, once, no retry.
    let bad = lab.request(json!({"callback": "not a url"})).await;
    let run = wait::run_state(lab.store(), bad.run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains("answered 400 to register a client: invalid_redirect_uri: redirect_uris must only contain valid uris"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );
    assert_eq!(steps(&lab, bad.run_id).await[1].attempts, 1);

    // The provider is down: transient, retried until the policy gives up.
    provider.stop().await.unwrap();
    let down = lab.request(json!({})).await;
    let run = wait::run_state(lab.store(), down.run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains("cannot reach the identity provider"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Retryable)
    );
    assert_eq!(steps(&lab, down.run_id).await[1].attempts, 3);
}

#[tokio::test]
async fn a_required_initial_access_token_that_is_missing_is_a_clear_permanent_error() {
    let provider = OidcProvider::start(Options::with_initial_access_token(IAT))
        .await
        .unwrap();

    // The template sends none: the provider's refusal, verbatim.
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    let _worker = lab.worker("w1");
    let run_id = lab.request(json!({})).await.run_id;
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message
            .contains("answered 401 to register a client: invalid_token: no access token provided"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );

    // The template names a variable this worker does not have.
    let lab = Lab::new(&template(
        provider.issuer(),
        Some("HUBWRIGHT_TEST_UNSET_TOKEN"),
    ))
    .await;
    let _worker = lab.worker("w2");
    let run_id = lab.request(json!({})).await.run_id;
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    assert_eq!(
        run.error.clone().unwrap().message,
        "with.initial_access_token_env names HUBWRIGHT_TEST_UNSET_TOKEN, which is not set on this worker"
    );
    assert!(provider.registered_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn local_mode_gives_the_hub_a_generated_admin_password_that_stays_the_same() {
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    let _worker = lab.worker("w1");
    let requested = lab.request(json!({"auth_mode": "local"})).await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let password = hub_secret(&lab, &requested.namespace).await["ADMIN_PASSWORD"].clone();
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(
        provider.registered_clients().await.unwrap().is_empty(),
        "no IdP involved"
    );
    assert!(!database_text(&lab).await.contains(&password));

    let again = lab.run_again(requested.id, "provision").await;
    wait::run_state(lab.store(), again, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        hub_secret(&lab, &requested.namespace).await["ADMIN_PASSWORD"],
        password
    );
}

#[tokio::test]
async fn a_worker_without_a_usable_secret_key_does_not_start() {
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    for (value, expected) in [
        ("", "HUBWRIGHT_SECRET_KEY is not set"),
        (
            "k1:abc",
            "HUBWRIGHT_SECRET_KEY: key #1 must be 64 hex digits (32 bytes)",
        ),
    ] {
        let mut worker = lab.worker_process(BIN, "keyless", &[("HUBWRIGHT_SECRET_KEY", value)]);
        let code = worker.wait_exit(Duration::from_secs(30)).await;
        assert_ne!(code, Some(0));
        let log = worker.log_text();
        assert!(log.contains(expected), "{value:?}: {log}");
        assert!(!log.contains("abc\""), "the key is not echoed");
    }
}

#[tokio::test]
async fn the_keycloak_driver_creates_the_client_by_our_id_once_and_removes_it_on_teardown() {
    let keycloak = hubwright_testkit::keycloak::KeycloakTarget::from_env_or_fake()
        .await
        .unwrap();
    let block = format!(
        "{{ url: \"{}\", realm: {}, admin_client_id: {}, admin_client_secret_env: HUBWRIGHT_TEST_KEYCLOAK_SECRET }}",
        keycloak.base_url, keycloak.realm, keycloak.admin_client_id
    );
    let template = template("unused", None)
        .replace("          issuer: unused\n", &format!("          keycloak: {block}\n"))
        .replace(
            "with: { redirect_uri: \"https://{env.name}.hubs.example.org/hub/oauth_callback\" }",
            &format!("with: {{ redirect_uri: \"https://{{env.name}}.hubs.example.org/hub/oauth_callback\", keycloak: {block} }}"),
        )
        .replace("{ name: idp, kind: idp-client-delete }", &format!("{{ name: idp, kind: idp-client-delete, with: {{ keycloak: {block} }} }}"));
    let lab = Lab::new(&template).await;
    let hubs = |fake: &hubwright_testkit::keycloak::FakeKeycloak| -> Vec<String> {
        fake.client_ids()
            .into_iter()
            .filter(|id| *id != keycloak.admin_client_id)
            .collect()
    };
    let env_var = [(
        "HUBWRIGHT_TEST_KEYCLOAK_SECRET",
        keycloak.admin_client_secret.as_str(),
    )];
    let first = lab.worker_process(BIN, "first", &env_var);
    let requested = lab.request(json!({})).await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;

    let client_id = format!("hubwright-{}", requested.id);
    let secret = hub_secret(&lab, &requested.namespace).await;
    assert_eq!(secret["OAUTH_CLIENT_ID"], client_id);
    let idp = output(&steps(&lab, requested.run_id).await, "idp");
    assert_eq!(idp["driver"], "keycloak");
    assert!(
        idp["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/protocol/openid-connect/token")
    );
    assert!(
        !database_text(&lab)
            .await
            .contains(&secret["OAUTH_CLIENT_SECRET"])
    );
    if let Some(fake) = keycloak.fake() {
        assert_eq!(hubs(fake), vec![client_id.clone()]);
        let name = lab.store().environment(requested.id).await.unwrap().name;
        assert_eq!(
            fake.client(&client_id).unwrap()["redirectUris"],
            json!([format!(
                "https://{name}.hubs.example.org/hub/oauth_callback"
            )]),
            "idp-client-update moved it"
        );
    }

    // Provisioning again finds the same client instead of making a second.
    let again = lab.run_again(requested.id, "provision").await;
    wait::run_state(lab.store(), again, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        hub_secret(&lab, &requested.namespace).await["OAUTH_CLIENT_ID"],
        client_id
    );
    if let Some(fake) = keycloak.fake() {
        assert_eq!(hubs(fake).len(), 1);
    }

    let teardown = lab.teardown(requested.id).await;
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        output(&steps(&lab, teardown).await, "idp")["deleted_at_provider"],
        true
    );
    if let Some(fake) = keycloak.fake() {
        assert!(hubs(fake).is_empty());
    }
    first.kill9().await;
}

#[tokio::test]
async fn a_provider_that_is_down_is_retried_until_it_is_back() {
    let mut provider = OidcProvider::start(Options::default()).await.unwrap();
    let patient = template(provider.issuer(), None).replace(
        "retry: { max_attempts: 3, initial_delay: 50ms, max_delay: 200ms }",
        "retry: { max_attempts: 30, initial_delay: 100ms, max_delay: 300ms, jitter: false }",
    );
    let lab = Lab::new(&patient).await;
    provider.stop().await.unwrap();
    let _worker = lab.worker("w1");
    let requested = lab.request(json!({})).await;

    // Failing while the provider is down, and not given up on.
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let steps = steps(&lab, requested.run_id).await;
        if steps[1].attempts >= 3 {
            assert!(
                steps[1]
                    .error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or_default()
                    .contains("cannot reach the identity provider"),
                "{:?}",
                steps[1].error
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(
        lab.store().run(requested.run_id).await.unwrap().state,
        RunState::Failed
    );

    provider.restart().await.unwrap();
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let idp = output(&steps(&lab, requested.run_id).await, "idp");
    assert_eq!(
        provider.registered_clients().await.unwrap(),
        vec![idp["client_id"].as_str().unwrap().to_owned()]
    );
}
