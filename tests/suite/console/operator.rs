//! The operator's pages without a browser: the run list and its filters, a
//! run's steps, attempts, outputs and errors, retry from a chosen step and
//! cancel through the forms, and what a developer gets instead. The queue
//! and approvals pages are in `operator_queue`.

use hubwright_state::model::{Role, RunState, StepState};
use hubwright_testkit::console::ConsoleUser;
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, factory, scratch_dir};

/// A console over runs from the factory (no templates, no worker), with an
/// operator and a developer signed in.
pub(super) struct Desk {
    pub db: TestDatabase,
    pub server: ApiServer,
    /// `ops`, an operator.
    pub ops: ConsoleUser,
    /// `alice`, a developer.
    pub alice: ConsoleUser,
}

impl Desk {
    pub async fn new() -> Self {
        let db = TestDatabase::create().await;
        let server = ApiServer::start(&db, &scratch_dir("no-workflows"), &[]).await;
        let ops =
            ConsoleUser::sign_in(&server, &token(&db.store, "ops", Role::Operator).await).await;
        let alice =
            ConsoleUser::sign_in(&server, &token(&db.store, "alice", Role::Developer).await).await;
        Self {
            db,
            server,
            ops,
            alice,
        }
    }

    pub async fn finish(self) {
        drop(self.server);
        self.db.drop_now().await;
    }
}

#[tokio::test]
async fn the_run_list_filters_by_state_owner_and_time_and_links_every_run() {
    let desk = Desk::new().await;
    let store = &desk.db.store;
    let failed = factory::failed_run(store, "bob", "boom").await;
    let pending = factory::pending_run(store, "alice").await;

    let all = desk.ops.get("/runs").await;
    assert_eq!(all.status, StatusCode::OK);
    all.assert_says("<h1>Runs</h1>");
    all.assert_says(&format!("href=\"/runs/{failed}\""));
    all.assert_says(&format!("href=\"/runs/{pending}\""));
    all.assert_says("1 of 2");

    let only_failed = desk.ops.get("/runs?state=failed").await;
    only_failed.assert_says(&format!("href=\"/runs/{failed}\""));
    assert!(!only_failed.html.contains(&pending.to_string()));
    assert!(
        only_failed
            .html
            .contains("<option value=\"failed\" selected>"),
        "the filter keeps its value"
    );
    let alices = desk.ops.get("/runs?owner=alice&since=1h").await;
    alices.assert_says(&format!("href=\"/runs/{pending}\""));
    assert!(!alices.html.contains(&failed.to_string()));
    let none = desk.ops.get("/runs?template=nothing-like-it").await;
    none.assert_says("No run matches these filters.");

    let bad = desk.ops.get("/runs?since=yesterday-ish").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_says("aria-invalid=\"true\" aria-describedby=\"f-since-error\"");
    bad.assert_says("id=\"f-since-error\"");
    bad.assert_says("must be an RFC 3339 timestamp");
    bad.assert_says("value=\"yesterday-ish\"");

    // A developer's list is their own, whatever they ask.
    let own = desk.alice.get("/runs").await;
    own.assert_says("<h1>My runs</h1>");
    own.assert_says(&format!("href=\"/runs/{pending}\""));
    assert!(!own.html.contains(&failed.to_string()));
    desk.finish().await;
}

#[tokio::test]
async fn a_run_page_shows_every_step_with_attempts_outputs_errors_and_the_timeline() {
    let desk = Desk::new().await;
    let store = &desk.db.store;
    let run =
        factory::failed_at_second_step(store, "alice", "quota exceeded in lab-alice", 2).await;

    let page = desk.ops.get(&format!("/runs/{run}")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_says("1. first");
    page.assert_says("2. second");
    page.assert_says("2 attempts");
    page.assert_says("&quot;namespace&quot;: &quot;lab-alice&quot;");
    page.assert_says("Permanent error:</strong> quota exceeded in lab-alice");
    page.assert_says("Trying again cannot help until the cause is fixed");
    page.assert_says("&quot;status&quot;: 403");
    page.assert_says("attempt 1: connection refused");
    page.assert_says("step retry scheduled");
    page.assert_says("Step 2 of 2 (second)");
    // Retry from the failed step or the one before; the failed one chosen.
    page.assert_says("<option value=\"2\" selected>2. second (failed)</option>");
    page.assert_says("<option value=\"1\">1. first</option>");
    page.assert_says("Retry run");
    assert!(!page.html.contains("Cancel run"), "a failed run has ended");
    assert!(
        !page.html.contains("data-live-events"),
        "an ended run is not followed live"
    );

    // The owner sees it, without the operator's forms; another does not.
    let own = desk.alice.get(&format!("/runs/{run}")).await;
    assert_eq!(own.status, StatusCode::OK);
    own.assert_says("quota exceeded in lab-alice");
    assert!(!own.html.contains("Retry run"));
    let bob = ConsoleUser::sign_in(&desk.server, &token(store, "bob", Role::Developer).await).await;
    let hidden = bob.get(&format!("/runs/{run}")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let nonsense = desk.ops.get("/runs/not-a-run").await;
    assert_eq!(nonsense.status, StatusCode::NOT_FOUND);
    desk.finish().await;
}

#[tokio::test]
async fn a_running_run_is_followed_live_and_its_region_and_stream_are_served() {
    let desk = Desk::new().await;
    let store = &desk.db.store;
    let running =
        factory::running_run(store, "alice", "worker-a", chrono::Duration::minutes(5)).await;
    let page = desk.ops.get(&format!("/runs/{running}")).await;
    page.assert_says(&format!("data-live-fragment=\"/runs/{running}/steps\""));
    page.assert_says(&format!("data-live-events=\"/runs/{running}/events?after="));
    page.assert_says("held by <code>worker-a</code>");
    page.assert_says("Cancel run");

    let region = desk.ops.get(&format!("/runs/{running}/steps")).await;
    assert_eq!(region.status, StatusCode::OK);
    region.assert_says("<h2 id=\"steps-heading\">Steps</h2>");
    assert!(!region.html.contains("<html"), "only the region");

    // An ended run's stream sends its events unnamed, then `end`.
    let failed = factory::failed_run(store, "alice", "boom").await;
    let stream = desk.ops.get(&format!("/runs/{failed}/events")).await;
    assert_eq!(stream.status, StatusCode::OK);
    stream.assert_says("data: {");
    stream.assert_says("\"kind\":\"step_started\"");
    assert!(
        !stream.html.contains("event: step_started"),
        "{}",
        stream.html
    );
    assert!(
        stream.html.ends_with("event: end\ndata: {}\n\n"),
        "{}",
        stream.html
    );
    desk.finish().await;
}

#[tokio::test]
async fn retry_from_a_chosen_step_through_the_form_puts_the_run_back_in_the_queue() {
    let desk = Desk::new().await;
    let store = &desk.db.store;
    let run = factory::failed_at_second_step(store, "alice", "quota exceeded", 1).await;
    let retry = format!("/runs/{run}/retry");

    let too_far = desk.ops.post(&retry, &[("from_step", "3")]).await;
    assert_eq!(too_far.status, StatusCode::UNPROCESSABLE_ENTITY);
    too_far.assert_says("aria-invalid=\"true\"");
    too_far.assert_says("id=\"from_step-error\" class=\"field-error\">must be a step name (first, second) or a number from 1 to 2");
    assert_eq!(store.run(run).await.unwrap().state, RunState::Failed);

    let retried = desk.ops.post(&retry, &[("from_step", "1")]).await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.html);
    let back = retried.location.unwrap();
    assert_eq!(back, format!("/runs/{run}?done=retried&from=1"));
    let moved = store.run(run).await.unwrap();
    assert_eq!(moved.state, RunState::Pending);
    assert_eq!(moved.current_step, 0, "it resumes at the chosen step");
    let steps = store.steps(run).await.unwrap();
    assert_eq!(steps[0].state, StepState::Pending);
    assert!(steps[0].output.is_none(), "the chosen step starts over");
    let events = store.events(run, 0, 100).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "run_retried" && e.actor == "ops")
    );

    let after = desk.ops.get(&back).await;
    after.assert_says("Retried: the run resumes at step 1.");
    after.assert_says("Cancel run");

    // Retrying what is no longer failed is said on the page.
    let again = desk.ops.post(&retry, &[("from_step", "1")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    again.assert_says("role=\"alert\"");
    again.assert_says("only failed runs");
    desk.finish().await;
}

#[tokio::test]
async fn cancel_through_the_form_ends_a_pending_run_and_asks_a_running_one_to_stop() {
    let desk = Desk::new().await;
    let store = &desk.db.store;
    let running =
        factory::running_run(store, "alice", "worker-a", chrono::Duration::minutes(5)).await;
    let pending = factory::pending_run(store, "alice").await;

    let cancelled = desk.ops.post(&format!("/runs/{pending}/cancel"), &[]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    assert_eq!(
        cancelled.location.as_deref(),
        Some(format!("/runs/{pending}?done=cancelled").as_str())
    );
    assert_eq!(store.run(pending).await.unwrap().state, RunState::Cancelled);
    let page = desk
        .ops
        .get(&format!("/runs/{pending}?done=cancelled"))
        .await;
    page.assert_says("Cancelled: no further step runs.");
    assert!(!page.html.contains("Cancel run"));

    let requested = desk.ops.post(&format!("/runs/{running}/cancel"), &[]).await;
    assert_eq!(
        requested.location.as_deref(),
        Some(format!("/runs/{running}?done=cancel_requested").as_str())
    );
    let run = store.run(running).await.unwrap();
    assert_eq!(run.state, RunState::Running, "the worker stops it");
    assert!(run.cancel_requested_at.is_some());
    let page = desk.ops.get(&format!("/runs/{running}")).await;
    page.assert_says("cancellation requested");
    assert!(!page.html.contains("Cancel run"), "asked once is enough");

    let again = desk.ops.post(&format!("/runs/{pending}/cancel"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    again.assert_says("only pending, waiting or running runs can be cancelled");
    desk.finish().await;
}

#[tokio::test]
async fn a_developer_is_refused_operator_actions_with_the_not_allowed_page() {
    let desk = Desk::new().await;
    let store = &desk.db.store;
    let failed = factory::failed_run(store, "alice", "boom").await;
    let pending = factory::pending_run(store, "alice").await;

    let retry = desk
        .alice
        .post(&format!("/runs/{failed}/retry"), &[("from_step", "1")])
        .await;
    assert_eq!(retry.status, StatusCode::FORBIDDEN);
    retry.assert_says("Not allowed");
    retry.assert_says("this needs the operator role; alice is a developer");
    assert_eq!(store.run(failed).await.unwrap().state, RunState::Failed);
    let cancel = desk
        .alice
        .post(&format!("/runs/{pending}/cancel"), &[])
        .await;
    assert_eq!(cancel.status, StatusCode::FORBIDDEN);
    assert_eq!(store.run(pending).await.unwrap().state, RunState::Pending);
    let queue = desk.alice.get("/queue").await;
    assert_eq!(queue.status, StatusCode::FORBIDDEN);
    queue.assert_says("this needs the operator role");

    desk.finish().await;
}
