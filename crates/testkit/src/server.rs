//! `hubwright serve --api` for API tests — in this process on a port of its
//! own (the default: nothing to start, and a clock the test controls), or as
//! a real process where the test needs one (logs, signals, exit codes) — and
//! a small HTTP client for it: method, path, token, body and headers in;
//! status, headers and body out.
//!
//! ```no_run
//! # async fn example(db: &hubwright_testkit::TestDatabase, workflows: &std::path::Path) {
//! use hubwright_testkit::server::{ApiServer, StatusCode};
//! let server = ApiServer::start(db, workflows, &[]).await;
//! let reply = server.post("/v1/environments").token("hw_…").json(&serde_json::json!({})).send().await;
//! reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hubwright_cli::serve;

use hubwright_state::model::Role;
use hubwright_state::{Clock, Store, SystemClock};
pub use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;

use crate::TestDatabase;
use crate::process::Process;

/// How long the server may take to start answering.
const START_WITHIN: Duration = Duration::from_secs(30);

/// Longest any one request may take (event streams end with their run).
const REQUEST_WITHIN: Duration = Duration::from_secs(60);

/// `hubwright serve --api` listening on a port of its own, against a test
/// database. Stopped when dropped.
#[derive(Debug)]
pub struct ApiServer {
    /// Where it listens, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub url: String,
    running: Running,
    client: reqwest::Client,
}

/// How the server runs.
#[derive(Debug)]
enum Running {
    /// A `serve` task in this process, aborted when dropped.
    InProcess(tokio::task::JoinHandle<()>),
    /// A real process (boxed: it is much larger than a task handle).
    Process(Box<Process>),
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::InProcess(task) = self {
            task.abort();
        }
    }
}

impl ApiServer {
    /// Runs `serve --api --workflows <workflows> <extra…>` (and `--rate-limit 0`
    /// unless `extra` sets one) in this process on
    /// the wall clock, against `db`, on a port of its own, as the test build
    /// of the binary would: the testkit's step kinds registered, secrets
    /// sealed with [`crate::TEST_SECRET_KEY`].
    pub async fn start(db: &TestDatabase, workflows: &Path, extra: &[&str]) -> Self {
        Self::start_with_clock(db, workflows, extra, Arc::new(SystemClock)).await
    }

    /// [`ApiServer::start`] on `clock` (a [`hubwright_state::ManualClock`]
    /// lets the test move the API's time).
    pub async fn start_with_clock(
        db: &TestDatabase,
        workflows: &Path,
        extra: &[&str],
        clock: Arc<dyn Clock>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        Self::start_on(listener, db, workflows, extra, clock).await
    }

    /// [`ApiServer::start_with_clock`] on a socket the test bound, for a
    /// test that must know the server's address before it starts (an OpenID
    /// client's redirect URI).
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        db: &TestDatabase,
        workflows: &Path,
        extra: &[&str],
        clock: Arc<dyn Clock>,
    ) -> Self {
        let workflows = workflows.display().to_string();
        // Tests poll the API faster than any person: no request budget
        // unless the test sets one (the rate-limit tests do).
        let unlimited: &[&str] = if extra.contains(&"--rate-limit") {
            &[]
        } else {
            &["--rate-limit", "0"]
        };
        let argv = ["--api", "--workflows", &workflows]
            .into_iter()
            .chain(unlimited.iter().copied())
            .chain(extra.iter().copied());
        let args = serve::parse_args(argv).unwrap_or_else(|err| panic!("serve flags: {err}"));
        let address = listener.local_addr().expect("the bound address");
        let url = db.url.clone();
        let injected = serve::Injected {
            listener: Some(listener),
            metrics_listener: None,
            clock,
            keys: Some(Arc::new(crate::test_secret_keys())),
        };
        // No shutdown signal: dropping the server aborts the task.
        let shutdown = std::future::pending();
        let task = tokio::spawn(async move {
            if let Err(err) =
                serve::run_until(&url, args, crate::extensions(), injected, shutdown).await
            {
                panic!("serve stopped: {err:#}");
            }
        });
        let server = Self {
            url: format!("http://{address}"),
            running: Running::InProcess(task),
            client: client(),
        };
        server.wait_until_ready().await;
        server
    }

    /// The server's process, for its log and for signals. Panics for a server
    /// started in-process: use [`ApiServer::start_process`] where the test
    /// reads the log or sends signals.
    pub fn process(&self) -> &Process {
        match &self.running {
            Running::Process(process) => process,
            Running::InProcess(_) => {
                panic!("this server runs in-process; start_process has a log")
            }
        }
    }

    /// The server's process, mutably (to wait for its exit).
    pub fn process_mut(&mut self) -> &mut Process {
        match &mut self.running {
            Running::Process(process) => process,
            Running::InProcess(_) => {
                panic!("this server runs in-process; start_process has a log")
            }
        }
    }

    /// Starts `bin` (pass the suite's `hubwright-test` binary) as
    /// `serve --api --listen 127.0.0.1:0 --workflows <workflows> <extra…>`
    /// against `db` and waits until `GET /readyz` answers 200. The port is read
    /// from the server's own log, so parallel tests never race for one; the log
    /// is a file in a scratch directory ([`Process::log`]).
    pub async fn start_process(
        bin: &str,
        db: &TestDatabase,
        workflows: &Path,
        extra: &[&str],
    ) -> Self {
        Self::start_process_with_env(bin, db, workflows, extra, &[]).await
    }

    /// [`ApiServer::start_process`] with extra environment variables (see
    /// [`Process::start_with_env`]): a worker without helm on `PATH`, a
    /// cluster without a kubeconfig.
    pub async fn start_process_with_env(
        bin: &str,
        db: &TestDatabase,
        workflows: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let workflows = workflows.display().to_string();
        let mut args = vec![
            "serve",
            "--api",
            "--listen",
            "127.0.0.1:0",
            "--workflows",
            &workflows,
        ];
        args.extend_from_slice(extra);
        let log = crate::scratch_dir("serve").join("serve.log");
        let mut process = Process::start_with_env(Path::new(bin), &db.url, &args, env, &log);
        let address = listening_address(&mut process).await;
        let server = Self {
            url: format!("http://{address}"),
            running: Running::Process(Box::new(process)),
            client: client(),
        };
        server.wait_until_ready().await;
        server
    }

    /// A request with `method` (`GET`, `POST`, …) to `path` (starting with `/`,
    /// query string included).
    pub fn request(&self, method: &str, path: &str) -> Call {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        Call {
            request: self.client.request(method, format!("{}{path}", self.url)),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Call {
        self.request("GET", path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> Call {
        self.request("POST", path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Call {
        self.request("DELETE", path)
    }

    /// Waits until `GET /readyz` answers 200: the API itself answers, not
    /// what answers probes while `serve` waits for the database (`/healthz`
    /// is 200 then too). An in-process server that stopped, or a process's
    /// log, is shown when it does not.
    async fn wait_until_ready(&self) {
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        loop {
            if let Ok(reply) = self.client.get(format!("{}/readyz", self.url)).send().await
                && reply.status() == StatusCode::OK
            {
                return;
            }
            if let Running::InProcess(task) = &self.running {
                assert!(!task.is_finished(), "serve stopped before /readyz answered");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz did not answer 200 within {START_WITHIN:?}:\n{}",
                match &self.running {
                    Running::Process(process) => process.log_text(),
                    Running::InProcess(_) => "(in-process: see the test's output)".to_owned(),
                }
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn client() -> reqwest::Client {
    hubwright_http::client_builder()
        .timeout(REQUEST_WITHIN)
        .build()
        .expect("build an HTTP client")
}

/// Waits for the `api listening` line of the JSON log and returns its address.
async fn listening_address(process: &mut Process) -> String {
    let deadline = tokio::time::Instant::now() + START_WITHIN;
    loop {
        let log = process.log_text();
        let address = log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["message"] == "api listening")
            .and_then(|line| line["address"].as_str().map(str::to_owned));
        if let Some(address) = address {
            return address;
        }
        assert!(
            !process.has_exited(),
            "hubwright serve exited before listening:\n{log}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "hubwright serve did not listen within {START_WITHIN:?}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request being put together; [`Call::send`] sends it. Owns what it needs,
/// so it can be sent from a spawned task.
#[derive(Debug)]
#[must_use = "a call does nothing until sent"]
pub struct Call {
    request: reqwest::RequestBuilder,
}

impl Call {
    /// `Authorization: Bearer <token>`.
    pub fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Any other header, e.g. `Idempotency-Key`, `Accept`, `Last-Event-ID`.
    pub fn header(self, name: &str, value: &str) -> Self {
        Self {
            request: self.request.header(name, value),
        }
    }

    /// `body` as `application/json`.
    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", body.to_string())
    }

    /// Raw bytes (need not be UTF-8) with `content_type`.
    pub fn body(self, content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            request: self
                .request
                .header(CONTENT_TYPE, content_type)
                .body(bytes.into()),
        }
    }

    /// Sends it and reads the whole answer (an event stream until it ends).
    pub async fn send(self) -> Reply {
        let response = self.request.send().await.expect("send the request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read the answer");
        let is_json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|media| media.trim().ends_with("json"));
        let body = is_json
            .then(|| serde_json::from_slice(&bytes).ok())
            .flatten()
            .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// What the server answered.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body: parsed when its content type is JSON (`application/json`,
    /// `application/problem+json`), otherwise the text as a JSON string.
    pub body: Value,
}

impl Reply {
    /// The `Content-Type` header, or "".
    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The body when it was not JSON (event streams, metrics, HTML).
    pub fn text(&self) -> &str {
        self.body
            .as_str()
            .unwrap_or_else(|| panic!("expected a text body, got JSON: {:#}", self.body))
    }

    /// The problem's `detail`.
    pub fn detail(&self) -> &str {
        self.body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("expected a problem, got {} {:#}", self.status, self.body))
    }

    /// Asserts an `application/problem+json` answer with `status`, type
    /// `/docs/problems/<kind>`, the same status in the body and a detail.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode, kind: &str) {
        assert_eq!(self.status, status, "{:#}", self.body);
        assert_eq!(self.content_type(), "application/problem+json", "{status}");
        assert_eq!(
            self.body["type"],
            format!("/docs/problems/{kind}"),
            "{:#}",
            self.body
        );
        assert_eq!(self.body["status"], status.as_u16());
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "a problem says what was wrong: {:#}",
            self.body
        );
    }

    /// (id, event) of every Server-Sent Event in the body, in order.
    pub fn sse_events(&self) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        let mut id = None;
        for line in self.text().lines() {
            if let Some(value) = line.strip_prefix("id: ") {
                id = value.parse().ok();
            } else if let Some(kind) = line.strip_prefix("event: ") {
                out.push((id.take().expect("an id before each event"), kind.to_owned()));
            }
        }
        out
    }
}

/// A new bearer token for `subject` with `role`, straight through the store.
pub async fn token(store: &Store, subject: &str, role: Role) -> String {
    store
        .create_token(subject, role, SystemClock.now())
        .await
        .expect("create a token")
        .secret
}
