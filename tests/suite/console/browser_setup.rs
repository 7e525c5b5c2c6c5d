//! What the console's browser tests share: the real oidc-provider with the
//! console registered at it, and `hubwright serve --api --worker` (the console
//! and a worker in this process) over templates that provision in seconds.

use std::path::PathBuf;
use std::sync::Arc;

use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::SystemClock;
use hubwright_testkit::browser::{Browser, Script};
use hubwright_testkit::server::ApiServer;
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};

/// `demo`: five steps, two of them durable sleeps, so a page can watch the
/// steps turn green one by one.
const DEMO: &str = include_str!("../../../workflows/demo.yaml");

/// `repair`: its `configure` step fails permanently until the file
/// `{fixed}` exists; an operator fixes the cause, then retries from the run
/// page.
const REPAIR: &str = r#"
name: repair
description: Fails at its second step until an operator fixes the cause and retries.
workflows:
  provision:
    steps:
      - { name: prepare, kind: noop }
      - name: configure
        kind: test-fail
        with: { message: "the quota service refused the request: 403 Forbidden", until_exists: "{fixed}" }
      - { name: finish, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// `warm`: a pool of two that no scheduler fills here, so the pools page
/// shows a pool short of ready members.
const WARM: &str = r#"
name: warm
description: Kept ready in a pool.
pool: { size: 2, max_idle: 1h }
workflows:
  provision: { steps: [{ name: hub, kind: noop }] }
  assign: { steps: [{ name: assign, kind: noop }] }
  teardown: { steps: [{ name: remove, kind: noop }] }
"#;

/// Everything a console browser test runs against.
pub struct Console {
    pub db: TestDatabase,
    /// Kept for its lifetime: the provider stops when dropped.
    _provider: OidcProvider,
    pub server: ApiServer,
    pub browser: Browser,
    /// Created to let `repair`'s failing step succeed.
    pub fixed: PathBuf,
}

impl Console {
    /// The provider (`olga` in `hub-ops`, `ada` in `hub-admins`), the server,
    /// and chromium; `None` when browser tests are skipped.
    pub async fn start() -> Option<Self> {
        let browser = Browser::ready().await?;
        let groups = [
            ("olga".to_owned(), vec!["hub-ops".to_owned()]),
            ("ada".to_owned(), vec!["hub-admins".to_owned()]),
        ]
        .into();
        let provider = OidcProvider::start(Options {
            groups,
            ..Options::default()
        })
        .await
        .expect("oidc-provider");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let client = provider
            .register_client_for("console", &format!("{base}/sign-in/callback"))
            .await
            .unwrap();
        let dir = scratch_dir("console-browser");
        let fixed = dir.join("fixed");
        let workflows = write_workflow(&dir.join("workflows"), "demo", DEMO);
        write_workflow(
            &workflows,
            "repair",
            &REPAIR.replace("{fixed}", &fixed.display().to_string()),
        );
        write_workflow(&workflows, "warm", WARM);
        let db = TestDatabase::create().await;
        // `=`: a generated client id may start with `-`.
        let flags = [
            "--worker".to_owned(),
            format!("--oidc-issuer={}", provider.issuer()),
            format!("--oidc-audience={}", client.id),
            "--oidc-operator-groups=hub-ops".to_owned(),
            "--oidc-admin-groups=hub-admins".to_owned(),
            format!("--console-client-id={}", client.id),
            format!("--console-client-secret={}", client.secret),
            format!("--public-url={base}"),
            "--poll-interval=200ms".to_owned(),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let server =
            ApiServer::start_on(listener, &db, &workflows, &flags, Arc::new(SystemClock)).await;
        Some(Self {
            db,
            _provider: provider,
            server,
            browser,
            fixed,
        })
    }

    /// `tests/browser/<name>.mjs` with the console's address.
    pub fn script(&self, name: &str) -> Script {
        self.browser
            .script(name)
            .env("HUBWRIGHT_BASE_URL", &self.server.url)
    }
}
