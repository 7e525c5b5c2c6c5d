//! Traces and logs: one environment request is one trace, from the API
//! process through the run a worker process executes to the calls its
//! steps make to the Kubernetes API (the stand-in, or the cluster in
//! `KUBECONFIG`) and the real OpenID provider, exported over OTLP/HTTP to
//! the testkit's collector; the worker's JSON lines carry the run, step,
//! attempt and trace; request ids; a log filter that changes without a
//! restart.

pub mod exemplars;
mod log_filter;
mod request_id;
mod unrequested;

use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::model::{Role, RunState};
use hubwright_testkit::lab::{Lab, WITHIN};
use hubwright_testkit::otlp::{Collector, ReceivedSpan};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::wait;
use serde_json::{Value, json};

use crate::BIN;

/// A namespace and an identity-provider client: one step that calls
/// Kubernetes, one that calls the provider (and Kubernetes for its Secret).
fn template(issuer: &str) -> String {
    format!(
        r#"
name: hub
namespace: "hwt-{{name}}"
parameters:
  callback: {{ type: string, default: "http://127.0.0.1:8000/hub/oauth_callback" }}
workflows:
  provision:
    steps:
      - {{ name: namespace, kind: namespace }}
      - name: idp
        kind: idp-client
        with:
          mode: oidc
          issuer: {issuer}
          redirect_uri: "{{callback}}"
  teardown:
    steps:
      - {{ name: idp, kind: idp-client-delete }}
      - {{ name: namespace, kind: namespace-delete }}
"#
    )
}

/// Exporting to `collector` as `service`, in batches sent every 100 ms
/// instead of every 5 s.
fn exporting<'a>(collector: &'a Collector, service: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
        ("OTEL_SERVICE_NAME", service),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]
}

/// An environment a test requested, and its first run.
struct Requested {
    env: uuid::Uuid,
    run: uuid::Uuid,
}

/// Requests `body` from `api` as `token`, then waits until its first run is
/// in `state`.
async fn request_until(
    api: &ApiServer,
    db: &hubwright_testkit::TestDatabase,
    token: &str,
    body: Value,
    state: RunState,
) -> Requested {
    let created = api
        .post("/v1/environments")
        .token(token)
        .json(&body)
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let id = |value: &Value| -> uuid::Uuid { value.as_str().unwrap().parse().unwrap() };
    let requested = Requested {
        env: id(&created.body["environment"]["id"]),
        run: id(&created.body["run_id"]),
    };
    wait::run_state(&db.store, requested.run, state, WITHIN).await;
    requested
}

/// The trace id the API shows on run `run`.
async fn trace_of(api: &ApiServer, token: &str, run: uuid::Uuid) -> String {
    let reply = api
        .get(&format!("/v1/runs/{run}"))
        .token(token)
        .send()
        .await;
    reply.body["trace_id"].as_str().unwrap().to_owned()
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Whether `span` descends from `ancestor` in `spans`.
fn descends(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let mut parent = span.parent_span_id.as_deref();
    while let Some(id) = parent {
        if id == ancestor.span_id {
            return true;
        }
        parent = spans
            .iter()
            .find(|s| s.span_id == id)
            .and_then(|s| s.parent_span_id.as_deref());
    }
    false
}

/// Whether a span named `step` descends from a span named `root`.
fn hangs_under(spans: &[ReceivedSpan], root: &str, step: &str) -> bool {
    spans.iter().filter(|s| s.name == root).any(|ancestor| {
        spans
            .iter()
            .any(|s| s.name == step && descends(spans, s, ancestor))
    })
}

#[tokio::test]
async fn an_environment_request_is_one_trace_from_the_api_through_its_steps_to_kubernetes_and_the_identity_provider()
 {
    let collector = Collector::start().await;
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer())).await;
    let worker = lab.worker_process(BIN, "worker", &exporting(&collector, "hubwright-worker"));
    let clusters = lab.clusters_file.display().to_string();
    let api = ApiServer::start_process_with_env(
        BIN,
        &lab.db,
        &lab.workflows,
        &["--clusters", &clusters],
        &exporting(&collector, "hubwright-api"),
    )
    .await;
    let alice = token(lab.store(), "alice", Role::Developer).await;

    let accepted = api
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": lab.cluster.unique_name("traced"), "template": "hub", "ttl": "1h" }))
        .send()
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let request_id = accepted.headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let run_id: uuid::Uuid = accepted.body["run_id"].as_str().unwrap().parse().unwrap();
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;

    // The request's span started the trace; the run records its id, and
    // the run's creation event says so.
    let spans = collector
        .wait_for("the request's span", WITHIN, |spans| {
            spans.iter().any(|s| s.name == "POST /v1/environments")
        })
        .await;
    let trace_id = spans
        .iter()
        .find(|s| s.name == "POST /v1/environments")
        .map(|s| s.trace_id.clone())
        .unwrap();
    let run = api
        .get(&format!("/v1/runs/{run_id}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(run.body["trace_id"], trace_id.as_str(), "{:#}", run.body);
    let events = api
        .get(&format!("/v1/runs/{run_id}/events"))
        .token(&alice)
        .send()
        .await;
    let created = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["kind"] == "run_created")
        .cloned()
        .unwrap();
    assert_eq!(
        created["data"]["trace_id"],
        trace_id.as_str(),
        "{created:#}"
    );

    // Both processes export: the request's span, the run's, its two steps
    // and their calls out.
    let spans = collector
        .wait_for("the request's whole trace", WITHIN, |spans| {
            let of_trace: Vec<&ReceivedSpan> =
                spans.iter().filter(|s| s.trace_id == trace_id).collect();
            let has = |name: &str| of_trace.iter().any(|s| s.name == name);
            has("POST /v1/environments")
                && has("run")
                && has("step namespace")
                && has("step idp")
                && of_trace
                    .iter()
                    .any(|s| s.name.starts_with("identity-provider "))
        })
        .await;
    let trace: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .cloned()
        .collect();

    let request = named(&trace, "POST /v1/environments");
    assert_eq!(request.len(), 1, "one request span: {request:#?}");
    let request = request[0];
    assert_eq!(request.kind, "server");
    assert_eq!(request.parent_span_id, None, "the request starts the trace");
    assert_eq!(request.service, "hubwright-api");
    assert_eq!(request.attribute("request_id"), Some(request_id.as_str()));
    assert_eq!(request.attribute("status"), Some("202"));

    // The run executes in another process, later: its span is the
    // request's child through the context stored with the run.
    let runs = named(&trace, "run");
    assert!(!runs.is_empty());
    for run in &runs {
        assert_eq!(run.service, "hubwright-worker");
        assert_eq!(
            run.parent_span_id.as_deref(),
            Some(request.span_id.as_str())
        );
        assert_eq!(run.attribute("run_id"), Some(run_id.to_string().as_str()));
    }
    let step = |name: &str| {
        let found = named(&trace, &format!("step {name}"));
        assert_eq!(found.len(), 1, "one execution of {name}: {found:#?}");
        let step = found[0].clone();
        assert!(
            runs.iter()
                .any(|run| step.parent_span_id.as_deref() == Some(run.span_id.as_str())),
            "step {name} is a run span's child: {step:#?}"
        );
        assert_eq!(step.attribute("attempt"), Some("1"));
        step
    };
    let namespace = step("namespace");
    let idp = step("idp");

    // Kubernetes calls: the namespace step's own, and the identity
    // provider step's (its Secret), each under its step.
    let kubernetes: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|s| s.attribute("peer.service") == Some("kubernetes"))
        .collect();
    assert!(
        kubernetes
            .iter()
            .any(|call| descends(&trace, call, &namespace)),
        "a Kubernetes call under the namespace step: {kubernetes:#?}"
    );
    assert!(kubernetes.iter().all(|call| call.kind == "client"));
    let idp_calls: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|s| s.attribute("peer.service") == Some("identity-provider"))
        .collect();
    let names: Vec<&str> = idp_calls.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"identity-provider read the discovery document")
            && names.contains(&"identity-provider register a client"),
        "{names:?}"
    );
    for call in &idp_calls {
        assert!(
            descends(&trace, call, &idp),
            "{call:#?} is under the idp step"
        );
        assert_eq!(call.kind, "client");
        assert!(
            call.attribute("http.response.status_code").is_some(),
            "{call:#?}"
        );
    }
    // Every span of the trace hangs from the request: no link is broken.
    for span in &trace {
        assert!(
            span.span_id == request.span_id || descends(&trace, span, request),
            "{span:#?} is cut off from the request"
        );
    }

    // Every line the worker logged in a step carries the run, the step, the
    // attempt and the trace at the top of its JSON.
    let lines: Vec<Value> = worker
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &Value| line["span"] == "step")
        .collect();
    assert!(
        lines.iter().any(|line| line["message"] == "step started"),
        "the worker logs its steps: {}",
        worker.log_text()
    );
    for line in &lines {
        assert_eq!(line["run_id"], run_id.to_string().as_str(), "{line}");
        assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
        assert!(
            line["step"].is_string() && line["attempt"].is_number(),
            "{line}"
        );
    }
}
