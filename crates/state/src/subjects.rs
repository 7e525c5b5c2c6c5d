//! Who a caller can be. A principal's subject is the name hubwright records as
//! owner, creator and actor, so the names hubwright's own actors write into
//! the same columns (the TTL scheduler, the bootstrap path, rows from before
//! runs had a creator) are reserved: a token or an OpenID user with one of
//! those names would read and act as that actor.

use crate::store::approvals::APPROVAL_ACTOR;
use crate::store::expiry::SCHEDULER_ACTOR;
use crate::store::pool_fill::POOL_ACTOR;
use crate::store::tokens::BOOTSTRAP_ACTOR;

/// Who the migration that added `runs.created_by` names for older runs.
pub const SYSTEM_ACTOR: &str = "system";

/// Names no caller may have: hubwright's own actors (compared without regard
/// to case). `cli` starts the runs of `hubwright admin run` when `$USER` is
/// unset (runs without an environment belong to who started them); `worker`
/// is the worker id's stem when the host has no name.
pub const RESERVED_SUBJECTS: &[&str] = &[
    SCHEDULER_ACTOR,
    BOOTSTRAP_ACTOR,
    APPROVAL_ACTOR,
    SYSTEM_ACTOR,
    POOL_ACTOR,
    "cli",
    "hubwright",
    "worker",
];

/// Longest subject, in characters.
pub const MAX_SUBJECT: usize = 200;

/// Whether `subject` names one of hubwright's own actors, or a warm pool's
/// owner (`pool:<template>`): a caller by that name would see and take the
/// pool's unclaimed members.
pub fn is_reserved(subject: &str) -> bool {
    let subject = subject.trim();
    crate::workflow::is_pool_owner(&subject.to_ascii_lowercase())
        || RESERVED_SUBJECTS
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(subject))
}

/// The rule `subject` breaks as a caller's name, if any: 1 to
/// [`MAX_SUBJECT`] characters, no control characters (Postgres cannot store
/// a NUL), not a reserved actor.
pub fn subject_rule(subject: &str) -> Option<String> {
    let subject = subject.trim();
    let length = subject.chars().count();
    if length == 0 || length > MAX_SUBJECT {
        return Some(format!("must be 1 to {MAX_SUBJECT} characters"));
    }
    if subject.chars().any(char::is_control) {
        return Some("must not contain control characters (such as NUL, U+0000)".to_owned());
    }
    if is_reserved(subject) {
        return Some(format!(
            "`{subject}` is reserved for hubwright's own actors ({}, and `pool:` for warm pools); choose another name",
            RESERVED_SUBJECTS.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_actors_and_unstorable_names_are_not_subjects() {
        assert_eq!(subject_rule("alice"), None);
        assert_eq!(subject_rule("ci-bot@example.org"), None);
        for name in [
            "scheduler",
            "Scheduler",
            " bootstrap ",
            "system",
            "hubwright",
            "pool",
            "pool:jupyterhub",
            "Pool:JupyterHub",
        ] {
            let rule = subject_rule(name).unwrap_or_default();
            assert!(rule.contains("reserved"), "{name}: {rule}");
        }
        assert!(subject_rule("a\0b").is_some_and(|r| r.contains("NUL")));
        assert!(subject_rule("").is_some());
        assert!(subject_rule(&"x".repeat(201)).is_some());
        assert_eq!(
            subject_rule(&"é".repeat(200)),
            None,
            "characters, not bytes"
        );
    }
}
