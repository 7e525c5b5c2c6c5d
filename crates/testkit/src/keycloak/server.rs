//! The running stand-in: its memory, its server task, and the handler that
//! applies faults, routes and logs every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::clients::{fresh_id, new_client};
use super::fault::{Fault, FaultAction, fault_response};
use super::routes::route;
use super::{ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET};

/// One request the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, if any.
    pub query: Option<String>,
    /// The status answered; 0 when the request was left hanging.
    pub status: u16,
}

/// The stand-in's memory.
#[derive(Debug)]
pub(super) struct Store {
    pub(super) base_url: String,
    /// Client representations in creation order, `secret` included.
    pub(super) clients: Vec<Map<String, Value>>,
    /// Access token → the clientId it was issued to.
    pub(super) tokens: HashMap<String, String>,
    faults: Vec<Fault>,
    log: Vec<RequestRecord>,
}

type Shared = Arc<Mutex<Store>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Store> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running stand-in on `127.0.0.1`. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeKeycloak {
    base_url: String,
    shared: Shared,
    task: JoinHandle<()>,
}

impl FakeKeycloak {
    /// Starts the stand-in with realm [`REALM`] holding the admin client
    /// [`ADMIN_CLIENT_ID`] / [`ADMIN_CLIENT_SECRET`].
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let mut admin = new_client(
            &json!({
                "clientId": ADMIN_CLIENT_ID,
                "secret": ADMIN_CLIENT_SECRET,
                "serviceAccountsEnabled": true,
                "standardFlowEnabled": false,
            }),
            fresh_id(),
        );
        admin.insert("name".into(), json!("hubwright admin"));
        let shared: Shared = Arc::new(Mutex::new(Store {
            base_url: base_url.clone(),
            clients: vec![admin],
            tokens: HashMap::new(),
            faults: Vec::new(),
            log: Vec::new(),
        }));
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(FakeKeycloak {
            base_url,
            shared,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Adds a fault rule.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared).faults.push(fault);
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared).log.clone()
    }

    /// The representation of client `client_id` (secret included), if any.
    pub fn client(&self, client_id: &str) -> Option<Value> {
        lock(&self.shared)
            .clients
            .iter()
            .find(|c| c.get("clientId").and_then(Value::as_str) == Some(client_id))
            .map(|c| Value::Object(c.clone()))
    }

    /// The clientIds of every client, the admin client included.
    pub fn client_ids(&self) -> Vec<String> {
        lock(&self.shared)
            .clients
            .iter()
            .filter_map(|c| c.get("clientId").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// Adds a client as if an administrator had created it (Keycloak's
    /// defaults under `representation`) and returns its id.
    pub fn insert_client(&self, representation: Value) -> String {
        let id = fresh_id();
        lock(&self.shared)
            .clients
            .push(new_client(&representation, id.clone()));
        id
    }

    /// Forgets every issued token, as a restarted Keycloak's sessions are gone.
    pub fn revoke_tokens(&self) {
        lock(&self.shared).tokens.clear();
    }
}

impl Drop for FakeKeycloak {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().map(str::to_owned);
    let record = |status: u16| RequestRecord {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        status,
    };
    let response = {
        let mut store = lock(&shared);
        let fault = store
            .faults
            .iter_mut()
            .find(|f| f.matches(&method, &path))
            .map(|f| {
                f.times -= 1;
                f.action.clone()
            });
        store.faults.retain(|f| f.times > 0);
        match fault {
            Some(FaultAction::Hang) => {
                store.log.push(record(0));
                None
            }
            Some(FaultAction::Status { code, body }) => Some(fault_response(code, body)),
            None => Some(route(
                &mut store,
                &method,
                &path,
                query.as_deref(),
                &headers,
                &body,
            )),
        }
    };
    let Some(response) = response else {
        return std::future::pending().await;
    };
    lock(&shared).log.push(record(response.status().as_u16()));
    response
}
