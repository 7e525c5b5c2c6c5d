//! A TCP proxy in front of Postgres that a test can cut, to play a database
//! outage without stopping the server every other test shares.
//!
//! While cut, live connections are reset and new ones are accepted and reset
//! at once: a client sees its statements fail and every new connection fail
//! right away, which is what a failover looks like from a worker (the old
//! primary's sockets break; the endpoint refuses until the new one is up).
//! [`TcpProxy::restore`] lets new connections through again; the ones cut stay
//! cut, as the server behind them would have forgotten them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The proxy; dropping it stops accepting and resets every connection.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    /// `true` while cut. Each connection watches it and resets itself when it
    /// turns true.
    cut: watch::Sender<bool>,
    /// Connections refused while cut: a test can wait for a client to have
    /// tried (and failed) before it restores.
    refused: AtomicU64,
}

impl TcpProxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy's port");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            cut: watch::Sender::new(false),
            refused: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept(listener, Arc::clone(&shared)));
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// A proxy in front of the server `database_url` names, and that URL
    /// rewritten to go through the proxy (same user, password, database).
    pub async fn for_database(database_url: &str) -> (Self, String) {
        let mut url = reqwest::Url::parse(database_url).expect("a database URL");
        let host = url
            .host_str()
            .expect("a database URL with a host")
            .to_owned();
        let port = url.port().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("resolve the database host")
            .next()
            .expect("the database host has an address");
        let proxy = Self::start(upstream).await;
        url.set_host(Some("127.0.0.1"))
            .expect("a URL that takes a host");
        url.set_port(Some(proxy.addr.port()))
            .expect("a URL that takes a port");
        (proxy, url.to_string())
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resets every live connection and every new one until [`Self::restore`].
    pub fn cut(&self) {
        self.shared.cut.send_replace(true);
    }

    /// Lets new connections through again.
    pub fn restore(&self) {
        self.shared.cut.send_replace(false);
    }

    /// Cuts now and restores after `outage`, without holding up the caller:
    /// the outage lasts a set time however busy the test is meanwhile.
    pub fn cut_for(&self, outage: Duration) -> JoinHandle<()> {
        self.cut();
        let cut = self.shared.cut.clone();
        tokio::spawn(async move {
            tokio::time::sleep(outage).await;
            cut.send_replace(false);
        })
    }

    /// Connections reset on arrival because the proxy was cut.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Connection tasks end when they see the cut.
        self.shared.cut.send_replace(true);
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if *shared.cut.borrow() {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            reset(client);
            continue;
        }
        tokio::spawn(forward(client, Arc::clone(&shared)));
    }
}

async fn forward(mut client: TcpStream, shared: Arc<Shared>) {
    let mut cut = shared.cut.subscribe();
    let Ok(mut server) = TcpStream::connect(shared.upstream).await else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|cut| *cut) => {
            reset(client);
            reset(server);
        }
    }
}

/// Closes with a RST rather than a FIN: the peer learns at once that the
/// connection is gone, as it does when a server process dies.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
