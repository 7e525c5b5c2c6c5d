//! An environment's page: its steps (and the fragment the script redraws),
//! the events proxy, another developer's environment, extend and delete.

use std::time::Duration;

use hubwright_testkit::harness::{fast_config, spawn_worker};
use hubwright_testkit::wait;

use super::*;

/// `GET /environments/{id}/events` as a browser's `EventSource` asks,
/// read to its end: the status, the content type and the body.
async fn events(
    console: &Console,
    user: &ConsoleUser,
    id: &str,
    last_event_id: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = hubwright_http::client()
        .get(format!("{}/environments/{id}/events", console.server.url))
        .header("cookie", &user.cookie)
        .header("accept", "text/event-stream");
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last);
    }
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        let response = request.send().await.expect("the events proxy");
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, kind, response.text().await.expect("the stream"))
    })
    .await;
    answer.expect("the stream of a finished run ends")
}

#[tokio::test]
async fn a_requested_environment_shows_its_steps_and_the_fragment_redraws_them() {
    let console = Console::start(&[]).await;
    let erin = console.developer("erin").await;
    let id = console.request(&erin, "lab", "course").await;

    let page = erin.get(&format!("/environments/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    page.assert_says("<h1>course</h1>");
    page.assert_says(&format!(
        "<div id=\"progress\" aria-live=\"polite\" data-live-events=\"/environments/{id}/events\" data-live-fragment=\"/environments/{id}/steps\">"
    ));
    page.assert_says("<th scope=\"row\">1. namespace</th>");
    page.assert_says("<th scope=\"row\">2. hub</th>");
    page.assert_says("<dt>seats</dt><dd>10</dd>");
    page.assert_says("<h2>Timeline</h2>");
    page.assert_says("run accepted");
    assert!(
        control(&page, "extend-ttl").contains("value=\"1h\""),
        "extends by the template's default"
    );

    let _worker = spawn_worker(&console.db.store, fast_config("w"));
    let waiting = wait::until_some("the hub step to wait", Duration::from_secs(20), || {
        let (erin, path) = (&erin, format!("/environments/{id}/steps"));
        async move {
            let fragment = erin.get(&path).await;
            fragment
                .html
                .contains("not ready yet (0 of 1 polls)")
                .then_some(fragment)
        }
    })
    .await;
    assert_eq!(waiting.status, StatusCode::OK);
    assert!(
        !waiting.html.contains("<html"),
        "only the region: {}",
        waiting.html
    );
    waiting.assert_says("<span class=\"badge status-Unknown\">waiting</span>");
    waiting.assert_says("<span class=\"badge status-True\">succeeded</span>");
    waiting
        .assert_says("Provisioning: step 2 of 2, hub, is waiting: not ready yet (0 of 1 polls).");
    let page = erin.get(&format!("/environments/{id}")).await;
    page.assert_says("not ready yet (0 of 1 polls)");
    page.assert_says("step namespace succeeded");
    console.finish().await;
}

#[tokio::test]
async fn the_events_proxy_passes_on_the_runs_events_and_ends_with_the_run() {
    let console = Console::start(&[]).await;
    let erin = console.developer("erin").await;
    let id = console.request(&erin, "quick", "quick").await;
    let _worker = spawn_worker(&console.db.store, fast_config("w"));
    wait::until(
        "the environment to be ready",
        Duration::from_secs(20),
        || async { console.environment("erin", &id).await["phase"] == "ready" },
    )
    .await;

    let (status, kind, body) = events(&console, &erin, &id, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    assert!(body.contains("\"kind\":\"run_created\""), "{body}");
    assert!(body.contains("\"kind\":\"run_succeeded\""), "{body}");
    assert!(
        !body.contains("event: step_started"),
        "names are dropped so EventSource hears every event: {body}"
    );
    assert!(body.ends_with("event: end\ndata: {}\n\n"), "{body}");

    let last = body
        .lines()
        .filter_map(|line| line.strip_prefix("id: "))
        .next_back()
        .expect("event ids")
        .to_owned();
    let (_, _, resumed) = events(&console, &erin, &id, Some(&last)).await;
    assert_eq!(
        resumed, "event: end\ndata: {}\n\n",
        "resumes after the last event"
    );

    let page = erin.get(&format!("/environments/{id}")).await;
    page.assert_says("Ready: provisioning has finished.");
    console.finish().await;
}

#[tokio::test]
async fn another_developers_environment_is_the_consoles_404_page() {
    let console = Console::start(&[]).await;
    let erin = console.developer("erin").await;
    let frank = console.developer("frank").await;
    let id = console.request(&erin, "quick", "mine").await;
    for path in [
        format!("/environments/{id}"),
        format!("/environments/{id}/steps"),
        format!("/environments/{id}/delete"),
    ] {
        let page = frank.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        page.assert_says("<h1>Not found</h1>");
    }
    let (status, _, _) = events(&console, &frank, &id, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let extend = frank
        .post(
            &format!("/environments/{id}/extend"),
            &[("ttl", "1h"), ("back", &format!("/environments/{id}"))],
        )
        .await;
    assert_eq!(extend.status, StatusCode::NOT_FOUND);
    console.finish().await;
}

#[tokio::test]
async fn extending_moves_the_expiry_and_a_refused_ttl_is_shown_at_its_field() {
    let console = Console::start(&[]).await;
    let erin = console.developer("erin").await;
    let id = console.request(&erin, "quick", "longer").await;
    let page = format!("/environments/{id}");
    let expires = |environment: Value| {
        chrono::DateTime::parse_from_rfc3339(environment["expires_at"].as_str().unwrap()).unwrap()
    };
    let before = expires(console.environment("erin", &id).await);

    let extended = erin
        .post(&format!("{page}/extend"), &[("ttl", "6h"), ("back", &page)])
        .await;
    assert_eq!(extended.status, StatusCode::SEE_OTHER, "{}", extended.html);
    assert_eq!(extended.location.as_deref(), Some(page.as_str()));
    let after = expires(console.environment("erin", &id).await);
    assert!(
        after - before >= chrono::Duration::hours(3),
        "{before} → {after}"
    );

    let refused = erin
        .post(&format!("{page}/extend"), &[("ttl", "9h"), ("back", &page)])
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.html
    );
    let field = control(&refused, "extend-ttl");
    assert!(
        field.contains("aria-invalid=\"true\"") && field.contains("value=\"9h\""),
        "{field}"
    );
    assert!(
        text_of(&refused, "extend-ttl-error").contains("beyond the template&#x27;s maximum of 8h"),
        "{}",
        text_of(&refused, "extend-ttl-error")
    );
    assert_eq!(expires(console.environment("erin", &id).await), after);

    // The list's button sends no TTL: the template's default applies.
    let from_list = erin
        .post(&format!("{page}/extend"), &[("back", "/environments")])
        .await;
    assert_eq!(
        from_list.status,
        StatusCode::SEE_OTHER,
        "{}",
        from_list.html
    );
    assert_eq!(from_list.location.as_deref(), Some("/environments"));
    console.finish().await;
}

#[tokio::test]
async fn deleting_through_the_confirmation_page_tears_the_environment_down() {
    let console = Console::start(&[]).await;
    let erin = console.developer("erin").await;
    let id = console.request(&erin, "quick", "gone").await;
    let page = erin.get(&format!("/environments/{id}")).await;
    page.assert_says(&format!(
        "href=\"/environments/{id}/delete\">Delete gone</a>"
    ));

    let confirm = erin.get(&format!("/environments/{id}/delete")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    confirm.assert_says("<h1>Delete gone?</h1>");
    let deleted = erin.post(&format!("/environments/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.html);
    let phase = console.environment("erin", &id).await["phase"].clone();
    assert!(
        phase == "tearing_down" || phase == "deleted",
        "after delete: {phase}"
    );
    let after = erin.get(&format!("/environments/{id}")).await;
    after.assert_says("Being deleted");
    assert!(
        !after.html.contains("Delete gone</a>"),
        "nothing left to delete"
    );
    console.finish().await;
}
