//! Fault injection and the request log.
//!
//! A test adds [`Fault`] rules through the server handle; each request is
//! matched against them by verb, resource and name. Latency rules delay the
//! request and let it continue; the first matching error or drop rule decides
//! the response. A rule with `times(n)` retires after `n` matches.

use std::time::Duration;

/// An API verb as RBAC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET of one object (also discovery and `/version`).
    Get,
    /// GET of a collection.
    List,
    /// GET with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH (including server-side apply).
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// The RBAC name: `get`, `list`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// What a matching fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Respond with this code and the real server's `Status` body for it
    /// (500 InternalError, 503 ServiceUnavailable, 504 Timeout, 429
    /// TooManyRequests, ...). `retry_after` adds `Retry-After` and
    /// `details.retryAfterSeconds`.
    Status {
        /// HTTP status code.
        code: u16,
        /// Seconds to wait, for 429 and 503.
        retry_after: Option<u64>,
    },
    /// 403 Forbidden as RBAC words it, for `user`.
    Forbidden {
        /// The user named in the message.
        user: String,
    },
    /// Wait this long, then handle the request normally.
    Latency(Duration),
    /// Close the connection without sending a response.
    Drop,
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Only requests with this verb (any when None).
    pub verb: Option<Verb>,
    /// Only requests for this resource plural, e.g. `configmaps` (any when None).
    pub resource: Option<String>,
    /// Only requests naming this object (any when None).
    pub name: Option<String>,
    /// How many more requests it applies to (forever when None).
    pub times: Option<u32>,
    /// What it does.
    pub action: FaultAction,
}

impl Fault {
    fn new(action: FaultAction) -> Self {
        Fault {
            verb: None,
            resource: None,
            name: None,
            times: None,
            action,
        }
    }

    /// Respond with `code` and a realistic `Status` body.
    pub fn status(code: u16) -> Self {
        Self::new(FaultAction::Status {
            code,
            retry_after: None,
        })
    }

    /// 429 TooManyRequests with `Retry-After: seconds`.
    pub fn too_many_requests(seconds: u64) -> Self {
        Self::new(FaultAction::Status {
            code: 429,
            retry_after: Some(seconds),
        })
    }

    /// 403 Forbidden naming `user`, the verb and the resource, as RBAC does.
    pub fn forbidden(user: &str) -> Self {
        Self::new(FaultAction::Forbidden {
            user: user.to_owned(),
        })
    }

    /// Delay the request by `delay`.
    pub fn latency(delay: Duration) -> Self {
        Self::new(FaultAction::Latency(delay))
    }

    /// Drop the connection without a response.
    pub fn drop_connection() -> Self {
        Self::new(FaultAction::Drop)
    }

    /// Only for `verb`.
    pub fn on_verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Only for the resource `plural` (e.g. `namespaces`).
    pub fn on_resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.to_owned());
        self
    }

    /// Only for requests naming `name`.
    pub fn on_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Only for the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, verb: Option<Verb>, resource: Option<&str>, name: Option<&str>) -> bool {
        self.verb.is_none_or(|v| Some(v) == verb)
            && self.resource.as_deref().is_none_or(|r| Some(r) == resource)
            && self.name.as_deref().is_none_or(|n| Some(n) == name)
            && self.times != Some(0)
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// The API verb, when the path is a resource.
    pub verb: Option<Verb>,
    /// Resource plural, when the path is a resource.
    pub resource: Option<String>,
    /// Namespace in the path, if any.
    pub namespace: Option<String>,
    /// Object name in the path, if any.
    pub name: Option<String>,
    /// The `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// `Content-Type` of the request, if any.
    pub content_type: Option<String>,
}

/// Picks the faults for one request: total latency to add, then the terminal
/// action if any. Counts down the rules used.
pub fn take(
    rules: &mut Vec<Fault>,
    verb: Option<Verb>,
    resource: Option<&str>,
    name: Option<&str>,
) -> (Duration, Option<FaultAction>) {
    let mut delay = Duration::ZERO;
    let mut terminal = None;
    for rule in rules.iter_mut() {
        if !rule.matches(verb, resource, name) {
            continue;
        }
        match &rule.action {
            FaultAction::Latency(d) => delay += *d,
            action if terminal.is_none() => terminal = Some(action.clone()),
            _ => continue,
        }
        if let Some(n) = rule.times.as_mut() {
            *n -= 1;
        }
    }
    rules.retain(|r| r.times != Some(0));
    (delay, terminal)
}
