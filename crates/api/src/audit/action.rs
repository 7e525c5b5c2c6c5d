//! Naming an audited call: the action (`environment.create`) and its
//! target from the route template, the answer and the path.

use axum::http::Method;
use serde_json::Value;

/// What a route does to what: the action's name and the kind of its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// `thing.verb`, e.g. `environment.create`.
    pub name: String,
    /// `environment`, `run`, `token`, ...
    pub target_kind: String,
    /// The first segment of the collection's path, e.g. `environments`.
    collection: String,
}

impl Action {
    /// The action of `method` on the route template `route` (e.g. `POST
    /// /v1/environments/{id}/extend` → `environment.extend`). The thing is
    /// the collection in the singular; the verb is the route's last fixed
    /// segment after it, or the method's (POST create, DELETE delete, PUT
    /// replace, PATCH update). Revoking is what DELETE does to a token.
    pub fn of(method: &Method, route: &str) -> Self {
        let mut fixed = route
            .trim_start_matches("/v1/")
            .split('/')
            .filter(|s| !s.is_empty() && !s.starts_with('{'));
        let collection = fixed.next().unwrap_or("api").to_owned();
        let thing = collection
            .strip_suffix("ies")
            .map(|stem| format!("{stem}y"))
            .or_else(|| collection.strip_suffix('s').map(str::to_owned))
            .unwrap_or_else(|| collection.clone());
        let verb = match (fixed.next_back(), method.as_str(), thing.as_str()) {
            (Some(verb), _, _) => verb.replace('-', "_"),
            (None, "DELETE", "token") => "revoke".to_owned(),
            (None, "POST", _) => "create".to_owned(),
            (None, "DELETE", _) => "delete".to_owned(),
            (None, "PUT", _) => "replace".to_owned(),
            (None, "PATCH", _) => "update".to_owned(),
            (None, other, _) => other.to_ascii_lowercase(),
        };
        Self {
            name: format!("{thing}.{verb}"),
            target_kind: thing,
            collection,
        }
    }

    /// The target's id: where the answer points (`Location` into the same
    /// collection), the path's id when it is a UUID, the answer's
    /// `<thing>_id` or `id`, and last the path's segment as given (a name).
    pub(super) fn target(
        &self,
        location: Option<&str>,
        path_id: Option<&str>,
        body: &Value,
    ) -> Option<String> {
        let prefix = format!("/v1/{}/", self.collection);
        if let Some(id) = location
            .and_then(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split('/').next())
            .filter(|id| !id.is_empty())
        {
            return Some(id.to_owned());
        }
        if let Some(id) = path_id.filter(|id| uuid::Uuid::parse_str(id).is_ok()) {
            return Some(id.to_owned());
        }
        let field = format!("{}_id", self.target_kind);
        for key in [field.as_str(), "id"] {
            match &body[key] {
                Value::String(id) => return Some(id.clone()),
                Value::Number(id) => return Some(id.to_string()),
                _ => {}
            }
        }
        path_id.map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
    }
}

/// The segment of `path` where `route` has its `{…}` parameter.
pub(super) fn path_parameter<'a>(route: &str, path: &'a str) -> Option<&'a str> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(template, _)| template.starts_with('{'))
        .map(|(_, segment)| segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_are_named_from_the_route_template() {
        let name = |method: Method, route: &str| Action::of(&method, route).name;
        assert_eq!(name(Method::POST, "/v1/environments"), "environment.create");
        assert_eq!(
            name(Method::POST, "/v1/environments/{id}/extend"),
            "environment.extend"
        );
        assert_eq!(
            name(Method::DELETE, "/v1/environments/{id}"),
            "environment.delete"
        );
        assert_eq!(name(Method::POST, "/v1/runs/{id}/retry"), "run.retry");
        assert_eq!(name(Method::POST, "/v1/runs/{id}/cancel"), "run.cancel");
        assert_eq!(name(Method::POST, "/v1/tokens"), "token.create");
        assert_eq!(name(Method::DELETE, "/v1/tokens/{id}"), "token.revoke");
        assert_eq!(
            name(Method::POST, "/v1/approvals/{id}/approve"),
            "approval.approve"
        );
        assert_eq!(name(Method::POST, "/v1/policy/reload"), "policy.reload");
        assert_eq!(name(Method::POST, "/v1/policies"), "policy.create");
    }

    #[test]
    fn the_target_is_where_the_answer_points_then_an_id_then_the_name_given() {
        let create = Action::of(&Method::POST, "/v1/environments");
        assert_eq!(
            create.target(Some("/v1/environments/0193-a"), None, &Value::Null),
            Some("0193-a".to_owned())
        );
        let delete = Action::of(&Method::DELETE, "/v1/environments/{id}");
        let id = "0193a0c4-5f6e-7d8a-9b0c-1d2e3f4a5b6c";
        assert_eq!(
            delete.target(
                Some("/v1/runs/0193-r"),
                Some("alice-lab"),
                &json!({"environment_id": id, "run_id": "0193-r"})
            ),
            Some(id.to_owned()),
            "a Location into another collection is not the target"
        );
        assert_eq!(
            delete.target(
                None,
                Some("alice%2Dlab"),
                &json!({"type": "/docs/problems/not-found"})
            ),
            Some("alice-lab".to_owned()),
            "a refusal names what the caller named"
        );
        let revoke = Action::of(&Method::DELETE, "/v1/tokens/{id}");
        assert_eq!(
            revoke.target(None, Some(id), &json!({"id": "other"})),
            Some(id.to_owned())
        );
    }

    #[test]
    fn the_path_parameter_is_found_by_the_template() {
        assert_eq!(
            path_parameter("/v1/runs/{id}/retry", "/v1/runs/abc/retry"),
            Some("abc")
        );
        assert_eq!(path_parameter("/v1/tokens", "/v1/tokens"), None);
    }
}
