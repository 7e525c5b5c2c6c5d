//! One module per subcommand.

pub mod admin;
pub mod approval;
pub mod audit;
pub mod bench;
pub mod config;
pub mod demo;
pub mod demo_cluster;
#[cfg(feature = "sandbox")]
mod demo_console;
mod demo_hub;
#[cfg(feature = "sandbox")]
pub mod demo_sandbox;
pub mod env;
pub mod pool;
pub mod run;
pub mod serve;
pub mod template;
pub mod token;
pub mod workflows;

use std::process::ExitCode;

use anyhow::Context;
use hubwright_state::Store;
use std::sync::Arc;

use hubwright_state::clusters::Clusters;
use hubwright_state::secrets::SecretKeys;
use hubwright_worker::Registry;
use hubwright_worker::kubernetes::ClusterClients;

use crate::Extensions;

/// `hubwright admin migrate`: creates the database when it does not exist yet,
/// then applies the migrations.
pub async fn migrate(url: &str) -> anyhow::Result<ExitCode> {
    let store = match Store::connect(url, 2).await {
        Ok(store) => store,
        Err(err) if err.is_missing_database() => {
            create_database(url).await?;
            connect(url, 2).await?
        }
        Err(err) => return Err(connect_error(url, err)),
    };
    store.migrate().await.context("applying migrations")?;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// Creates the missing database, or says exactly how to.
async fn create_database(url: &str) -> anyhow::Result<()> {
    match Store::create_database_if_missing(url).await {
        Ok(created) => {
            if created {
                println!("created database {}", redact(url));
            }
            Ok(())
        }
        Err(err) => {
            let command = hubwright_state::store::database::create_database_command(url)
                .unwrap_or_else(|| "CREATE DATABASE (see your server's documentation)".to_owned());
            anyhow::bail!(
                "the database at {} does not exist, and creating it failed: {err}\n\
                 Create it as a user who may (a superuser), then run `hubwright admin migrate` again:\n  {command}",
                redact(url)
            )
        }
    }
}

/// Connects, naming the database in the error.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
    Store::connect(url, max_connections)
        .await
        .map_err(|err| connect_error(url, err))
}

/// The database named, and what to do when it does not exist.
fn connect_error(url: &str, err: hubwright_state::Error) -> anyhow::Error {
    let hint = if err.is_missing_database() {
        " (`hubwright admin migrate` creates it)"
    } else {
        ""
    };
    anyhow::Error::new(err).context(format!(
        "cannot connect to the database at {}{hint}",
        redact(url)
    ))
}

/// The step kinds this binary executes: the built-ins, the Kubernetes and
/// identity-provider kinds over `clusters` (sealing with `keys`), the Helm
/// kinds (charts and values templates under `workflows`), plus what `ext`
/// registers.
pub fn registry(
    ext: Extensions,
    clusters: &Clusters,
    keys: Option<Arc<SecretKeys>>,
    workflows: &std::path::Path,
) -> Registry {
    let mut registry = Registry::with_builtins();
    let clients = ClusterClients::new(clusters.clone());
    hubwright_worker::kubernetes::register(&mut registry, &clients);
    hubwright_worker::hub::register(&mut registry, keys.clone());
    hubwright_worker::idp::register(&mut registry, &clients, keys);
    hubwright_worker::helm::register(&mut registry, &clients, workflows);
    (ext.register_steps)(&mut registry);
    registry
}

/// The clusters file, or the one `default` cluster reached like kubectl would.
pub fn clusters(path: Option<&std::path::Path>) -> anyhow::Result<Clusters> {
    Ok(match path {
        Some(path) => Clusters::load(path)?,
        None => Clusters::default(),
    })
}

/// A URL fit for messages: the password replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
