//! Client representations as Keycloak 26 stores and returns them: its
//! defaults, its update merge, and the shapes of its ids and secrets.

use serde_json::{Map, Value, json};

/// A new client: Keycloak 26's defaults under what was sent.
pub(super) fn new_client(representation: &Value, id: String) -> Map<String, Value> {
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
pub(super) fn merge(client: &mut Map<String, Value>, changes: &Map<String, Value>) {
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

/// The representation as the admin API returns it, with the caller's access.
pub(super) fn with_access(client: &Map<String, Value>) -> Value {
    let mut client = client.clone();
    client.insert(
        "access".into(),
        json!({ "view": true, "configure": true, "manage": true }),
    );
    Value::Object(client)
}

/// A UUID-shaped id (Keycloak's are UUIDs).
pub(super) fn fresh_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// 32 alphanumerics, the shape of Keycloak's generated secrets.
pub(super) fn fresh_secret() -> String {
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
