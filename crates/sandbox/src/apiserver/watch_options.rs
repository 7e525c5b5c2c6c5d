//! A watch's query parameters, validated as `ValidateListOptions` does.

use std::collections::HashMap;
use std::time::Duration;

use super::paths::ResourceTarget;
use super::resources::ResourceType;
use super::selector::Selector;
use super::status::{ApiError, ApiResult, Cause};

/// The annotation on the BOOKMARK that ends a watch's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// What a watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// The resource type watched.
    pub rt: &'static ResourceType,
    /// Only this namespace, when set.
    pub namespace: Option<String>,
    /// Label and field selector.
    pub selector: Selector,
    /// Start after this resourceVersion; None (or "0") sends the current state first.
    pub since: Option<u64>,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// How often to send bookmarks when allowed.
    pub bookmark_interval: Duration,
    /// `sendInitialEvents`: `true` starts with the current state (whatever
    /// the resourceVersion, which `NotOlderThan` only bounds from below) and
    /// a BOOKMARK annotated [`INITIAL_EVENTS_END`]; `false` starts at the
    /// current state without it.
    pub send_initial_events: Option<bool>,
}

fn forbidden(field: &str, message: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden",
        message: format!("Forbidden: {message}"),
        field: field.to_owned(),
    }
}

fn bool_param(query: &HashMap<String, String>, name: &str) -> ApiResult<Option<bool>> {
    match query.get(name).map(String::as_str) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(&format!(
            "strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// A list may not ask for initial events (422, as the real server answers).
pub fn forbid_initial_events_on_list(query: &HashMap<String, String>) -> ApiResult<()> {
    if bool_param(query, "sendInitialEvents")? == Some(true) {
        return Err(ApiError::options_invalid(
            "ListOptions",
            &[forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            )],
        ));
    }
    Ok(())
}

/// The query of a watch on `t`: a watch on an object's path (deprecated) is
/// a watch with a name selector.
pub(super) fn by_name(
    t: &ResourceTarget,
    query: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut query = query.clone();
    if let Some(name) = &t.name {
        let by_name = format!("metadata.name={name}");
        let fields = match query.get("fieldSelector").filter(|f| !f.is_empty()) {
            Some(f) => format!("{f},{by_name}"),
            None => by_name,
        };
        query.insert("fieldSelector".to_owned(), fields);
    }
    query
}

impl WatchRequest {
    /// The watch `query` asks for on `t`, with its `selector` already parsed.
    pub(super) fn from_query(
        t: &ResourceTarget,
        query: &HashMap<String, String>,
        selector: Selector,
        bookmark_interval: Duration,
    ) -> ApiResult<Self> {
        let since = match query.get("resourceVersion").map(String::as_str) {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                ApiError::bad_request(&format!(
                    "invalid resource version: strconv.ParseUint: parsing {rv:?}: invalid syntax"
                ))
            })?),
        };
        let send_initial_events = bool_param(query, "sendInitialEvents")?;
        let matching = query
            .get("resourceVersionMatch")
            .map(String::as_str)
            .filter(|m| !m.is_empty());
        let mut causes = Vec::new();
        if send_initial_events.is_some() && matching != Some("NotOlderThan") {
            causes.push(forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if let Some(m) = matching {
            if send_initial_events.is_none() {
                causes.push(forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != "NotOlderThan" {
                causes.push(Cause {
                    reason: "FieldValueNotSupported",
                    message: format!(
                        "Unsupported value: {m:?}: supported values: \"NotOlderThan\""
                    ),
                    field: "resourceVersionMatch".to_owned(),
                });
            }
        }
        if !causes.is_empty() {
            return Err(ApiError::options_invalid("ListOptions", &causes));
        }
        Ok(WatchRequest {
            rt: t.rt,
            namespace: t.namespace.clone(),
            selector,
            since,
            timeout: query
                .get("timeoutSeconds")
                .and_then(|s| s.parse().ok())
                .map(Duration::from_secs),
            bookmarks: bool_param(query, "allowWatchBookmarks")?.unwrap_or(false),
            bookmark_interval,
            send_initial_events,
        })
    }
}
