//! The clients admin API: list, create, read, update, delete, read the secret.

use axum::http::header::LOCATION;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::REALM;
use super::clients::{fresh_id, merge, new_client, with_access};
use super::form::parse_form;
use super::routes::{cannot_parse, error, ok_json};
use super::server::Store;

/// `/admin/realms/{realm}/{rest...}` for an authorised caller.
pub(super) fn admin(
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

/// Whether a client other than the one at `except` has `client_id`.
fn taken(store: &Store, client_id: &str, except: Option<usize>) -> bool {
    store.clients.iter().enumerate().any(|(i, c)| {
        Some(i) != except && c.get("clientId").and_then(Value::as_str) == Some(client_id)
    })
}
