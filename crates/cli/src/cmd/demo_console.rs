//! The web console beside the sandbox demo: `serve --api` in this process,
//! on a free local port, signing users in at the sandbox's oidc-provider
//! through a client registered there for it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hubwright_sandbox::oidc::OidcProvider;
use hubwright_state::secrets::SecretKeys;
use tokio::sync::watch;

use super::serve;
use crate::Extensions;

/// The console of a demo; it stops when dropped.
#[derive(Debug)]
pub struct DemoConsole {
    /// Where a browser opens it.
    pub url: String,
    stop: watch::Sender<bool>,
}

impl Drop for DemoConsole {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the console over the database at `database_url` and the
/// templates in `workflows`, signing in at `provider`.
pub async fn start(
    database_url: &str,
    workflows: &Path,
    provider: &OidcProvider,
    keys: Arc<SecretKeys>,
) -> anyhow::Result<DemoConsole> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a local port for the console")?;
    let url = format!("http://{}", listener.local_addr()?);
    let client = provider
        .register_client_for("hubwright console", &format!("{url}/sign-in/callback"))
        .await
        .context("registering the console at oidc-provider")?;
    let workflows = workflows.display().to_string();
    // `=`: a generated client id may start with `-`.
    let flags = [
        "--api".to_owned(),
        format!("--workflows={workflows}"),
        format!("--oidc-issuer={}", provider.issuer()),
        format!("--oidc-audience={}", client.id),
        format!("--console-client-id={}", client.id),
        format!("--console-client-secret={}", client.secret),
        format!("--public-url={url}"),
    ];
    let args = serve::parse_args(flags.iter().map(String::as_str))
        .map_err(|err| anyhow::anyhow!("the console's serve flags: {err}"))?;
    let (stop, mut stopped) = watch::channel(false);
    let injected = serve::Injected {
        listener: Some(listener),
        keys: Some(keys),
        ..serve::Injected::default()
    };
    let database_url = database_url.to_owned();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(err) = serve::run_until(
            &database_url,
            args,
            Extensions::default(),
            injected,
            shutdown,
        )
        .await
        {
            tracing::error!(error = %format!("{err:#}"), "the demo's console stopped");
        }
    });
    Ok(DemoConsole { url, stop })
}
