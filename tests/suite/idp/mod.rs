//! The `idp-client` steps against the real OpenID provider `oidc-provider`
//! (started by the testkit) and the Kubernetes stand-in (or a real cluster
//! with `KUBECONFIG`): registration, read-back, update, delete, crashes on
//! either side of the provider's answer, provider faults, and secrets that
//! never show up anywhere but the hub's Kubernetes Secret.

use std::time::Duration;

use hubwright_sandbox::apiserver::Fault;
use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::model::{RunState, Step};
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

mod faults;
const IAT: &str = "iat-for-hubwright-tests";
const IAT_VARIABLE: &str = "HUBWRIGHT_TEST_IDP_TOKEN";

pub(crate) fn template(issuer: &str, iat_variable: Option<&str>) -> String {
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
    let read: Value = hubwright_http::client()
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
