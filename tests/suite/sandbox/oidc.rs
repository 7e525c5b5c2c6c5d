//! The testkit's OpenID provider: the launcher, and the provider behaviour the
//! `idp-client` step relies on (RFC 7591 registration, RFC 7592 management,
//! development logins), observed with plain HTTP.

use std::time::Duration;

use hubwright_sandbox::oidc::{Fault, OidcProvider, Options, RequestRecord};
use reqwest::StatusCode;
use serde_json::{Value, json};

const IAT: &str = "test-initial-access-token";

async fn provider() -> OidcProvider {
    OidcProvider::start(Options::with_initial_access_token(IAT))
        .await
        .unwrap()
}

fn hub_metadata(redirect_uris: &[&str]) -> Value {
    json!({
        "client_name": "hub alpha",
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    })
}

const LOCAL_CALLBACK: &str = "http://127.0.0.1:8000/hub/oauth_callback";
const PUBLIC_CALLBACK: &str = "https://hub.example.org/hub/oauth_callback";

/// POSTs `metadata` to the registration endpoint with `token` as bearer.
async fn register(op: &OidcProvider, token: Option<&str>, metadata: &Value) -> (StatusCode, Value) {
    let mut request = hubwright_http::client()
        .post(op.registration_endpoint())
        .json(metadata);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn registered(op: &OidcProvider) -> Value {
    let (status, body) = register(op, Some(IAT), &hub_metadata(&[LOCAL_CALLBACK])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

#[tokio::test]
async fn discovery_names_the_registration_endpoint_and_what_a_hub_client_uses() {
    let op = provider().await;
    let doc: Value = hubwright_http::client()
        .get(op.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], op.issuer());
    assert!(op.issuer().starts_with("http://127.0.0.1:"));
    assert_eq!(doc["registration_endpoint"], op.registration_endpoint());
    let has = |field: &str, value: &str| {
        doc[field]
            .as_array()
            .is_some_and(|values| values.iter().any(|v| v == value))
    };
    assert!(has(
        "token_endpoint_auth_methods_supported",
        "client_secret_basic"
    ));
    assert!(has("grant_types_supported", "authorization_code"));
    assert!(has("grant_types_supported", "refresh_token"));
    assert!(has("response_types_supported", "code"));
    assert!(has("scopes_supported", "openid"));
    assert_eq!(op.initial_access_token(), Some(IAT));
}

#[tokio::test]
async fn registration_returns_credentials_and_the_management_uri() {
    let op = provider().await;
    let metadata = hub_metadata(&[LOCAL_CALLBACK, PUBLIC_CALLBACK]);
    let (status, client) = register(&op, Some(IAT), &metadata).await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let id = client["client_id"].as_str().unwrap();
    assert!(!client["client_secret"].as_str().unwrap().is_empty());
    assert!(
        !client["registration_access_token"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        client["registration_client_uri"],
        format!("{}/{id}", op.registration_endpoint())
    );
    assert_eq!(
        client["redirect_uris"],
        json!([LOCAL_CALLBACK, PUBLIC_CALLBACK])
    );
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(client["response_types"], json!(["code"]));
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(client["application_type"], "web");
    assert_eq!(client["client_name"], "hub alpha");
    assert_eq!(client["client_secret_expires_at"], 0);
    assert_eq!(op.registered_clients().await.unwrap(), vec![id.to_owned()]);
}

#[tokio::test]
async fn management_reads_updates_and_deletes_with_the_same_token() {
    let op = provider().await;
    let client = registered(&op).await;
    let uri = client["registration_client_uri"].as_str().unwrap();
    let token = client["registration_access_token"].as_str().unwrap();
    let http = hubwright_http::client();

    let read = http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], client["client_id"]);
    assert_eq!(read["client_secret"], client["client_secret"]);
    assert_eq!(read["redirect_uris"], json!([LOCAL_CALLBACK]));
    assert_eq!(read["registration_access_token"], token);

    // RFC 7592 update: the full metadata, with client_id (and the secret).
    let mut update = hub_metadata(&[LOCAL_CALLBACK, PUBLIC_CALLBACK]);
    update["client_id"] = client["client_id"].clone();
    update["client_secret"] = client["client_secret"].clone();
    let put = http
        .put(uri)
        .bearer_auth(token)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let put: Value = put.json().await.unwrap();
    assert_eq!(
        put["redirect_uris"],
        json!([LOCAL_CALLBACK, PUBLIC_CALLBACK])
    );
    assert_eq!(put["client_secret"], client["client_secret"]);
    assert_eq!(put["registration_access_token"], token, "not rotated");

    let again: Value = http
        .get(uri)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["redirect_uris"],
        json!([LOCAL_CALLBACK, PUBLIC_CALLBACK])
    );

    let delete = http.delete(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    assert!(op.registered_clients().await.unwrap().is_empty());

    let gone = http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    let gone: Value = gone.json().await.unwrap();
    assert_eq!(gone["error"], "invalid_token", "{gone}");
    // A second delete (a retried step) is refused the same way.
    let twice = http.delete(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(twice.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_update_replaces_the_whole_metadata_and_refuses_server_fields() {
    let op = provider().await;
    let client = registered(&op).await;
    let uri = client["registration_client_uri"].as_str().unwrap();
    let token = client["registration_access_token"].as_str().unwrap();
    let http = hubwright_http::client();
    let put = |body: Value| http.put(uri).bearer_auth(token).json(&body).send();

    // Without client_id: refused.
    let response = put(json!({"redirect_uris": [PUBLIC_CALLBACK]}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(
        body["error_description"],
        "provided client_id does not match the authenticated client's one"
    );

    // RFC 7592 forbids sending these four back.
    for field in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        let mut update = hub_metadata(&[LOCAL_CALLBACK]);
        update["client_id"] = client["client_id"].clone();
        update[field] = client[field].clone();
        let response = put(update).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{field}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error_description"],
            format!("request MUST NOT include the {field} field")
        );
    }

    // Omitted fields go back to the provider's defaults; the secret stays.
    let update = json!({"client_id": client["client_id"], "redirect_uris": [PUBLIC_CALLBACK]});
    let response = put(update).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
    assert_eq!(body["client_name"], Value::Null);
    assert_eq!(body["client_secret"], client["client_secret"]);
}

#[tokio::test]
async fn management_refuses_a_wrong_token() {
    let op = provider().await;
    let client = registered(&op).await;
    let uri = client["registration_client_uri"].as_str().unwrap();
    let response = hubwright_http::client()
        .get(uri)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{body}");
}

#[tokio::test]
async fn registration_without_the_initial_access_token_is_refused() {
    let op = provider().await;
    let metadata = hub_metadata(&[LOCAL_CALLBACK]);
    let (status, body) = register(&op, None, &metadata).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "invalid_token", "error_description": "no access token provided"})
    );
    let (status, body) = register(&op, Some("wrong"), &metadata).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token", "{body}");
    assert!(op.registered_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn registration_is_open_when_no_initial_access_token_is_configured() {
    let op = OidcProvider::start(Options::default()).await.unwrap();
    assert_eq!(op.initial_access_token(), None);
    let (status, body) = register(&op, None, &hub_metadata(&[LOCAL_CALLBACK])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn invalid_metadata_is_refused_with_the_field_named() {
    let op = provider().await;
    let (status, body) = register(&op, Some(IAT), &hub_metadata(&["not a url"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_redirect_uri",
               "error_description": "redirect_uris must only contain valid uris"})
    );
    let mut missing = hub_metadata(&[]);
    missing.as_object_mut().unwrap().remove("redirect_uris");
    let (status, body) = register(&op, Some(IAT), &missing).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_redirect_uri", "{body}");
    let mut bad_grant = hub_metadata(&[LOCAL_CALLBACK]);
    bad_grant["grant_types"] = json!(["password"]);
    let (status, body) = register(&op, Some(IAT), &bad_grant).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    assert!(op.registered_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn fail_next_answers_the_given_status_then_lets_requests_through() {
    let op = provider().await;
    let body = json!({"error": "server_error", "error_description": "injected"});
    op.fail_next("/reg", 503, body.clone(), 2).await.unwrap();
    let metadata = hub_metadata(&[LOCAL_CALLBACK]);
    for _ in 0..2 {
        let (status, answered) = register(&op, Some(IAT), &metadata).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answered, body);
    }
    assert!(op.registered_clients().await.unwrap().is_empty());
    let (status, _) = register(&op, Some(IAT), &metadata).await;
    assert_eq!(status, StatusCode::CREATED);
    let reg: Vec<RequestRecord> = op
        .requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.path == "/reg")
        .collect();
    let statuses: Vec<u16> = reg.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 201]);
}

#[tokio::test]
async fn faults_match_by_method_and_prefix() {
    let op = provider().await;
    let client = registered(&op).await;
    let uri = client["registration_client_uri"].as_str().unwrap();
    let token = client["registration_access_token"].as_str().unwrap();
    let fault = Fault {
        method: Some("DELETE".into()),
        status: Some(500),
        body: json!({"error": "server_error"}),
        ..Fault::new("/reg/", 1)
    };
    op.inject(&fault).await.unwrap();
    let http = hubwright_http::client();
    let read = http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK, "GET is not matched");
    let delete = http.delete(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(op.registered_clients().await.unwrap().len(), 1);

    op.fail_next("/reg", 502, json!({}), 5).await.unwrap();
    op.clear_faults().await.unwrap();
    let delete = http.delete(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn hang_next_delays_past_a_client_timeout_and_drop_next_closes_the_connection() {
    let op = provider().await;
    op.hang_next("/.well-known", Duration::from_secs(2), 1)
        .await
        .unwrap();
    let impatient = hubwright_http::client_builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = impatient.get(op.discovery_url()).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        impatient
            .get(op.discovery_url())
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    op.drop_next("/reg", 1).await.unwrap();
    let err = hubwright_http::client()
        .post(op.registration_endpoint())
        .bearer_auth(IAT)
        .json(&hub_metadata(&[LOCAL_CALLBACK]))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err}");
    assert!(op.registered_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_comes_back_empty_on_the_same_issuer() {
    let mut op = provider().await;
    registered(&op).await;
    let issuer = op.issuer().to_owned();
    op.stop().await.unwrap();
    assert!(!op.is_running());
    let err = hubwright_http::client()
        .get(op.discovery_url())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");

    op.restart().await.unwrap();
    assert!(op.is_running());
    assert_eq!(op.issuer(), issuer);
    assert!(
        op.registered_clients().await.unwrap().is_empty(),
        "state is in memory only"
    );
    let (status, _) = register(&op, Some(IAT), &hub_metadata(&[LOCAL_CALLBACK])).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the initial access token survives a restart"
    );
}

#[tokio::test]
async fn the_log_has_one_line_per_request_and_no_secrets() {
    let op = provider().await;
    let client = registered(&op).await;
    let log = op.log_text();
    assert!(
        log.contains(r#""method":"POST","path":"/reg","status":201"#),
        "{log}"
    );
    for secret in ["client_secret", "registration_access_token"] {
        let value = client[secret].as_str().unwrap();
        assert!(!log.contains(value), "{secret} in the log");
    }
    assert!(!log.contains(IAT));
}

#[tokio::test]
async fn a_development_login_yields_a_code_the_client_redeems_with_its_secret() {
    let op = provider().await;
    let client = registered(&op).await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let http = hubwright_http::client();

    let mut url = reqwest::Url::parse(&format!("{}/auth", op.issuer())).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", id)
        .append_pair("redirect_uri", LOCAL_CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile")
        .append_pair("state", "s1");
    // auth -> login form -> resume -> consent -> resume -> callback.
    let target = op.log_in_at(url, "alice").await.unwrap();
    assert!(target.as_str().starts_with(LOCAL_CALLBACK), "{target}");
    let query: std::collections::HashMap<_, _> = target.query_pairs().collect();
    assert_eq!(query["state"], "s1");
    assert_eq!(query["iss"], op.issuer());
    let code = query
        .get("code")
        .map(ToString::to_string)
        .expect("redirected back to the hub with a code");

    let token = http
        .post(format!("{}/token", op.issuer()))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", LOCAL_CALLBACK),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK);
    let token: Value = token.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();
    assert!(token["id_token"].is_string());

    let me: Value = http
        .get(format!("{}/me", op.issuer()))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], "alice");
    assert_eq!(me["email"], "alice@example.org");
    assert_eq!(me["preferred_username"], "alice");
}
