//! `/v1/approvals`: the requests an `approval` step waits on. Approvers list
//! what waits for them, and approve or deny with a comment; the decision
//! wakes the run at once (see `hubwright_worker::approval`).
//!
//! Who may decide: a caller with the role the step names (or a higher one)
//! or in one of the groups it names ([`Caller::groups`]); never the
//! requester (the environment's owner) unless the step sets
//! `allow_self_approval`. Who may see one: those who may decide it, its
//! requester, and operators; to anyone else it does not exist (404).

use axum::Json;
use axum::extract::State;
use hubwright_state::store::approvals::{
    Approval, ApprovalFilter, ApprovalState, Decision, Viewer,
};
use serde::de::IntoDeserializer;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem, ProblemDocument, json_pointer};
use crate::json::{ApiPath, ApiQuery, OptionalJson};

/// The longest comment, in characters.
const MAX_COMMENT: usize = 2000;

/// The `/v1/approvals` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(approve))
        .routes(routes!(deny))
}

/// An approval, and whether the caller may decide it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApprovalView {
    #[serde(flatten)]
    approval: Approval,
    /// The caller may approve or deny it now: it is pending, they are an
    /// approver, and it is not their own request (or the step allows that).
    may_decide: bool,
}

impl ApprovalView {
    fn of(approval: Approval, caller: &Caller) -> Self {
        let may_decide =
            approval.state == ApprovalState::Pending && refusal(&approval, caller).is_none();
        Self {
            approval,
            may_decide,
        }
    }
}

/// Why `caller` may not decide `approval`, if they may not.
fn refusal(approval: &Approval, caller: &Caller) -> Option<String> {
    if !approval.approvers.include(caller.0.role, caller.groups()) {
        let groups = if caller.groups().is_empty() {
            "in no group".to_owned()
        } else {
            format!("in {}", caller.groups().join(", "))
        };
        return Some(format!(
            "approval {} needs approval by {}; {} has the {} role and is {groups}",
            approval.id,
            approval.approvers,
            caller.subject(),
            caller.0.role
        ));
    }
    if approval.requested_by == caller.subject() && !approval.allow_self_approval {
        return Some(format!(
            "nobody approves their own request: {} requested approval {}, and step `{}` does not set allow_self_approval",
            approval.requested_by, approval.id, approval.step_name
        ));
    }
    None
}

/// Whether `caller` may see `approval`.
fn may_see(approval: &Approval, caller: &Caller) -> bool {
    caller.is_operator()
        || approval.requested_by == caller.subject()
        || approval.approvers.include(caller.0.role, caller.groups())
}

/// An approval the caller may see; others are 404, so they do not leak.
async fn visible(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<Approval> {
    match state.store.approval(id).await? {
        Some(approval) if may_see(&approval, caller) => Ok(approval),
        _ => Err(Problem::not_found(format!("no approval {id}"))),
    }
}

/// `?state=&cursor=&limit=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalListQuery {
    /// Only approvals in this state (default `pending`); `all` for any.
    #[param(value_type = Option<String>, example = "pending")]
    state: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<Uuid>)]
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// A page of approvals, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApprovalPage {
    items: Vec<ApprovalView>,
    /// Pass as `cursor` for the next (older) page; null on the last one.
    next_cursor: Option<Uuid>,
}

fn parse_state(text: &str) -> ApiResult<Option<ApprovalState>> {
    if text == "all" {
        return Ok(None);
    }
    ApprovalState::deserialize(text.into_deserializer())
        .map(Some)
        .map_err(|_: serde::de::value::Error| {
            Problem::invalid_parameter(
                "state",
                &format!("must be one of pending, approved, denied, expired, all (got `{text}`)"),
            )
        })
}

/// List approvals, newest first: by default the pending ones the caller may
/// decide or asked for (operators: all).
#[utoipa::path(get, path = "/v1/approvals", operation_id = "list_approvals", tag = "approvals", params(ApprovalListQuery),
    responses((status = 200, body = ApprovalPage), (status = 422, body = ProblemDocument,
        description = "A filter's value does not parse; `detail` names the parameter and the rule")),
    security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ApprovalListQuery>,
) -> ApiResult<Json<ApprovalPage>> {
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                Problem::invalid_parameter("limit", "must be a whole number from 1 to 200")
            })?,
    };
    let cursor = query
        .cursor
        .as_deref()
        .map(|text| {
            text.parse::<Uuid>().map_err(|_| {
                Problem::invalid_parameter("cursor", &format!("must be a UUID (got `{text}`)"))
            })
        })
        .transpose()?;
    let filter = ApprovalFilter {
        state: match query.state.as_deref() {
            None => Some(ApprovalState::Pending),
            Some(text) => parse_state(text)?,
        },
        viewer: (!caller.is_operator()).then(|| Viewer {
            subject: caller.subject().to_owned(),
            role: caller.0.role,
            groups: caller.groups().to_vec(),
        }),
    };
    // One extra row tells whether another page follows.
    let mut items = state
        .store
        .list_approvals(&filter, cursor, limit + 1)
        .await?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > page;
    items.truncate(page);
    let next_cursor = if more {
        items.last().map(|a| a.id)
    } else {
        None
    };
    Ok(Json(ApprovalPage {
        items: items
            .into_iter()
            .map(|a| ApprovalView::of(a, &caller))
            .collect(),
        next_cursor,
    }))
}

/// One approval.
#[utoipa::path(get, path = "/v1/approvals/{id}", operation_id = "get_approval", tag = "approvals", params(("id" = Uuid, Path)),
    responses((status = 200, body = ApprovalView), (status = 404, body = ProblemDocument)),
    security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ApprovalView>> {
    let approval = visible(&state, &caller, id).await?;
    Ok(Json(ApprovalView::of(approval, &caller)))
}

/// Body of a decision.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why; shown on the run's timeline, and in the run's error on a denial.
    #[serde(default)]
    #[schema(example = "GPU budget confirmed for this quarter")]
    comment: Option<String>,
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    decision: Decision,
    request: DecisionRequest,
) -> ApiResult<Json<ApprovalView>> {
    let comment = request
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(comment) = &comment {
        let rule = if comment.chars().count() > MAX_COMMENT {
            Some(format!("must be at most {MAX_COMMENT} characters"))
        } else if comment.chars().any(|c| c.is_control() && c != '\n') {
            Some("must not contain control characters other than newlines".to_owned())
        } else {
            None
        };
        if let Some(rule) = rule {
            return Err(Problem::invalid_at(
                "comment",
                json_pointer(["comment"]),
                &rule,
            ));
        }
    }
    let approval = visible(state, caller, id).await?;
    if let Some(why) = refusal(&approval, caller) {
        return Err(Problem::forbidden(why));
    }
    let decided = state
        .store
        .decide_approval(
            id,
            decision,
            caller.subject(),
            comment.as_deref(),
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| Problem::not_found(format!("no approval {id}")))?;
    Ok(Json(ApprovalView::of(decided, caller)))
}

/// Approve: the step succeeds and the run goes on.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", operation_id = "approve", tag = "approvals", params(("id" = Uuid, Path)),
    request_body(content = Option<DecisionRequest>),
    responses((status = 200, body = ApprovalView),
        (status = 403, body = ProblemDocument, description = "The caller is not an approver, or it is their own request"),
        (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument, description = "Already decided, or the deadline passed")),
    security(("bearer" = [])))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(request): OptionalJson<DecisionRequest>,
) -> ApiResult<Json<ApprovalView>> {
    decide(&state, &caller, id, Decision::Approve, request).await
}

/// Deny: the run fails and the environment is torn down.
#[utoipa::path(post, path = "/v1/approvals/{id}/deny", operation_id = "deny", tag = "approvals", params(("id" = Uuid, Path)),
    request_body(content = Option<DecisionRequest>),
    responses((status = 200, body = ApprovalView),
        (status = 403, body = ProblemDocument, description = "The caller is not an approver, or it is their own request"),
        (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument, description = "Already decided, or the deadline passed")),
    security(("bearer" = [])))]
async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(request): OptionalJson<DecisionRequest>,
) -> ApiResult<Json<ApprovalView>> {
    decide(&state, &caller, id, Decision::Deny, request).await
}

#[cfg(test)]
mod tests {
    use hubwright_state::model::{Principal, Role};
    use hubwright_state::store::approvals::Approvers;

    use super::*;

    fn approval(approvers: Approvers, allow_self_approval: bool) -> Approval {
        Approval {
            id: Uuid::nil(),
            run_id: Uuid::nil(),
            step_idx: 1,
            step_name: "approve".to_owned(),
            environment_id: None,
            requested_by: "alice".to_owned(),
            approvers,
            allow_self_approval,
            state: ApprovalState::Pending,
            decided_by: None,
            comment: None,
            deadline: chrono::DateTime::UNIX_EPOCH,
            created_at: chrono::DateTime::UNIX_EPOCH,
            decided_at: None,
        }
    }

    fn caller(subject: &str, role: Role, groups: &[&str]) -> Caller {
        Caller(Principal {
            subject: subject.to_owned(),
            role,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        })
    }

    #[test]
    fn members_of_a_named_group_decide_and_others_are_told_who_may() {
        let gpu = approval(
            Approvers {
                role: None,
                groups: vec!["gpu-approvers".to_owned()],
            },
            false,
        );
        assert!(refusal(&gpu, &caller("bob", Role::Developer, &["gpu-approvers"])).is_none());
        let why = refusal(&gpu, &caller("carol", Role::Operator, &["physics"])).unwrap();
        assert!(why.contains("a member of gpu-approvers"), "{why}");
        assert!(
            why.contains("carol has the operator role and is in physics"),
            "{why}"
        );
    }

    #[test]
    fn a_role_admits_that_role_and_higher_but_never_the_requester_unless_allowed() {
        let ops = Approvers {
            role: Some(Role::Operator),
            groups: Vec::new(),
        };
        let strict = approval(ops.clone(), false);
        assert!(refusal(&strict, &caller("erin", Role::Admin, &[])).is_none());
        assert!(refusal(&strict, &caller("dave", Role::Developer, &[])).is_some());
        let own = refusal(&strict, &caller("alice", Role::Operator, &[])).unwrap();
        assert!(own.contains("nobody approves their own request"), "{own}");
        let lenient = approval(ops, true);
        assert!(refusal(&lenient, &caller("alice", Role::Operator, &[])).is_none());
    }
}
