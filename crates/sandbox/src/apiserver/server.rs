//! The in-process server: listener, per-connection tasks (TLS or plain HTTP
//! on the same port), the namespace controller, the kubeconfig, and the handle
//! tests hold.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::faults::{Fault, RequestRecord};
use super::options::Options;
use super::routes::{self, Shared};
use super::store::Store;
use super::tls;

/// The name of the kubeconfig's cluster, user and context.
pub const CONTEXT: &str = "stand-in";

/// Error building a `kube::Client` from a kubeconfig.
pub type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// A running stand-in. Dropping it stops the server, closes every connection
/// and removes the kubeconfig directory.
#[derive(Debug)]
pub struct KubeApiServer {
    addr: SocketAddr,
    url: String,
    https_url: String,
    dir: PathBuf,
    kubeconfig: PathBuf,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl KubeApiServer {
    /// Starts a stand-in on `127.0.0.1:0` with [`Options::from_env`].
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(Options::from_env()?).await
    }

    /// Starts a stand-in with `options`.
    pub async fn start_with(options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let https_url = format!("https://{addr}");
        let acceptor = tls::acceptor()?;
        let token = format!("stand-in-{}", uuid::Uuid::now_v7().simple());
        let store = Arc::new(Store::new(options.history_limit));
        let shared = Arc::new(Shared {
            store: store.clone(),
            token: token.clone(),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            bookmark_interval: options.bookmark_interval,
            address: addr.to_string(),
            forwards: Mutex::new(Default::default()),
        });
        let dir =
            std::env::temp_dir().join(format!("hubwright-kube-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&https_url, &token))?;

        let accept = tokio::spawn(accept_loop(listener, acceptor, shared.clone()));
        store.create_builtin_objects();
        let interval = options.namespace_controller_interval;
        let delay = options.namespace_termination_delay;
        let controller = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = store.woken() => {}
                }
                store.sweep_namespaces(delay);
                store.publish_namespace_defaults(tls::CA_PEM);
            }
        });
        Ok(KubeApiServer {
            addr,
            url,
            https_url,
            dir,
            kubeconfig,
            shared,
            tasks: vec![accept, controller],
        })
    }

    /// `http://127.0.0.1:PORT`: the same server without TLS, for raw requests
    /// from tests (the real API server has no plain port).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `https://127.0.0.1:PORT`, the kubeconfig's server: the certificate is
    /// signed by [`KubeApiServer::ca_pem`] and names `127.0.0.1` and `localhost`.
    pub fn https_url(&self) -> &str {
        &self.https_url
    }

    /// The CA (PEM) that signed the stand-in's serving certificate.
    pub fn ca_pem(&self) -> &'static str {
        tls::CA_PEM
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig file (cluster, user and context named [`CONTEXT`];
    /// `https` with the test CA as `certificate-authority-data`, because
    /// client-go, as in helm and kubectl, sends the token only over TLS).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig context to use: [`CONTEXT`].
    pub fn context(&self) -> &str {
        CONTEXT
    }

    /// The bearer token the kubeconfig carries.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// A `kube::Client` built from the kubeconfig file through kube's config loader.
    pub async fn client(&self) -> Result<kube::Client, ClientError> {
        client_from(&self.kubeconfig, Some(CONTEXT)).await
    }

    /// Adds a fault rule (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(fault);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `port` of the pod `namespace/pod` lead to `to` on this machine,
    /// for `pods/{name}/portforward` (the stand-in runs no pods; see
    /// [`super::portforward`]'s module docs).
    pub fn forward_pod_port(&self, namespace: &str, pod: &str, port: u16, to: SocketAddr) {
        self.shared
            .forwards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((namespace.to_owned(), pod.to_owned(), port), to);
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Drops the watch history, as etcd compaction does: a watch from any
    /// resourceVersion before now gets 410 Expired.
    pub fn compact(&self) {
        self.shared.store.compact();
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kubeconfig_yaml(url: &str, token: &str) -> String {
    let ca = super::normalize::base64(tls::CA_PEM.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n\
         users:\n- name: {CONTEXT}\n  user:\n    token: {token}\n\
         contexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n\
         current-context: {CONTEXT}\n"
    )
}

/// A client from the kubeconfig at `path`, with `context` or the current one.
pub async fn client_from(path: &Path, context: Option<&str>) -> Result<kube::Client, ClientError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config = config_from_kubeconfig(kubeconfig, context).await?;
    Ok(kube::Client::try_from(config)?)
}

/// A client config from a loaded kubeconfig, with `context` or the current one.
pub async fn config_from_kubeconfig(
    kubeconfig: kube::config::Kubeconfig,
    context: Option<&str>,
) -> Result<kube::Config, ClientError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?)
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    // Owned here so that aborting this task also aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                conns.spawn(tls_or_plain(stream, acceptor.clone(), shared.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Serves TLS when the client starts with a handshake record, else plain HTTP.
async fn tls_or_plain(stream: tokio::net::TcpStream, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == tls::HANDSHAKE => {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_connection(tls, shared).await;
            }
        }
        Ok(_) => serve_connection(stream, shared).await,
        Err(_) => {}
    }
}

async fn serve_connection<I>(stream: I, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let service = {
        let kill = kill.clone();
        service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let shared = shared.clone();
            let kill = kill.clone();
            async move { Ok::<_, Infallible>(routes::handle(shared, kill, req.map(Body::new)).await) }
        })
    };
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
    }
}
