//! Keycloak for tests: a real one when `KEYCLOAK_URL` is set, else
//! [`FakeKeycloak`], an in-process stand-in for the part of Keycloak's API
//! hubwright's Keycloak driver uses.
//!
//! # Where the shapes come from
//!
//! Keycloak 26 (26.x, Quarkus distribution, no `/auth` prefix). Paths,
//! statuses and bodies follow Keycloak's admin REST API documentation and
//! source (`ClientsResource`, `ClientResource`, `KeycloakErrorHandler`,
//! `ErrorResponse`, `ClientIdAndSecretAuthenticator` in keycloak/keycloak),
//! checked against responses recorded from `quay.io/keycloak/keycloak:26`
//! (`start-dev`) in ekalinin/gloak's conformance goldens
//! (`internal/conformance/testdata/golden/admin/clients/*.http`,
//! `.../oidc/token/*.http`):
//!
//! | Request | Answer |
//! |---|---|
//! | `POST /realms/{r}/protocol/openid-connect/token`, good client credentials | 200 `{"access_token","expires_in","refresh_expires_in":0,"token_type":"Bearer","not-before-policy":0,"scope"}`, `Cache-Control: no-store` |
//! | the same, wrong secret | 401 `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}` |
//! | the same, unknown client | 401 `{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}` |
//! | the same, client without a service account | 400 `{"error":"unauthorized_client","error_description":"Client not enabled to retrieve service account"}` |
//! | unknown realm on `/realms/...` | 404 `{"error":"Realm does not exist"}` |
//! | `/admin/...` without a valid bearer token | 401 `{"error":"HTTP 401 Unauthorized"}` |
//! | `/admin/...` with a token lacking the roles | 403 `{"error":"HTTP 403 Forbidden"}` |
//! | unknown realm on `/admin/realms/...` | 404 `{"error":"Realm not found."}` |
//! | `GET /admin/realms/{r}/clients?clientId=x` | 200, a list of 0 or 1 `ClientRepresentation` (exact match), `secret` included |
//! | `POST /admin/realms/{r}/clients` | 201, empty body, `Location: {base}/admin/realms/{r}/clients/{uuid}` |
//! | the same `clientId` again | 409 `{"errorMessage":"Client x already exists"}` |
//! | `GET`, `PUT`, `DELETE /admin/realms/{r}/clients/{uuid}` | 200 representation, 204, 204 |
//! | `PUT` changing `clientId` to a taken one | 409 `{"errorMessage":"Client already exists"}` |
//! | `GET .../clients/{uuid}/client-secret` | 200 `{"type":"secret","value":"..."}`; `{"type":"secret"}` for a public client |
//! | any `.../clients/{unknown uuid}[/...]` | 404 `{"error":"Could not find client"}` |
//! | unparseable JSON body | 400 `{"error":"unknown_error","error_description":"Cannot parse the JSON"}` |
//!
//! `PUT` changes only the fields it is sent, and merges `attributes` (a null
//! value removes one), as Keycloak's `RepresentationToModel.updateClient` does.
//!
//! # What it does not do
//!
//! One realm; no other admin resources; no redirect-URI or other validation
//! (Keycloak answers 400 for e.g. a `javascript:` redirect URI); tokens never
//! expire (Keycloak's live 60 s in `master`, 300 s in a new realm) and are
//! opaque, not JWTs; no roles beyond "the admin client may do everything";
//! security headers and `Content-Length` as axum sends them. A client created
//! without `clientId` is stored as such (Keycloak's answer is not recorded).
//!
//! # Faults and the request log
//!
//! [`Fault`]: the next N requests whose path starts with a prefix (and whose
//! method matches, if given) answer a status with Keycloak's body for it, a
//! given body, or hang until the client gives up. [`FakeKeycloak::requests`]
//! lists every request with the status answered (0: hung).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The fake's realm.
pub const REALM: &str = "hubwright";
/// The fake's admin client (service account with every admin right).
pub const ADMIN_CLIENT_ID: &str = "hubwright-admin";
/// Its secret.
pub const ADMIN_CLIENT_SECRET: &str = "fake-admin-secret-5c1d0f";

/// What a matching [`Fault`] does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer this status with `body`, or Keycloak's body for the status when
    /// `None` (401, 403, 404 and 500 as Keycloak words them; 502, 503 and 504
    /// with no body, as the proxy in front of a down Keycloak answers).
    Status {
        /// The HTTP status.
        code: u16,
        /// The JSON body; Keycloak's own for `code` when `None`.
        body: Option<Value>,
    },
    /// Never answer.
    Hang,
}

/// One fault rule: the next `times` matching requests get `action`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Requests whose path starts with this.
    pub path_prefix: String,
    /// Only this method (`GET`, `POST`, ...); any when `None`.
    pub method: Option<String>,
    /// How many requests it applies to before it retires.
    pub times: u32,
    /// What it does.
    pub action: FaultAction,
}

impl Fault {
    /// The next request under `path_prefix` answers `code` (Keycloak's body).
    pub fn status(path_prefix: impl Into<String>, code: u16) -> Self {
        Fault {
            path_prefix: path_prefix.into(),
            method: None,
            times: 1,
            action: FaultAction::Status { code, body: None },
        }
    }

    /// The next request under `path_prefix` never gets an answer.
    pub fn hang(path_prefix: impl Into<String>) -> Self {
        Fault {
            path_prefix: path_prefix.into(),
            method: None,
            times: 1,
            action: FaultAction::Hang,
        }
    }

    /// Applies to the next `times` requests.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Applies to `method` only.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Answers `body` (a status fault only).
    pub fn body(mut self, body: Value) -> Self {
        if let FaultAction::Status { body: slot, .. } = &mut self.action {
            *slot = Some(body);
        }
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && path.starts_with(&self.path_prefix)
            && self.method.as_deref().is_none_or(|m| m == method.as_str())
    }
}

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
struct Store {
    base_url: String,
    /// Client representations in creation order, `secret` included.
    clients: Vec<Map<String, Value>>,
    /// Access token → the clientId it was issued to.
    tokens: HashMap<String, String>,
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

/// The Keycloak a test talks to: a real one from `KEYCLOAK_URL`,
/// `KEYCLOAK_REALM`, `KEYCLOAK_CLIENT_ID` and `KEYCLOAK_CLIENT_SECRET` (a
/// confidential client of that realm whose service account has the
/// realm-management roles manage-clients and view-clients), else a started
/// [`FakeKeycloak`].
#[derive(Debug)]
pub struct KeycloakTarget {
    /// Keycloak's base URL.
    pub base_url: String,
    /// The realm.
    pub realm: String,
    /// The admin client's id.
    pub admin_client_id: String,
    /// The admin client's secret.
    pub admin_client_secret: String,
    fake: Option<FakeKeycloak>,
}

impl KeycloakTarget {
    /// The real Keycloak `KEYCLOAK_URL` names, or a fresh fake.
    pub async fn from_env_or_fake() -> std::io::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match var("KEYCLOAK_URL") {
            Some(base_url) => {
                let required = |name: &str| {
                    var(name).ok_or_else(|| {
                        std::io::Error::other(format!("KEYCLOAK_URL is set, so {name} must be too"))
                    })
                };
                Ok(KeycloakTarget {
                    base_url,
                    realm: required("KEYCLOAK_REALM")?,
                    admin_client_id: required("KEYCLOAK_CLIENT_ID")?,
                    admin_client_secret: required("KEYCLOAK_CLIENT_SECRET")?,
                    fake: None,
                })
            }
            None => Self::fake_only().await,
        }
    }

    /// Always a fresh fake, whatever the environment says.
    pub async fn fake_only() -> std::io::Result<Self> {
        let fake = FakeKeycloak::start().await?;
        Ok(KeycloakTarget {
            base_url: fake.base_url().to_owned(),
            realm: REALM.to_owned(),
            admin_client_id: ADMIN_CLIENT_ID.to_owned(),
            admin_client_secret: ADMIN_CLIENT_SECRET.to_owned(),
            fake: Some(fake),
        })
    }

    /// The fake, for faults and the request log; `None` on a real Keycloak.
    pub fn fake(&self) -> Option<&FakeKeycloak> {
        self.fake.as_ref()
    }

    /// Whether this is a real Keycloak.
    pub fn is_real(&self) -> bool {
        self.fake.is_none()
    }

    /// A clientId no other test run uses: `hubwright-test-{label}-{uuid}`.
    pub fn unique_client_id(&self, label: &str) -> String {
        format!("hubwright-test-{label}-{}", uuid::Uuid::now_v7().simple())
    }

    /// `/admin/realms/{realm}/clients`, the prefix of every client path.
    pub fn clients_path(&self) -> String {
        format!("/admin/realms/{}/clients", self.realm)
    }

    /// `/realms/{realm}/protocol/openid-connect/token`.
    pub fn token_path(&self) -> String {
        format!("/realms/{}/protocol/openid-connect/token", self.realm)
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

fn fault_response(code: u16, body: Option<Value>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.or_else(|| match code {
        401 => Some(json!({ "error": "HTTP 401 Unauthorized" })),
        403 => Some(json!({ "error": "HTTP 403 Forbidden" })),
        404 => Some(json!({ "error": "HTTP 404 Not Found" })),
        500 => Some(json!({ "error": "unknown_error" })),
        _ => None,
    });
    match body {
        Some(body) => error(status, body),
        None => status.into_response(),
    }
}

fn error(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok_json(body: Value) -> Response {
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "application/json;charset=UTF-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn route(
    store: &mut Store,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["realms", realm, rest @ ..] => {
            if *realm != REALM {
                return error(
                    StatusCode::NOT_FOUND,
                    json!({ "error": "Realm does not exist" }),
                );
            }
            match (method, rest) {
                (&Method::POST, ["protocol", "openid-connect", "token"]) => {
                    token(store, headers, body)
                }
                _ => error(
                    StatusCode::NOT_FOUND,
                    json!({ "error": "HTTP 404 Not Found" }),
                ),
            }
        }
        ["admin", "realms", realm, rest @ ..] => {
            let caller = bearer(headers).and_then(|token| store.tokens.get(token));
            match caller {
                None => error(
                    StatusCode::UNAUTHORIZED,
                    json!({ "error": "HTTP 401 Unauthorized" }),
                ),
                Some(caller) if caller != ADMIN_CLIENT_ID => error(
                    StatusCode::FORBIDDEN,
                    json!({ "error": "HTTP 403 Forbidden" }),
                ),
                Some(_) if *realm != REALM => error(
                    StatusCode::NOT_FOUND,
                    json!({ "error": "Realm not found." }),
                ),
                Some(_) => admin(store, method, rest, query, body),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            json!({ "error": "HTTP 404 Not Found" }),
        ),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The token endpoint: the client credentials grant only.
fn token(store: &mut Store, headers: &HeaderMap, body: &[u8]) -> Response {
    let form = parse_form(body);
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64_decode(v.trim()))
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| {
            let (id, secret) = v.split_once(':')?;
            // Keycloak reads Basic credentials as RFC 6749 §2.3.1 says: form-encoded.
            Some((form_decode(id), form_decode(secret)))
        });
    let credentials = basic.or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ))
    });
    let Some(grant_type) = form.get("grant_type") else {
        return error(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_request", "error_description": "Missing form parameter: grant_type" }),
        );
    };
    let invalid = |code: &str| {
        error(
            StatusCode::UNAUTHORIZED,
            json!({ "error": code, "error_description": "Invalid client or Invalid client credentials" }),
        )
    };
    let Some((client_id, secret)) = credentials else {
        return invalid("invalid_client");
    };
    let Some(client) = store
        .clients
        .iter()
        .find(|c| c.get("clientId").and_then(Value::as_str) == Some(client_id.as_str()))
    else {
        return invalid("invalid_client");
    };
    if client.get("secret").and_then(Value::as_str) != Some(secret.as_str()) {
        return invalid("unauthorized_client");
    }
    if grant_type != "client_credentials" {
        return error(
            StatusCode::BAD_REQUEST,
            json!({ "error": "unsupported_grant_type", "error_description": "Unsupported grant_type" }),
        );
    }
    if client.get("serviceAccountsEnabled") != Some(&json!(true)) {
        return error(
            StatusCode::BAD_REQUEST,
            json!({ "error": "unauthorized_client", "error_description": "Client not enabled to retrieve service account" }),
        );
    }
    let access_token = format!("fake.{}.{}", fresh_id(), fresh_secret());
    store.tokens.insert(access_token.clone(), client_id);
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
            (PRAGMA, "no-cache"),
        ],
        json!({
            "access_token": access_token,
            "expires_in": 300,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        })
        .to_string(),
    )
        .into_response()
}

/// `/admin/realms/{realm}/{rest...}` for an authorised caller.
fn admin(
    store: &mut Store,
    method: &Method,
    rest: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            json!({ "error": "HTTP 404 Not Found" }),
        )
    };
    let (["clients"] | ["clients", ..]) = rest else {
        return not_found();
    };
    let Some(id) = rest.get(1) else {
        return match *method {
            Method::GET => list(store, query),
            Method::POST => create(store, body),
            _ => not_found(),
        };
    };
    let Some(index) = store
        .clients
        .iter()
        .position(|c| c.get("id").and_then(Value::as_str) == Some(id))
    else {
        return error(
            StatusCode::NOT_FOUND,
            json!({ "error": "Could not find client" }),
        );
    };
    match (method, &rest[2..]) {
        (&Method::GET, []) => ok_json(with_access(&store.clients[index])),
        (&Method::PUT, []) => update(store, index, body),
        (&Method::DELETE, []) => {
            store.clients.remove(index);
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::GET, ["client-secret"]) => {
            let mut credential = json!({ "type": "secret" });
            if let Some(secret) = store.clients[index].get("secret") {
                credential["value"] = secret.clone();
            }
            ok_json(credential)
        }
        _ => not_found(),
    }
}

fn list(store: &Store, query: Option<&str>) -> Response {
    let query = parse_form(query.unwrap_or_default().as_bytes());
    let wanted = query.get("clientId").filter(|id| !id.trim().is_empty());
    let clients: Vec<Value> = store
        .clients
        .iter()
        .filter(|c| wanted.is_none_or(|id| c.get("clientId").and_then(Value::as_str) == Some(id)))
        .map(with_access)
        .collect();
    ok_json(Value::Array(clients))
}

fn create(store: &mut Store, body: &[u8]) -> Response {
    let Ok(representation @ Value::Object(_)) = serde_json::from_slice::<Value>(body) else {
        return cannot_parse();
    };
    let client_id = representation.get("clientId").and_then(Value::as_str);
    if let Some(client_id) = client_id
        && taken(store, client_id, None)
    {
        return error(
            StatusCode::CONFLICT,
            json!({ "errorMessage": format!("Client {client_id} already exists") }),
        );
    }
    let id = fresh_id();
    let location = format!("{}/admin/realms/{REALM}/clients/{id}", store.base_url);
    store.clients.push(new_client(&representation, id));
    (StatusCode::CREATED, [(LOCATION, location)]).into_response()
}

fn update(store: &mut Store, index: usize, body: &[u8]) -> Response {
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(body) else {
        return cannot_parse();
    };
    if let Some(client_id) = changes.get("clientId").and_then(Value::as_str)
        && taken(store, client_id, Some(index))
    {
        return error(
            StatusCode::CONFLICT,
            json!({ "errorMessage": "Client already exists" }),
        );
    }
    merge(&mut store.clients[index], &changes);
    StatusCode::NO_CONTENT.into_response()
}

fn cannot_parse() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        json!({ "error": "unknown_error", "error_description": "Cannot parse the JSON" }),
    )
}

/// Whether a client other than the one at `except` has `client_id`.
fn taken(store: &Store, client_id: &str, except: Option<usize>) -> bool {
    store.clients.iter().enumerate().any(|(i, c)| {
        Some(i) != except && c.get("clientId").and_then(Value::as_str) == Some(client_id)
    })
}

/// A new client: Keycloak 26's defaults under what was sent.
fn new_client(representation: &Value, id: String) -> Map<String, Value> {
    let mut client = match json!({
        "id": id,
        "surrogateAuthRequired": false,
        "enabled": true,
        "alwaysDisplayInConsole": false,
        "clientAuthenticatorType": "client-secret",
        "redirectUris": [],
        "webOrigins": [],
        "notBefore": 0,
        "bearerOnly": false,
        "consentRequired": false,
        "standardFlowEnabled": true,
        "implicitFlowEnabled": false,
        "directAccessGrantsEnabled": false,
        "serviceAccountsEnabled": false,
        "publicClient": false,
        "frontchannelLogout": false,
        "protocol": "openid-connect",
        "attributes": { "realm_client": "false" },
        "authenticationFlowBindingOverrides": {},
        "fullScopeAllowed": true,
        "nodeReRegistrationTimeout": -1,
        "defaultClientScopes": ["acr", "basic", "email", "profile", "roles", "web-origins"],
        "optionalClientScopes": ["address", "microprofile-jwt", "offline_access", "organization", "phone"],
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Value::Object(sent) = representation {
        let mut sent = sent.clone();
        sent.remove("id");
        sent.remove("access");
        merge(&mut client, &sent);
    }
    if client.get("publicClient") == Some(&json!(true)) {
        client.remove("secret");
    } else {
        if !client.get("secret").is_some_and(Value::is_string) {
            client.insert("secret".into(), json!(fresh_secret()));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if let Some(Value::Object(attributes)) = client.get_mut("attributes") {
            attributes.insert("client.secret.creation.time".into(), json!(now.to_string()));
        }
    }
    client
}

/// Keycloak's update: the fields sent replace, `attributes` merge (a null
/// value removes one), `id` never changes.
fn merge(client: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for (key, value) in changes {
        match (key.as_str(), value) {
            ("id" | "access", _) => {}
            ("attributes", Value::Object(sent)) => {
                let attributes = client
                    .entry("attributes")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(attributes) = attributes {
                    for (name, value) in sent {
                        if value.is_null() {
                            attributes.remove(name);
                        } else {
                            attributes.insert(name.clone(), value.clone());
                        }
                    }
                }
            }
            (_, Value::Null) => {}
            _ => {
                client.insert(key.clone(), value.clone());
            }
        }
    }
}

fn with_access(client: &Map<String, Value>) -> Value {
    let mut client = client.clone();
    client.insert(
        "access".into(),
        json!({ "view": true, "configure": true, "manage": true }),
    );
    Value::Object(client)
}

/// A UUID-shaped id (Keycloak's are UUIDs).
fn fresh_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// 32 alphanumerics, the shape of Keycloak's generated secrets.
fn fresh_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = Vec::with_capacity(36);
    while random.len() < 32 {
        // The last six bytes of a UUIDv7 are random.
        random.extend_from_slice(&uuid::Uuid::now_v7().as_bytes()[10..]);
    }
    random
        .iter()
        .take(32)
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}
