//! A real JupyterHub for tests, configured the way the zero-to-jupyterhub
//! chart configures its hub from our values.
//!
//! [`JupyterHub::start`] installs, the first time, a Python venv with the
//! pinned `jupyterhub` and `oauthenticator` (`crates/sandbox/jupyterhub/requirements.txt`,
//! every dependency pinned) and the pinned `configurable-http-proxy` from npm
//! (`package-lock.json` beside it) into `<cache>/jupyterhub/<version>`, under a
//! lock file so parallel test processes install once. `<cache>` is
//! `$HUBWRIGHT_CACHE_DIR`, else `$XDG_CACHE_HOME/hubwright`, else
//! `~/.cache/hubwright`. Where `python3 -m venv` is unavailable (Debian without
//! `python3-venv`) the packages go to `pip install --target` and `PYTHONPATH`.
//!
//! It then writes `jupyterhub_config.py` (`crates/sandbox/jupyterhub/`), which
//! applies the rendered values' `hub.config` and `hub.extraConfig` as z2jh's
//! hub image does, plus local replacements for what the chart sets (ports on
//! 127.0.0.1, a sqlite database and cookie secret in a scratch dir, a spawner
//! that is never used), starts `configurable-http-proxy` itself (as the chart
//! runs it in its own pod: the hub is told not to start one, and JupyterHub
//! would start it in a session of its own that outlives a killed hub), then
//! `python -m jupyterhub`, and waits until `GET /hub/health` answers 200
//! through the proxy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub use crate::ports::free_port;
use crate::ports::free_port_except;

/// The pinned JupyterHub, as z2jh 4.x's hub image runs it; names the cache dir.
pub const JUPYTERHUB_VERSION: &str = "5.3.0";

/// How long the hub may take to answer `/hub/health`, installing not
/// included; [`crate::START_TIMEOUT_VARIABLE`] stretches it.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Knobs for [`JupyterHub::start_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The public port (the proxy's) on 127.0.0.1; 0 (the default) picks a
    /// free one. Pick one with [`free_port`] first when the URL must be known
    /// before the hub starts (to register its OAuth client).
    pub port: u16,
    /// The values' `hub.extraConfig`: Python snippets by name, run in name
    /// order after `hub.config`, as z2jh runs them.
    pub extra_config: BTreeMap<String, String>,
    /// Apply `hub.config` exactly as rendered. By default a null
    /// `GenericOAuthenticator.oauth_callback_url` (what our template renders
    /// without a base domain) becomes `{url}/hub/oauth_callback`, because
    /// traitlets refuses `None` for it and the hub would not start.
    pub config_as_rendered: bool,
}

impl Options {
    /// Options carrying the `hub.extraConfig` of the rendered values' `hub`
    /// mapping (empty when it has none).
    pub fn from_hub_values(hub: &Value) -> Self {
        let extra_config = hub["extraConfig"]
            .as_object()
            .map(|snippets| {
                snippets
                    .iter()
                    .filter_map(|(name, code)| Some((name.clone(), code.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Options {
            extra_config,
            ..Options::default()
        }
    }
}

/// A running JupyterHub with its proxy. Dropping it kills both; its scratch
/// directory is removed unless the thread is panicking, when the log's path
/// is printed.
#[derive(Debug)]
pub struct JupyterHub {
    url: String,
    dir: PathBuf,
    log: PathBuf,
    proxy_log: PathBuf,
    child: Option<Child>,
    proxy: Option<Child>,
}

impl JupyterHub {
    /// Starts a hub on a free port with `hub_config` (the rendered values'
    /// `hub.config`) and `env` added to its environment (what `hub.extraEnv`
    /// gives it in the chart).
    pub async fn start(hub_config: &Value, env: &[(&str, &str)]) -> std::io::Result<Self> {
        Self::start_with(hub_config, env, Options::default()).await
    }

    /// [`start`](Self::start) with [`Options`].
    pub async fn start_with(
        hub_config: &Value,
        env: &[(&str, &str)],
        options: Options,
    ) -> std::io::Result<Self> {
        let install = tokio::task::spawn_blocking(ensure_installed)
            .await
            .map_err(std::io::Error::other)??;
        let node = crate::npm::find_node()?;
        let port = if options.port == 0 {
            free_port()?
        } else {
            options.port
        };
        let url = format!("http://127.0.0.1:{port}");
        let dir = std::env::temp_dir().join(format!(
            "hubwright-jupyterhub-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut hub = JupyterHub {
            log: dir.join("jupyterhub.log"),
            proxy_log: dir.join("proxy.log"),
            url,
            dir,
            child: None,
            proxy: None,
        };

        let mut hub_config = hub_config.clone();
        if !options.config_as_rendered
            && let Some(oauth) = hub_config
                .get_mut("GenericOAuthenticator")
                .and_then(Value::as_object_mut)
            && oauth.get("oauth_callback_url").is_some_and(Value::is_null)
        {
            oauth.insert(
                "oauth_callback_url".to_owned(),
                Value::String(hub.callback_url()),
            );
        }
        // Three ports, none bound until the processes start (crate::ports
        // says why they are safe to hand over): a port just released can come
        // back from the next free_port.
        let hub_port = free_port_except(&[port])?;
        let api_port = free_port_except(&[port, hub_port])?;
        // Shared by the hub and the proxy, as the chart's Secret shares it.
        let token = uuid::Uuid::now_v7().simple().to_string();
        let settings = json!({
            "dir": hub.dir,
            "bind_url": format!("{}/", hub.url),
            "hub_bind_url": format!("http://127.0.0.1:{hub_port}"),
            "proxy_api_url": format!("http://127.0.0.1:{api_port}"),
            "hub_config": hub_config,
            "extra_config": options.extra_config,
        });
        std::fs::write(
            hub.dir.join("hubwright.json"),
            serde_json::to_vec_pretty(&settings)?,
        )?;
        let config = hub.dir.join("jupyterhub_config.py");
        std::fs::copy(project_dir().join("jupyterhub_config.py"), &config)?;

        // The chart's proxy container command, on 127.0.0.1.
        let proxy_log = std::fs::File::create(&hub.proxy_log)?;
        hub.proxy = Some(
            Command::new(&node)
                .arg(install.proxy_script())
                .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
                .args(["--api-ip", "127.0.0.1", "--api-port", &api_port.to_string()])
                .arg(format!("--default-target=http://127.0.0.1:{hub_port}"))
                .arg(format!(
                    "--error-target=http://127.0.0.1:{hub_port}/hub/error"
                ))
                .env("CONFIGPROXY_AUTH_TOKEN", &token)
                .current_dir(&hub.dir)
                .stdin(Stdio::null())
                .stdout(proxy_log.try_clone()?)
                .stderr(proxy_log)
                .kill_on_drop(true)
                .spawn()?,
        );

        let log = std::fs::File::create(&hub.log)?;
        let mut command = Command::new(&install.python);
        command
            .args(["-m", "jupyterhub", "-f"])
            .arg(&config)
            .current_dir(&hub.dir)
            .envs(env.iter().copied())
            .env("CONFIGPROXY_AUTH_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(path) = &install.pythonpath {
            command.env("PYTHONPATH", path);
        }
        hub.child = Some(command.spawn()?);
        hub.wait_for_health().await?;
        Ok(hub)
    }

    /// The public URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `{url}/hub/oauth_callback`: the redirect URI to register for this hub.
    pub fn callback_url(&self) -> String {
        format!("{}/hub/oauth_callback", self.url)
    }

    /// The hub's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the hub printed so far, then what its proxy printed.
    pub fn log_text(&self) -> String {
        let hub = std::fs::read_to_string(&self.log).unwrap_or_default();
        let proxy = std::fs::read_to_string(&self.proxy_log).unwrap_or_default();
        format!("{hub}\n--- configurable-http-proxy ---\n{proxy}")
    }

    async fn wait_for_health(&mut self) -> std::io::Result<()> {
        let http = hubwright_http::client();
        let url = format!("{}/hub/health", self.url);
        let within = crate::readiness::start_timeout(START_TIMEOUT);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut exited = None;
            for (name, child) in [
                ("jupyterhub", &mut self.child),
                ("the proxy", &mut self.proxy),
            ] {
                if let Some(child) = child.as_mut()
                    && let Some(status) = child.try_wait()?
                {
                    exited = Some(format!("{name} exited ({status})"));
                }
            }
            if let Some(exited) = exited {
                return Err(std::io::Error::other(format!(
                    "{exited} before {url} answered; logs in {}:\n{}",
                    self.dir.display(),
                    self.log_text()
                )));
            }
            match http.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                _ if tokio::time::Instant::now() > deadline => {
                    return Err(std::io::Error::other(format!(
                        "jupyterhub did not answer 200 at {url} within {}s (both it and its \
                         proxy are still running; raise {} on a slow machine); logs in {}:\n{}",
                        within.as_secs(),
                        crate::START_TIMEOUT_VARIABLE,
                        self.dir.display(),
                        self.log_text()
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for JupyterHub {
    fn drop(&mut self) {
        for child in [self.child.as_mut(), self.proxy.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!("jupyterhub and proxy logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `crates/sandbox/jupyterhub`: requirements.txt, package.json,
/// package-lock.json, jupyterhub_config.py.
pub fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("jupyterhub")
}

/// What [`ensure_installed`] installed.
#[derive(Debug)]
struct Install {
    /// The venv's python, or the system python3 with `pythonpath`.
    python: PathBuf,
    /// The `pip install --target` directory when there is no venv.
    pythonpath: Option<PathBuf>,
    dir: PathBuf,
}

impl Install {
    fn proxy_script(&self) -> PathBuf {
        self.dir
            .join("proxy/node_modules/configurable-http-proxy/bin/configurable-http-proxy")
    }

    fn at(dir: &Path) -> Self {
        let venv_python = dir.join("venv/bin/python");
        if venv_python.is_file() {
            Install {
                python: venv_python,
                pythonpath: None,
                dir: dir.to_owned(),
            }
        } else {
            Install {
                python: system_python(),
                pythonpath: Some(dir.join("site")),
                dir: dir.to_owned(),
            }
        }
    }
}

/// Installs into `<cache>/jupyterhub/<version>` unless its marker matches
/// the pinned requirements and lock file. The marker is written last, so a
/// half-done install (a killed process) is redone from scratch.
fn ensure_installed() -> std::io::Result<Install> {
    let project = project_dir();
    let mut pins = std::fs::read(project.join("requirements.txt"))?;
    pins.extend(std::fs::read(project.join("package-lock.json"))?);
    let root = crate::cache_dir()?.join("jupyterhub");
    let dir = root.join(JUPYTERHUB_VERSION);
    let marker = dir.join(".hubwright-installed");
    let installed = || std::fs::read(&marker).is_ok_and(|seen| seen == pins);
    if installed() {
        return Ok(Install::at(&dir));
    }
    std::fs::create_dir_all(&root)?;
    let lock = std::fs::File::create(root.join(format!("{JUPYTERHUB_VERSION}.lock")))?;
    // Held until dropped: another test process installing waits here.
    lock.lock()?;
    if installed() {
        return Ok(Install::at(&dir));
    }
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(&dir)?;
    install_python(&project, &dir)?;
    install_proxy(&project, &dir)?;
    std::fs::write(&marker, pins)?;
    Ok(Install::at(&dir))
}

fn install_python(project: &Path, dir: &Path) -> std::io::Result<()> {
    let requirements = project.join("requirements.txt");
    let python = system_python();
    let venv = dir.join("venv");
    let made_venv = std::process::Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .is_ok_and(|out| out.status.success());
    let pip_args = [
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        // The list is complete and pinned: nothing more is resolved.
        "--no-deps",
    ];
    if made_venv {
        return crate::run_install_step(
            "jupyterhub",
            std::process::Command::new(venv.join("bin/python"))
                .args(pip_args)
                .arg("-r")
                .arg(&requirements),
        );
    }
    // No venv module or no ensurepip (Debian without python3-venv).
    let _ = std::fs::remove_dir_all(&venv);
    crate::run_install_step(
        "jupyterhub",
        std::process::Command::new(&python)
            .args(pip_args)
            .arg("--target")
            .arg(dir.join("site"))
            .arg("-r")
            .arg(&requirements),
    )
}

fn install_proxy(project: &Path, dir: &Path) -> std::io::Result<()> {
    let proxy = dir.join("proxy");
    std::fs::create_dir_all(&proxy)?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(project.join(file), proxy.join(file))?;
    }
    // npm next to node first, so HUBWRIGHT_NODE picks its own npm.
    let npm = crate::npm::find_node()?
        .parent()
        .map(|dir| dir.join("npm"))
        .filter(|npm| npm.is_file())
        .unwrap_or_else(|| PathBuf::from("npm"));
    crate::run_install_step(
        "jupyterhub",
        std::process::Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&proxy),
    )
}

/// `$HUBWRIGHT_PYTHON`, else `python3`.
fn system_python() -> PathBuf {
    std::env::var_os("HUBWRIGHT_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}
