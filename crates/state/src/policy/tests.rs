#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::json;

use super::*;

const HUB: &str = r#"
name: hub
parameters:
  profile: { type: string, default: small, enum: [small, gpu] }
  cpu_limit: { type: number, default: 2 }
  memory_limit: { type: string, default: 4Gi }
workflows:
  provision:
    steps:
      - { name: a, kind: noop }
"#;

fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    catalog.insert(crate::workflow::parse(Path::new("hub.yaml"), HUB).unwrap());
    catalog
}

fn policy(text: &str) -> Policy {
    Policy::parse(text, &catalog()).unwrap()
}

const POLICY: &str = r#"
defaults: { environments: 3, cpu: "8", max_ttl: 24h, per_profile: { gpu: 0 } }
groups:
  gpu-users:
    members: [alice]
    limits: { per_profile: { gpu: 2 }, environments: 5 }
  big:
    limits: { environments: 10, cpu: unlimited }
owners:
  carol: { environments: 1 }
templates:
  hub:
    profiles: { gpu: [gpu-users] }
"#;

#[test]
fn the_owner_wins_then_the_most_generous_group_then_the_defaults() {
    let policy = policy(POLICY);
    let nobody = policy.limits_for("dave", &[]);
    assert_eq!(nobody.environments.as_ref().unwrap().value, 3);
    assert_eq!(nobody.environments.unwrap().rule, "defaults.environments");
    assert_eq!(nobody.per_profile["gpu"].value, 0);

    let groups = policy.groups_of("alice");
    assert_eq!(groups, ["gpu-users"]);
    let both = policy.limits_for("alice", &["big".to_owned(), "gpu-users".to_owned()]);
    let environments = both.environments.unwrap();
    assert_eq!(
        (environments.value, environments.rule.as_str()),
        (10, "groups.big.limits.environments")
    );
    assert_eq!(
        both.per_profile["gpu"].rule,
        "groups.gpu-users.limits.per_profile.gpu"
    );
    assert_eq!(both.cpu, None, "`unlimited` in a group lifts the default");
    assert_eq!(both.max_ttl.unwrap().value, "24h".parse().unwrap());

    let carol = policy.limits_for("carol", &["big".to_owned()]);
    assert_eq!(
        carol.environments.unwrap().rule,
        "owners.carol.environments"
    );
}

#[test]
fn a_request_past_a_limit_names_it_with_its_value_and_the_current_use() {
    let policy = policy(POLICY);
    let limits = policy.limits_for("dave", &[]);
    let counting = &policy.usage;
    let params = json!({"profile": "small", "cpu_limit": 2, "memory_limit": "4Gi"});
    let two = [("hub", &params), ("hub", &params)];
    let usage = counting.usage(two);
    assert_eq!(usage.cpu.to_string(), "4");
    assert_eq!(usage.memory.to_string(), "8Gi");
    let demand = counting.demand("hub", &params).unwrap();
    assert_eq!(limits.breach(&usage, &demand), None);

    let three = counting.usage([("hub", &params), ("hub", &params), ("hub", &params)]);
    let breach = limits.breach(&three, &demand).unwrap();
    assert_eq!(breach.limit, "environments");
    assert_eq!(
        (breach.value.clone(), breach.current.clone()),
        (json!(3), json!(3))
    );
    assert!(
        breach.to_string().contains("defaults.environments"),
        "{breach}"
    );

    let big = json!({"profile": "small", "cpu_limit": 5});
    let demand = counting.demand("hub", &big).unwrap();
    let breach = limits.breach(&usage, &demand).unwrap();
    assert_eq!(breach.limit, "cpu");
    assert_eq!(
        (
            breach.value.clone(),
            breach.current.clone(),
            breach.requested.clone()
        ),
        (json!("8"), json!("4"), json!("5"))
    );

    let gpu = counting.demand("hub", &json!({"profile": "gpu"})).unwrap();
    assert_eq!(
        limits.breach(&Usage::default(), &gpu).unwrap().limit,
        "per_profile.gpu"
    );

    let (name, rule) = counting
        .demand("hub", &json!({"cpu_limit": "abc"}))
        .unwrap_err();
    assert_eq!(name, "cpu_limit");
    assert!(rule.contains("not a Kubernetes quantity"), "{rule}");
}

#[test]
fn limits_that_cannot_refuse_a_demand_say_so() {
    let counting = Counting::default();
    let small = counting
        .demand("hub", &json!({"profile": "small", "cpu_limit": 2}))
        .unwrap();
    let gpu = counting.demand("hub", &json!({"profile": "gpu"})).unwrap();
    let crowded = counting.usage(vec![("hub", &json!({"cpu_limit": 1000})); 1000]);

    let none = Policy::default().limits_for("dave", &[]);
    assert!(!none.may_refuse(&small));
    assert_eq!(none.breach(&crowded, &small), None);

    let only_gpu = policy("defaults: { per_profile: { gpu: 0 }, max_ttl: 24h }");
    let only_gpu = only_gpu.limits_for("dave", &[]);
    assert!(!only_gpu.may_refuse(&small), "no limit counts a small one");
    assert_eq!(only_gpu.breach(&crowded, &small), None);
    assert!(only_gpu.may_refuse(&gpu));
    assert!(only_gpu.breach(&Usage::default(), &gpu).is_some());

    let cpu = policy(r#"defaults: { cpu: "8" }"#).limits_for("dave", &[]);
    assert!(cpu.may_refuse(&small));
    assert!(
        !cpu.may_refuse(&gpu),
        "an environment that takes no CPU is not refused for it"
    );
    assert_eq!(cpu.breach(&crowded, &gpu), None);

    let per_template = policy("defaults: { per_template: { hub: 1 } }");
    assert!(per_template.limits_for("dave", &[]).may_refuse(&small));
    let all = policy(POLICY).limits_for("dave", &[]);
    assert!(all.may_refuse(&small) && all.may_refuse(&gpu));
}

#[test]
fn template_and_profile_access_name_the_rule() {
    let policy =
        policy("templates:\n  hub:\n    groups: [science]\n    profiles: { gpu: [gpu-users] }\n");
    let science = ["science".to_owned()];
    assert!(policy.template_access("hub", "bob", &science).allowed);
    let denied = policy.template_access("hub", "bob", &[]);
    assert!(!denied.allowed);
    assert!(
        denied.reason.contains("templates.hub.groups"),
        "{}",
        denied.reason
    );
    let gpu = policy.profile_access("hub", "gpu", "bob", &science);
    assert!(!gpu.allowed);
    assert!(
        gpu.reason
            .contains("templates.hub.profiles.gpu allows only members of gpu-users"),
        "{}",
        gpu.reason
    );
    assert!(policy.profile_access("hub", "small", "bob", &[]).allowed);
    assert!(policy.template_access("other", "bob", &[]).allowed);
}

#[test]
fn a_bad_policy_names_the_place_and_the_rule() {
    let cases = [
        (
            "defaults: { environments: -1 }\n",
            "defaults.environments",
            "invalid digit",
        ),
        (
            "defaults: { cpu: abc }\n",
            "defaults.cpu",
            "not a Kubernetes quantity",
        ),
        (
            "defaults: { max_ttl: forever }\n",
            "defaults.max_ttl",
            "not a duration",
        ),
        (
            "defaults: { max_ttl: 0s }\n",
            "defaults.max_ttl",
            "above zero",
        ),
        (
            "defaults: { environmentz: 1 }\n",
            "defaults.environmentz",
            "unknown field `environmentz`",
        ),
        (
            "groups: { g: { limits: { per_template: { nope: 1 } } } }\n",
            "groups.g.limits.per_template.nope",
            "no template named `nope`",
        ),
        (
            "templates: { nope: {} }\n",
            "templates.nope",
            "no template named",
        ),
        (
            "templates: { hub: { profiles: { tpu: [x] } } }\n",
            "templates.hub.profiles.tpu",
            "not a value of parameter `profile`",
        ),
        (
            "usage: { profile: flavour }\ntemplates: { hub: { profiles: { gpu: [x] } } }\n",
            "templates.hub.profiles",
            "no parameter `flavour`",
        ),
        ("- a list\n", "(file)", "invalid type"),
    ];
    for (text, place, rule) in cases {
        let (at, why) = Policy::parse(text, &catalog()).unwrap_err();
        assert_eq!(at, place, "{text}: {why}");
        assert!(why.contains(rule), "{text}: {why}");
    }
    assert_eq!(Policy::parse("", &catalog()).unwrap(), Policy::default());
}

/// A policy file of `text` in a directory of its own, and its holder.
fn holding(text: &str) -> (std::path::PathBuf, std::path::PathBuf, PolicyHolder) {
    let dir = std::env::temp_dir().join(format!(
        "hubwright-policy-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    let holder = PolicyHolder::load(&path, &catalog(), chrono::Utc::now()).unwrap();
    (dir, path, holder)
}

#[test]
fn a_reload_with_an_error_keeps_the_policy_in_force_and_says_why() {
    let (dir, path, holder) = holding("defaults: { environments: 3 }\n");
    let now = chrono::Utc::now();
    assert_eq!(holder.reload(&catalog(), now, false), Reload::Unchanged);

    std::fs::write(&path, "defaults: { environments: lots }\n").unwrap();
    assert_eq!(
        holder.reload(&catalog(), now, false),
        Reload::Settling,
        "the first poll gives a writer time to finish"
    );
    assert_eq!(holder.status().last_reload_error, None);
    let Reload::Failed(err) = holder.reload(&catalog(), now, false) else {
        panic!("a bad file loads")
    };
    assert_eq!(err.place, "defaults.environments");
    assert_eq!(holder.current().defaults.environments, Some(Limit::At(3)));
    assert!(
        holder
            .status()
            .last_reload_error
            .unwrap()
            .contains("defaults.environments")
    );
    assert_eq!(
        holder.reload(&catalog(), now, false),
        Reload::Unchanged,
        "reported once"
    );

    std::fs::write(&path, "defaults: { environments: 4 }\n").unwrap();
    assert_eq!(holder.reload(&catalog(), now, false), Reload::Applied);
    assert_eq!(holder.current().defaults.environments, Some(Limit::At(4)));
    assert_eq!(holder.status().last_reload_error, None);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_file_caught_half_written_by_a_poll_applies_whole_at_the_next_and_sighup_reports_at_once() {
    let (dir, path, holder) = holding("defaults: { environments: 3 }\n");
    let now = chrono::Utc::now();

    std::fs::write(&path, "defaults: { environm").unwrap();
    assert_eq!(holder.reload(&catalog(), now, false), Reload::Settling);
    std::fs::write(&path, "defaults: { environments: 5 }\n").unwrap();
    assert_eq!(holder.reload(&catalog(), now, false), Reload::Applied);
    assert_eq!(holder.current().defaults.environments, Some(Limit::At(5)));
    assert_eq!(holder.status().last_reload_error, None);

    std::fs::write(&path, "defaults: { environments: lots }\n").unwrap();
    assert!(matches!(
        holder.reload(&catalog(), now, true),
        Reload::Failed(_)
    ));
    assert!(holder.status().last_reload_error.is_some());
    std::fs::remove_dir_all(&dir).ok();
}
