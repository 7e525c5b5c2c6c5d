//! A real OpenID provider for tests: the certified `oidc-provider` (npm, v9)
//! run by Node from `crates/sandbox/oidc/provider.mjs`.
//!
//! [`OidcProvider::start`] installs the npm packages the first time (`npm ci`,
//! serialised across test processes by a file lock), starts the provider on
//! `127.0.0.1`, and waits until discovery answers. The provider has Dynamic
//! Client Registration (RFC 7591, `POST {issuer}/reg`), its management protocol
//! (RFC 7592: GET, PUT, DELETE at `registration_client_uri`, the registration
//! access token is not rotated on update), development logins (any user name,
//! which becomes `sub`; claims `email`, `name`, `preferred_username`), and an
//! in-memory store: a stopped or restarted provider has forgotten every client.
//!
//! Test-only routes under `{issuer}/__test/` list clients and requests and add
//! fault rules; see `provider.mjs`. [`OidcProvider::sign_in`] signs a user in
//! through the authorization code flow, as a portal would.

pub mod bundle;
mod faults;
mod sign_in;

pub use faults::{Fault, RequestRecord};
pub use sign_in::Client;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long the first line (the issuer) and then discovery may take, `npm ci`
/// not included; [`crate::START_TIMEOUT_VARIABLE`] stretches it.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Knobs for [`OidcProvider::start`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// When set, registration requires `Authorization: Bearer <token>`.
    pub initial_access_token: Option<String>,
    /// Port on 127.0.0.1; 0 (the default) picks a free one.
    pub port: u16,
    /// Group memberships by user name, sent as the `groups` claim to
    /// clients that ask for the `groups` scope.
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
}

impl Options {
    /// Options whose registration requires `token` as initial access token.
    pub fn with_initial_access_token(token: impl Into<String>) -> Self {
        Options {
            initial_access_token: Some(token.into()),
            ..Options::default()
        }
    }
}

/// A running `oidc-provider`. Dropping it kills the process; its scratch
/// directory (the log) is removed unless the thread is panicking.
#[derive(Debug)]
pub struct OidcProvider {
    options: Options,
    port: u16,
    issuer: String,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Kept open so the provider never writes to a closed pipe.
    _stdout: Option<Lines<BufReader<ChildStdout>>>,
    http: reqwest::Client,
}

impl OidcProvider {
    /// Installs the npm packages if needed, starts the provider and waits until
    /// `/.well-known/openid-configuration` answers.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("hubwright-oidc-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut provider = OidcProvider {
            port: options.port,
            options,
            issuer: String::new(),
            log: dir.join("provider.log"),
            dir,
            child: None,
            _stdout: None,
            http: hubwright_http::client(),
        };
        provider.spawn().await?;
        Ok(provider)
    }

    /// The issuer, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port, stable across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// `{issuer}/reg`, as discovery names it.
    pub fn registration_endpoint(&self) -> String {
        format!("{}/reg", self.issuer)
    }

    /// The initial access token registration requires, if any.
    pub fn initial_access_token(&self) -> Option<&str> {
        self.options.initial_access_token.as_deref()
    }

    /// Kills the provider (SIGKILL) and waits for it: connections are refused
    /// until [`restart`](Self::restart).
    pub async fn stop(&mut self) -> std::io::Result<()> {
        self._stdout = None;
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Stops the provider if running and starts a new one on the same port with
    /// the same initial access token. The new one has an empty store and new
    /// signing keys: registered clients are gone. Use it for "provider down"
    /// tests only.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await?;
        self.options.port = self.port;
        self.spawn().await
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The provider's log file: one JSON line per request, plus its warnings.
    /// It never logs request or response bodies.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the provider printed on stderr so far, across restarts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn spawn(&mut self) -> std::io::Result<()> {
        let project = project_dir();
        let node = crate::npm::find_node()?;
        crate::npm::ensure_installed(&project).await?;
        let script = bundle::script(&project, &node).await;

        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(&node);
        command
            .arg(&script)
            .arg("--port")
            .arg(self.options.port.to_string())
            .env_remove("HUBWRIGHT_OIDC_IAT")
            .current_dir(&project)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(token) = &self.options.initial_access_token {
            command.arg("--iat").arg(token);
        }
        // One signing key per machine instead of one per start (see
        // provider.mjs); without a cache directory, one per start.
        if let Ok(dir) = crate::cache_dir().map(|dir| dir.join("oidc"))
            && std::fs::create_dir_all(&dir).is_ok()
        {
            command.arg("--key-file").arg(dir.join("signing-key.jwk"));
        }
        if !self.options.groups.is_empty() {
            command
                .arg("--groups")
                .arg(serde_json::to_string(&self.options.groups)?);
        }
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("provider stdout not captured"))?;
        let mut lines = BufReader::new(stdout).lines();
        let within = crate::readiness::start_timeout(START_TIMEOUT);
        let first = tokio::time::timeout(within, lines.next_line()).await;
        let ready: Option<Ready> = match first {
            Ok(Ok(Some(line))) => serde_json::from_str(&line).ok(),
            _ => None,
        };
        let Some(ready) = ready else {
            let awaited = "print its ready line ({\"issuer\",\"port\"}) on stdout";
            let err = crate::readiness::not_ready(
                "oidc-provider",
                awaited,
                within,
                &mut child,
                &self.log,
            );
            let _ = child.kill().await;
            return Err(err);
        };
        self.port = ready.port;
        self.issuer = ready.issuer;
        self.child = Some(child);
        self._stdout = Some(lines);
        self.wait_for_discovery().await
    }

    async fn wait_for_discovery(&mut self) -> std::io::Result<()> {
        let url = self.discovery_url();
        let within = crate::readiness::start_timeout(START_TIMEOUT);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.http.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                _ if tokio::time::Instant::now() > deadline => {
                    let awaited = format!("answer 200 at {url}");
                    return Err(match self.child.as_mut() {
                        Some(child) => crate::readiness::not_ready(
                            "oidc-provider",
                            &awaited,
                            within,
                            child,
                            &self.log,
                        ),
                        None => std::io::Error::other(format!(
                            "oidc-provider is not running; {awaited} failed"
                        )),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!("oidc-provider log kept at {}", self.log.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The provider's first stdout line.
#[derive(Deserialize)]
struct Ready {
    issuer: String,
    port: u16,
}

/// `crates/sandbox/oidc`: package.json, package-lock.json, provider.mjs.
pub fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}
