//! The JupyterHub template's values render to what the zero-to-jupyterhub
//! chart expects, for both authentication modes, with no secret in them.

use std::path::Path;

use hubwright_worker::helm::values::render;
use serde_json::{Value, json};

/// What a cluster gives the template: a base domain, and with it TLS and
/// an ingress class, or neither.
fn context(mode: &str, base_domain: Option<&str>) -> Value {
    let cluster = json!({
        "name": "default", "base_domain": base_domain,
        "tls_issuer": base_domain.map(|_| "letsencrypt"),
        "ingress_class": base_domain.map(|_| "nginx"),
    });
    context_on(mode, cluster)
}

fn context_on(mode: &str, cluster: Value) -> Value {
    json!({
        "params": {
            "image": "quay.io/jupyter/scipy-notebook", "image_tag": "2024-10-07", "profile": "gpu",
            "cpu_guarantee": 0.5, "cpu_limit": 2, "memory_guarantee": "1G", "memory_limit": "4G",
            "storage": "10Gi", "admin_users": ["bob"], "allowed_users": ["carol"],
            "auth_mode": mode, "idle_cull_timeout": 1800,
            "allowed_groups": [], "admin_groups": [], "groups_claim": "groups",
            "scopes": ["openid", "profile", "email"],
        },
        "env": { "id": "0190a6b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", "name": "lab", "owner": "alice", "namespace": "jh-lab-4e5f6a7b", "template": "jupyterhub" },
        "cluster": cluster,
        "release": "jh-lab-4e5f6a7b",
        "steps": {
            "namespace": { "namespace": "jh-lab-4e5f6a7b" },
            "idp": if mode == "oidc" { json!({
                "mode": "oidc", "secret": "hubwright-oauth", "client_id": "abc",
                "authorization_endpoint": "https://sso/auth", "token_endpoint": "https://sso/token",
                "userinfo_endpoint": "https://sso/me",
            }) } else { json!({ "mode": "local", "secret": "hubwright-oauth" }) },
        },
    })
}

fn values(mode: &str, base_domain: Option<&str>) -> serde_yaml_ng::Value {
    rendered(&context(mode, base_domain))
}

fn rendered(context: &Value) -> serde_yaml_ng::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub/values.yaml.j2");
    serde_yaml_ng::from_str(&render(&path, context).unwrap()).unwrap()
}

fn at<'a>(value: &'a serde_yaml_ng::Value, path: &str) -> &'a serde_yaml_ng::Value {
    path.split('.').fold(value, |v, key| &v[key])
}

#[test]
fn oidc_hubs_read_their_client_from_the_secret_and_get_an_ingress_host() {
    let v = values("oidc", Some("hubs.example.org"));
    assert_eq!(
        at(&v, "hub.config.JupyterHub.authenticator_class").as_str(),
        Some("generic-oauth")
    );
    let env = at(&v, "hub.extraEnv");
    assert_eq!(
        env["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"].as_str(),
        Some("hubwright-oauth")
    );
    assert_eq!(
        env["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["key"].as_str(),
        Some("OAUTH_CLIENT_SECRET")
    );
    let oauth = at(&v, "hub.config.GenericOAuthenticator");
    assert_eq!(
        oauth["oauth_callback_url"].as_str(),
        Some("https://lab.hubs.example.org/hub/oauth_callback")
    );
    assert_eq!(oauth["authorize_url"].as_str(), Some("https://sso/auth"));
    assert_eq!(oauth["username_claim"].as_str(), Some("preferred_username"));
    let auth = at(&v, "hub.config.Authenticator");
    assert_eq!(
        serde_yaml_ng::to_string(&auth["admin_users"])
            .unwrap()
            .trim(),
        "- alice\n- bob"
    );
    assert_eq!(auth["allowed_users"].as_sequence().unwrap().len(), 3);
    assert_eq!(
        at(&v, "ingress.hosts")[0].as_str(),
        Some("lab.hubs.example.org")
    );
    assert_eq!(
        at(&v, "ingress.tls")[0]["secretName"].as_str(),
        Some("lab-tls")
    );
    assert_eq!(at(&v, "ingress.ingressClassName").as_str(), Some("nginx"));
    assert_eq!(at(&v, "proxy.service.type").as_str(), Some("ClusterIP"));
    assert_eq!(at(&v, "prePuller.hook.enabled").as_bool(), Some(false));
    assert_eq!(at(&v, "cull.timeout").as_u64(), Some(1800));
    let gpu = &at(&v, "singleuser.profileList")[3];
    assert_eq!(gpu["default"].as_bool(), Some(true));
    assert_eq!(
        gpu["kubespawner_override"]["extra_resource_limits"]["nvidia.com/gpu"].as_str(),
        Some("1")
    );
    assert_eq!(
        gpu["kubespawner_override"]["tolerations"][0]["key"].as_str(),
        Some("nvidia.com/gpu"),
        "GPU nodes' usual taint is tolerated"
    );
}

#[test]
fn a_domain_without_a_tls_issuer_is_served_over_http_at_the_default_class() {
    let cluster = json!({
        "name": "default", "base_domain": "hubs.example.org",
        "tls_issuer": null, "ingress_class": null,
    });
    let v = rendered(&context_on("oidc", cluster));
    assert_eq!(
        at(&v, "hub.config.GenericOAuthenticator.oauth_callback_url").as_str(),
        Some("http://lab.hubs.example.org/hub/oauth_callback")
    );
    assert!(at(&v, "ingress.tls").is_null());
    assert!(at(&v, "ingress.ingressClassName").is_null());
    assert_eq!(
        at(&v, "ingress.hosts")[0].as_str(),
        Some("lab.hubs.example.org")
    );
}

#[test]
fn local_hubs_use_a_password_from_the_secret_and_a_load_balancer_without_a_domain() {
    let v = values("local", None);
    assert_eq!(
        at(&v, "hub.config.JupyterHub.authenticator_class").as_str(),
        Some("shared-password")
    );
    assert!(at(&v, "hub.config.GenericOAuthenticator").is_null());
    assert_eq!(
        at(
            &v,
            "hub.extraEnv.HUBWRIGHT_ADMIN_PASSWORD.valueFrom.secretKeyRef.key"
        )
        .as_str(),
        Some("ADMIN_PASSWORD")
    );
    assert!(
        at(&v, "hub.extraConfig.hubwright-local-admin")
            .as_str()
            .unwrap()
            .contains("os.environ")
    );
    assert_eq!(at(&v, "proxy.service.type").as_str(), Some("LoadBalancer"));
    assert!(v["ingress"].is_null());
    // Only admins have the password, so only they are allowed.
    assert_eq!(
        serde_yaml_ng::to_string(&at(&v, "hub.config.Authenticator.allowed_users"))
            .unwrap()
            .trim(),
        "- alice\n- bob"
    );
    let oidc = values("oidc", None);
    assert!(
        at(&oidc, "hub.config.GenericOAuthenticator.oauth_callback_url").is_null(),
        "left out without a host, so the hub derives it (a null would stop it)"
    );
}

#[test]
fn provider_groups_turn_on_group_management_only_when_asked_for() {
    let mut context = context("oidc", None);
    let plain = rendered(&context);
    let oauth = at(&plain, "hub.config.GenericOAuthenticator");
    assert!(oauth["manage_groups"].is_null());
    assert!(oauth["allowed_groups"].is_null());
    assert_eq!(
        serde_yaml_ng::to_string(&oauth["scope"]).unwrap().trim(),
        "- openid\n- profile\n- email"
    );

    context["params"]["allowed_groups"] = json!(["physics"]);
    context["params"]["admin_groups"] = json!(["hub-admins"]);
    context["params"]["groups_claim"] = json!("roles");
    context["params"]["scopes"] = json!(["openid", "groups"]);
    let grouped = rendered(&context);
    let oauth = at(&grouped, "hub.config.GenericOAuthenticator");
    assert_eq!(oauth["manage_groups"].as_bool(), Some(true));
    assert_eq!(oauth["claim_groups_key"].as_str(), Some("roles"));
    assert_eq!(oauth["allowed_groups"][0].as_str(), Some("physics"));
    assert_eq!(oauth["admin_groups"][0].as_str(), Some("hub-admins"));
    assert_eq!(oauth["scope"][1].as_str(), Some("groups"));

    // The shared password knows no groups.
    context["params"]["auth_mode"] = json!("local");
    context["steps"]["idp"] = json!({ "mode": "local", "secret": "hubwright-oauth" });
    let local = rendered(&context);
    assert!(at(&local, "hub.config.GenericOAuthenticator").is_null());
}

#[test]
fn the_shipped_defaults_and_requested_quantities_reach_the_chart_as_cores_and_bytes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub.yaml");
    let template = hubwright_state::workflow::load_file(&path)
        .unwrap()
        .template;
    let mut context = context("local", None);
    let defaults = template
        .resolve_parameters(&serde_json::Map::new())
        .unwrap();
    context["params"] = Value::Object(defaults);
    let v = rendered(&context);
    assert_eq!(at(&v, "singleuser.cpu.guarantee").as_f64(), Some(0.5));
    assert_eq!(at(&v, "singleuser.cpu.limit").as_f64(), Some(2.0));
    assert_eq!(
        at(&v, "singleuser.memory.guarantee").as_i64(),
        Some(1 << 30)
    );
    assert_eq!(at(&v, "singleuser.memory.limit").as_i64(), Some(4 << 30));
    assert_eq!(at(&v, "singleuser.storage.capacity").as_str(), Some("10Gi"));

    let asked = json!({"cpu_limit": "1500m", "memory_limit": "2.5G", "storage": 2147483648u64});
    let params = template
        .resolve_parameters(asked.as_object().unwrap())
        .unwrap();
    context["params"] = Value::Object(params);
    let v = rendered(&context);
    assert_eq!(at(&v, "singleuser.cpu.limit").as_f64(), Some(1.5));
    assert_eq!(
        at(&v, "singleuser.memory.limit").as_i64(),
        Some(2_500_000_000)
    );
    assert_eq!(
        at(&v, "singleuser.storage.capacity").as_str(),
        Some("2147483648"),
        "a string, as the chart's PVC wants"
    );
}

#[test]
fn a_pool_member_admits_only_the_pools_admins_and_registers_the_hubwright_service() {
    let mut context = context("oidc", None);
    context["env"]["owner"] = json!("pool:jupyterhub");
    context["params"]["admin_users"] = json!(["platform-admin"]);
    context["steps"]["idp"]["api_token"] = json!(true);
    let v = rendered(&context);
    let auth = at(&v, "hub.config.Authenticator");
    let names = |value: &serde_yaml_ng::Value| -> Vec<String> {
        serde_yaml_ng::from_value(value.clone()).unwrap()
    };
    assert_eq!(
        names(&auth["admin_users"]),
        ["platform-admin"],
        "not the pool"
    );
    assert_eq!(
        names(&auth["allowed_users"]),
        ["platform-admin"],
        "carol comes with a claim, not before"
    );
    assert_eq!(auth["allow_existing_users"].as_bool(), Some(true));
    let token = &at(&v, "hub.extraEnv")["HUBWRIGHT_API_TOKEN"]["valueFrom"]["secretKeyRef"];
    assert_eq!(token["name"].as_str(), Some("hubwright-oauth"));
    assert_eq!(token["key"].as_str(), Some("HUBWRIGHT_API_TOKEN"));
    let service = at(&v, "hub.extraConfig.hubwright-service")
        .as_str()
        .unwrap();
    assert!(
        service.contains(r#"os.environ["HUBWRIGHT_API_TOKEN"]"#),
        "{service}"
    );
    assert!(service.contains(r#""admin": True"#), "{service}");
    // A claim's groups are let in by the hook, from the mirrored claim.
    let hook = at(&v, "hub.extraConfig.hubwright-groups").as_str().unwrap();
    assert!(hook.contains("hubwright_allowed"), "{hook}");
    let oauth = at(&v, "hub.config.GenericOAuthenticator");
    assert_eq!(oauth["manage_groups"].as_bool(), Some(true));

    // A cold hub of the same template has no service, even with a token.
    context["env"]["owner"] = json!("alice");
    let cold = rendered(&context);
    assert!(at(&cold, "hub.extraConfig").is_null());
    assert!(at(&cold, "hub.extraEnv.HUBWRIGHT_API_TOKEN").is_null());
    let auth = at(&cold, "hub.config.Authenticator");
    assert_eq!(names(&auth["admin_users"]), ["alice", "platform-admin"]);
    assert!(auth["allow_existing_users"].is_null());
}
