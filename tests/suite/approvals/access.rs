//! Who may decide an approval: the named role or groups, never the requester
//! unless the step allows it, once; and who sees it at all.

use super::*;

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request_unless_the_step_allows_it() {
    let lab = Lab::new().await;
    // Carol is an operator, so an approver, and asks herself.
    let carol = token(&lab.db.store, "carol", Role::Operator).await;
    let env = lab.create(&carol, "gated", json!({})).await;
    let approval = lab.pending(&carol, &env).await;
    assert_eq!(approval["may_decide"], false);
    let refused = lab
        .decide(&carol, &approval, "approve", "looks fine to me")
        .await;
    refused.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("nobody approves their own request"),
        "{detail}"
    );
    assert!(detail.contains("allow_self_approval"), "{detail}");
    let still = lab.until_waiting(&env).await;
    assert_eq!(condition(&still, "approval")["status"], "Unknown");

    let lenient = lab.create(&carol, "lenient", json!({})).await;
    let own = lab.pending(&carol, &lenient).await;
    assert_eq!(own["may_decide"], true);
    let approved = lab.decide(&carol, &own, "approve", "allowed here").await;
    assert_eq!(approved.status, StatusCode::OK, "{:#}", approved.body);
    lab.until_phase(&lenient, "ready").await;
}

#[tokio::test]
async fn a_second_decision_is_a_conflict_and_the_first_stands() {
    let lab = Lab::new().await;
    let env = lab.create(&lab.alice, "gated", json!({})).await;
    let approval = lab.pending(&lab.bob, &env).await;
    let first = lab.decide(&lab.bob, &approval, "approve", "ok").await;
    assert_eq!(first.status, StatusCode::OK, "{:#}", first.body);
    let erin = token(&lab.db.store, "erin", Role::Admin).await;
    let second = lab
        .decide(&erin, &approval, "deny", "changed my mind")
        .await;
    second.assert_problem(StatusCode::CONFLICT, "conflict");
    let detail = second.body["detail"].as_str().unwrap();
    assert!(detail.contains("already approved by bob"), "{detail}");
    lab.until_phase(&env, "ready").await;
}

#[tokio::test]
async fn only_the_named_approvers_may_decide_and_others_do_not_see_the_request() {
    let lab = Lab::new().await;
    let env = lab.create(&lab.alice, "grouped", json!({})).await;
    // Bob is an operator: he sees everything, but the step names a group.
    let approval = lab.pending(&lab.bob, &env).await;
    assert_eq!(approval["may_decide"], false);
    let refused = lab.decide(&lab.bob, &approval, "approve", "").await;
    refused.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("a member of gpu-approvers"), "{detail}");
    // Dave, a developer who neither asked nor may decide, finds nothing.
    let dave = token(&lab.db.store, "dave", Role::Developer).await;
    let listed = lab.call("GET", "/v1/approvals", &dave, None).await;
    assert_eq!(listed.body["items"], json!([]), "{:#}", listed.body);
    let hidden = lab.decide(&dave, &approval, "deny", "no").await;
    hidden.assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn a_bad_filter_or_comment_names_the_parameter() {
    let lab = Lab::new().await;
    let bad = lab
        .call("GET", "/v1/approvals?state=maybe", &lab.bob, None)
        .await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        bad.body["errors"][0]["parameter"], "state",
        "{:#}",
        bad.body
    );
    let env = lab.create(&lab.alice, "gated", json!({})).await;
    let approval = lab.pending(&lab.bob, &env).await;
    let long = lab
        .decide(&lab.bob, &approval, "deny", &"x".repeat(2001))
        .await;
    long.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert_eq!(
        long.body["errors"][0]["pointer"], "/comment",
        "{:#}",
        long.body
    );
}
