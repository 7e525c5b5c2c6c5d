//! The operator's queue and approvals pages without a browser, and the
//! environments list's cluster filter.

use chrono::Duration;
use hubwright_state::model::Role;
use hubwright_state::store::approvals::{ApprovalState, Approvers, NewApproval};
use hubwright_state::{Clock, SystemClock};
use hubwright_testkit::factory;
use hubwright_testkit::server::StatusCode;

use super::operator::Desk;

#[tokio::test]
async fn the_queue_page_shows_depth_the_oldest_due_run_and_the_workers_leases() {
    let desk = Desk::new().await;
    let store = &desk.db.store;

    let empty = desk.ops.get("/queue").await;
    assert_eq!(empty.status, StatusCode::OK);
    empty.assert_says("<h1>Queue</h1>");
    empty.assert_says("nothing is due");
    empty.assert_says("No worker holds a lease");
    empty.assert_says("No worker has started in the last day.");
    empty.assert_says("No run has been rescued.");

    factory::running_run(store, "alice", "worker-a", Duration::minutes(5)).await;
    let lost = factory::running_run(store, "bob", "worker-b", Duration::seconds(-30)).await;
    let oldest = factory::pending_run(store, "alice").await;
    factory::pending_run(store, "bob").await;
    store
        .rescue_expired("worker-c", 10, SystemClock.now())
        .await
        .unwrap();

    let page = desk.ops.get("/queue").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_says("<strong>3</strong> runs waiting for a worker");
    page.assert_says(&format!(
        "<a href=\"/runs/{oldest}\">provision of factory</a>, due for"
    ));
    page.assert_says("<code>worker-a</code>");
    page.assert_says("<strong>1</strong> run rescued since");
    page.assert_says(&format!("href=\"/runs/{lost}\""));
    page.assert_says("<code>worker-b</code>");
    page.assert_says("returned to the queue");
    page.assert_says("href=\"/runs?state=pending\"");

    let silent = hubwright_state::store::workers::WorkerStart {
        id: "worker-z",
        host: "node-3",
        pid: 7,
        version: "9.9.9",
        concurrency: 8,
        heartbeat: std::time::Duration::from_secs(10),
    };
    store
        .worker_started(&silent, SystemClock.now() - Duration::minutes(5))
        .await
        .unwrap();
    let workers = desk.ops.get("/queue").await;
    workers.assert_says("<th scope=\"row\"><code>worker-z</code></th>");
    workers.assert_says("<strong class=\"warning\">silent</strong>");
    workers.assert_says("1 silent worker:");
    workers.assert_says("<code>node-3</code> pid 7");
    desk.finish().await;
}

#[tokio::test]
async fn an_operator_approves_through_the_form_and_the_requester_cannot() {
    let desk = Desk::new().await;
    let store = &desk.db.store;
    let run = factory::pending_run(store, "alice").await;
    let now = SystemClock.now();
    let approvers = Approvers {
        role: Some(Role::Operator),
        groups: Vec::new(),
    };
    let approval = store
        .open_approval(
            &NewApproval {
                run_id: run,
                step_idx: 1,
                step_name: "second",
                environment_id: None,
                requested_by: "alice",
                approvers: &approvers,
                allow_self_approval: false,
                deadline: now + Duration::hours(1),
            },
            now,
        )
        .await
        .unwrap();
    let decide = format!("/approvals/{}/decide", approval.id);

    let waiting = desk.ops.get("/approvals").await;
    assert_eq!(waiting.status, StatusCode::OK);
    waiting.assert_says("alice asks to pass step second");
    waiting.assert_says(&format!("action=\"/approvals/{}/decide\"", approval.id));
    waiting.assert_says("the operator role or a higher one, never the requester");
    waiting.assert_says("name=\"decision\" value=\"approve\"");
    let own = desk.alice.get("/approvals").await;
    own.assert_says("alice asks to pass step second");
    own.assert_says("You cannot decide this one");
    assert!(!own.html.contains(&decide), "no form for the requester");

    // A comment the API refuses is shown beside its field, kept as typed.
    let long = "x".repeat(2001);
    let refused = desk
        .ops
        .post(&decide, &[("decision", "approve"), ("comment", &long)])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_says(&format!(
        "aria-invalid=\"true\" aria-describedby=\"comment-{}-error\"",
        approval.id
    ));
    refused.assert_says("must be at most 2000 characters");
    refused.assert_says(&format!(">{long}</textarea>"));
    assert_eq!(
        store.approval(approval.id).await.unwrap().unwrap().state,
        ApprovalState::Pending
    );

    let approved = desk
        .ops
        .post(
            &decide,
            &[("decision", "approve"), ("comment", "budget confirmed")],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.html);
    assert_eq!(
        approved.location.as_deref(),
        Some("/approvals?done=approved")
    );
    let decided = store.approval(approval.id).await.unwrap().unwrap();
    assert_eq!(decided.state, ApprovalState::Approved);
    assert_eq!(decided.decided_by.as_deref(), Some("ops"));
    assert_eq!(decided.comment.as_deref(), Some("budget confirmed"));
    let after = desk.ops.get("/approvals?done=approved").await;
    after.assert_says("Approved: the run goes on.");
    after.assert_says("Nothing waits for a decision.");
    let history = desk.ops.get("/approvals?state=approved").await;
    history.assert_says("budget confirmed");

    let again = desk.ops.post(&decide, &[("decision", "deny")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    again.assert_says("was already approved by ops");
    let nonsense = desk.ops.post(&decide, &[("decision", "maybe")]).await;
    assert_eq!(nonsense.status, StatusCode::BAD_REQUEST);
    nonsense.assert_says("decision: must be approve or deny");
    desk.finish().await;
}

#[tokio::test]
async fn the_environments_filter_form_keeps_its_cluster() {
    let desk = Desk::new().await;
    let page = desk.ops.get("/environments?cluster=east").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_says("name=\"cluster\" value=\"east\"");
    page.assert_says("No environment matches these filters.");
    desk.finish().await;
}
