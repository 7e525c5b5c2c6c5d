//! Our values template makes a real JupyterHub (jupyterhub + oauthenticator,
//! configured as z2jh configures its hub) that answers its health check and
//! logs users in through the real OpenID provider, or with the admin password
//! in local mode.

use std::collections::HashMap;
use std::path::Path;

use hubwright_sandbox::jupyterhub::{self, JupyterHub, Options as HubOptions};
use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_testkit::console::no_redirects;
use hubwright_testkit::cookies::Jar;
use hubwright_worker::helm::values::render;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "correct-horse-battery-staple-0123456789";

/// The context the helm-release step renders with, no base domain, with
/// `overrides` replacing request parameters.
fn context(idp: Value, overrides: &Value) -> Value {
    let mut context = json!({
        "params": {
            "image": "quay.io/jupyter/scipy-notebook", "image_tag": "2024-10-07", "profile": "minimal",
            "cpu_guarantee": 0.5, "cpu_limit": 2, "memory_guarantee": "1G", "memory_limit": "4G",
            "storage": "10Gi", "admin_users": ["bob"], "allowed_users": ["carol"],
            "auth_mode": idp["mode"], "idle_cull_timeout": 1800,
            "allowed_groups": [], "admin_groups": [], "groups_claim": "groups",
            "scopes": ["openid", "profile", "email"],
        },
        "env": { "id": "0190a6b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", "name": "lab", "owner": "alice", "namespace": "jh-lab-4e5f6a7b", "template": "jupyterhub" },
        "cluster": { "name": "default", "base_domain": null, "tls_issuer": null, "ingress_class": null },
        "release": "jh-lab-4e5f6a7b",
        "steps": { "namespace": { "namespace": "jh-lab-4e5f6a7b" }, "idp": idp },
    });
    for (name, value) in overrides.as_object().into_iter().flatten() {
        context["params"][name] = value.clone();
    }
    context
}

/// The rendered values' `hub` mapping, as JSON.
fn hub_values(idp: Value) -> Value {
    hub_values_with(idp, &json!({}))
}

fn hub_values_with(idp: Value, overrides: &Value) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub/values.yaml.j2");
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&render(&path, &context(idp, overrides)).unwrap()).unwrap();
    serde_json::to_value(&yaml["hub"]).unwrap()
}

/// A provider, a client registered for a hub on `port`, and the `hub` values
/// rendered with the provider's endpoints (as the idp step outputs them).
struct Oidc {
    op: OidcProvider,
    client_id: String,
    client_secret: String,
    authorization_endpoint: String,
    hub: Value,
}

async fn oidc_for_hub_on(port: u16) -> Oidc {
    oidc_for_hub_with(port, Options::default(), &json!({})).await
}

/// [`oidc_for_hub_on`] with provider `options` and request parameter `overrides`.
async fn oidc_for_hub_with(port: u16, options: Options, overrides: &Value) -> Oidc {
    let op = OidcProvider::start(options).await.unwrap();
    let discovery: Value = hubwright_http::client()
        .get(op.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = hubwright_http::client()
        .post(op.registration_endpoint())
        .json(&json!({
            "client_name": "lab",
            "redirect_uris": [format!("http://127.0.0.1:{port}/hub/oauth_callback")],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let client: Value = response.json().await.unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let hub = hub_values_with(
        json!({
            "mode": "oidc", "secret": "hubwright-oauth", "client_id": client_id,
            "issuer": discovery["issuer"],
            "authorization_endpoint": discovery["authorization_endpoint"],
            "token_endpoint": discovery["token_endpoint"],
            "userinfo_endpoint": discovery["userinfo_endpoint"],
        }),
        overrides,
    );
    Oidc {
        authorization_endpoint: discovery["authorization_endpoint"]
            .as_str()
            .unwrap()
            .to_owned(),
        client_secret: client["client_secret"].as_str().unwrap().to_owned(),
        client_id,
        hub,
        op,
    }
}

/// An OIDC hub started from the rendered values, and its provider.
async fn oidc_hub() -> (JupyterHub, Oidc) {
    oidc_hub_with(Options::default(), &json!({})).await
}

/// [`oidc_hub`] with provider `options` and request parameter `overrides`.
async fn oidc_hub_with(options: Options, overrides: &Value) -> (JupyterHub, Oidc) {
    let port = jupyterhub::free_port().unwrap();
    let oidc = oidc_for_hub_with(port, options, overrides).await;
    let env = [
        ("OAUTH_CLIENT_ID", oidc.client_id.as_str()),
        ("OAUTH_CLIENT_SECRET", oidc.client_secret.as_str()),
    ];
    let options = HubOptions {
        port,
        ..HubOptions::from_hub_values(&oidc.hub)
    };
    let hub = JupyterHub::start_with(&oidc.hub["config"], &env, options)
        .await
        .unwrap();
    (hub, oidc)
}

fn location(response: &reqwest::Response, base: &str) -> String {
    assert!(
        response.status().is_redirection(),
        "{} {}",
        response.status(),
        response.url()
    );
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap();
    if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        location.to_owned()
    }
}

/// Starts at the hub's `/hub/oauth_login`, logs in at the provider as
/// `username` (devInteractions: login, then consent), and returns the hub's
/// answer to the callback with the jar holding the hub's cookies so far.
async fn log_in(hub: &JupyterHub, oidc: &Oidc, username: &str) -> (reqwest::Response, Jar) {
    let http = no_redirects();
    let mut jar = Jar::default();
    let response = http
        .get(format!("{}/hub/oauth_login", hub.url()))
        .send()
        .await
        .unwrap();
    jar.take(&response);
    let authorization = reqwest::Url::parse(&location(&response, hub.url())).unwrap();
    let callback = oidc.op.log_in_at(authorization, username).await.unwrap();
    assert!(
        callback.as_str().starts_with(&hub.callback_url()),
        "never redirected back to {}: {callback}",
        hub.callback_url()
    );
    let answer = http
        .get(callback)
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    jar.take(&answer);
    (answer, jar)
}

/// `/hub/api/user` with the hub's session cookie, as the hub's pages call it.
async fn who_am_i(hub: &JupyterHub, jar: &Jar) -> (StatusCode, Value) {
    let response = no_redirects()
        .get(format!("{}/hub/api/user", hub.url()))
        .header("cookie", jar.header())
        .header("X-XSRFToken", jar.get("_xsrf").unwrap_or_default())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_oidc_hub_is_healthy_and_sends_logins_to_the_provider_with_its_registered_client() {
    let (hub, oidc) = oidc_hub().await;
    let health = hubwright_http::client()
        .get(format!("{}/hub/health", hub.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let response = no_redirects()
        .get(format!("{}/hub/oauth_login", hub.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", hub.log_text());
    let target = reqwest::Url::parse(&location(&response, hub.url())).unwrap();
    assert_eq!(
        target.as_str().split('?').next().unwrap(),
        oidc.authorization_endpoint
    );
    let query: HashMap<_, _> = target.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], oidc.client_id);
    assert_eq!(query["redirect_uri"], hub.callback_url());
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["scope"], "openid profile email");
    assert!(!query["state"].is_empty());
}

#[tokio::test]
async fn the_owner_logs_in_through_the_provider_and_lands_in_the_hub_as_an_admin() {
    let (hub, oidc) = oidc_hub().await;
    let (callback, jar) = log_in(&hub, &oidc, "alice").await;
    assert_eq!(
        callback.status(),
        StatusCode::FOUND,
        "hub log:\n{}",
        hub.log_text()
    );
    assert!(
        jar.get("jupyterhub-hub-login").is_some(),
        "{}",
        jar.header()
    );

    let (status, me) = who_am_i(&hub, &jar).await;
    assert_eq!(status, StatusCode::OK, "{me}\nhub log:\n{}", hub.log_text());
    assert_eq!(me["name"], "alice");
    assert_eq!(me["admin"], true);

    let home = no_redirects()
        .get(format!("{}/hub/home", hub.url()))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("alice"));
}

#[tokio::test]
async fn a_user_the_values_do_not_allow_is_refused_by_the_hub_after_the_provider_login() {
    let (hub, oidc) = oidc_hub().await;
    let (callback, jar) = log_in(&hub, &oidc, "mallory").await;
    assert_eq!(callback.status(), StatusCode::FORBIDDEN);
    assert!(
        jar.get("jupyterhub-hub-login").is_none(),
        "{}",
        jar.header()
    );
    let (status, _) = who_am_i(&hub, &jar).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // carol is in allowed_users but not an admin.
    let (callback, jar) = log_in(&hub, &oidc, "carol").await;
    assert_eq!(callback.status(), StatusCode::FOUND);
    let (status, me) = who_am_i(&hub, &jar).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "carol");
    assert_eq!(me["admin"], false);
}

#[tokio::test]
async fn without_a_domain_the_hub_derives_its_callback_from_the_request() {
    // Without a base domain the template leaves oauth_callback_url out (a null
    // would stop the hub: z2jh hands it to a text trait), and oauthenticator
    // derives the callback from the request's host.
    let port = jupyterhub::free_port().unwrap();
    let oidc = oidc_for_hub_on(port).await;
    let rendered = &oidc.hub["config"]["GenericOAuthenticator"];
    let env = [
        ("OAUTH_CLIENT_ID", oidc.client_id.as_str()),
        ("OAUTH_CLIENT_SECRET", oidc.client_secret.as_str()),
    ];
    let options = HubOptions {
        port,
        config_as_rendered: true,
        ..HubOptions::default()
    };
    assert!(rendered.get("oauth_callback_url").is_none(), "{rendered}");
    let hub = JupyterHub::start_with(&oidc.hub["config"], &env, options)
        .await
        .unwrap();
    let response = no_redirects()
        .get(format!("{}/hub/oauth_login", hub.url()))
        .send()
        .await
        .unwrap();
    let target = reqwest::Url::parse(&location(&response, hub.url())).unwrap();
    let query: HashMap<_, _> = target.query_pairs().into_owned().collect();
    assert_eq!(query["redirect_uri"], hub.callback_url());
}

/// Posts the hub's login form (with its `_xsrf`) as a browser does.
async fn local_login(hub: &JupyterHub, username: &str, password: &str) -> (StatusCode, Jar) {
    let http = no_redirects();
    let mut jar = Jar::default();
    let page = http
        .get(format!("{}/hub/login", hub.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    jar.take(&page);
    let xsrf = jar.get("_xsrf").unwrap().to_owned();
    let response = http
        .post(format!("{}/hub/login", hub.url()))
        .header("cookie", jar.header())
        .form(&[
            ("username", username),
            ("password", password),
            ("_xsrf", &xsrf),
        ])
        .send()
        .await
        .unwrap();
    jar.take(&response);
    (response.status(), jar)
}

#[tokio::test]
async fn a_local_hub_lets_the_owner_in_with_the_admin_password_and_nobody_without_it() {
    let values = hub_values(json!({ "mode": "local", "secret": "hubwright-oauth" }));
    let env = [("HUBWRIGHT_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let hub = JupyterHub::start_with(
        &values["config"],
        &env,
        HubOptions::from_hub_values(&values),
    )
    .await
    .unwrap();
    assert!(
        hub.log_text()
            .contains("Loading extra config: hubwright-local-admin")
    );

    let (status, _) = local_login(&hub, "alice", "wrong").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = local_login(&hub, "mallory", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The admin password is for admins only: carol is allowed but not an
    // admin, and there is no user password.
    let (status, _) = local_login(&hub, "carol", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, jar) = local_login(&hub, "alice", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::FOUND, "hub log:\n{}", hub.log_text());
    let (status, me) = who_am_i(&hub, &jar).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "alice");
    assert_eq!(me["admin"], true);
}

#[tokio::test]
async fn provider_groups_let_members_in_and_make_admin_group_members_admins() {
    let options = Options {
        groups: [
            ("dana", vec!["physics"]),
            ("erin", vec!["hub-admins", "chemistry"]),
            ("frank", vec!["chemistry"]),
        ]
        .into_iter()
        .map(|(user, groups)| {
            (
                user.to_owned(),
                groups.into_iter().map(str::to_owned).collect(),
            )
        })
        .collect(),
        ..Options::default()
    };
    let overrides = json!({
        "allowed_groups": ["physics"],
        "admin_groups": ["hub-admins"],
        "scopes": ["openid", "profile", "email", "groups"],
    });
    let (hub, oidc) = oidc_hub_with(options, &overrides).await;

    let (callback, jar) = log_in(&hub, &oidc, "dana").await;
    assert_eq!(
        callback.status(),
        StatusCode::FOUND,
        "hub log:\n{}",
        hub.log_text()
    );
    let (status, me) = who_am_i(&hub, &jar).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["admin"], false);
    assert_eq!(
        me["groups"],
        json!(["physics"]),
        "the hub mirrors the claim"
    );

    let (callback, jar) = log_in(&hub, &oidc, "erin").await;
    assert_eq!(
        callback.status(),
        StatusCode::FOUND,
        "hub log:\n{}",
        hub.log_text()
    );
    let (_, me) = who_am_i(&hub, &jar).await;
    assert_eq!(me["admin"], true, "{me}");

    // Neither allowed by name nor by group.
    let (callback, _) = log_in(&hub, &oidc, "frank").await;
    assert_eq!(callback.status(), StatusCode::FORBIDDEN);
}
