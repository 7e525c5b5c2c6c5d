//! The browser-test harness on a small page served here: a script opens it,
//! fills in a form, clicks, checks the answer and runs axe-core at the laptop
//! and phone widths; on pages broken on purpose it fails, naming the step and
//! the rule, and leaves a screenshot and the page's HTML; a script that hangs
//! is killed, chromium and all.

use std::time::Duration;

use axum::extract::Query;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use hubwright_testkit::browser::Browser;
use hubwright_testkit::wait;
use serde::Deserialize;

/// A strict policy, as the console will have: the script proves that axe-core
/// is injected without being blocked by it.
const POLICY: &str = "default-src 'self'";

const FORM_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Harness</title>
  <script src="/greet.js" defer></script>
</head>
<body>
  <main>
    <h1>Harness</h1>
    <form>
      <label for="name">Your name</label>
      <input id="name" name="name" autocomplete="given-name">
      <button type="submit">Say hello</button>
    </form>
    <p role="status" id="greeting"></p>
  </main>
</body>
</html>"#;

/// Asks the server, so the greeting appears only after a round trip.
const GREET_JS: &str = r#"document.querySelector("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("name").value;
  const answer = await fetch("/greeting?name=" + encodeURIComponent(name));
  document.getElementById("greeting").textContent = await answer.text();
});"#;

/// The form page with an unlabelled icon button: axe-core's `button-name`,
/// a critical violation.
const UNLABELLED_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Unlabelled</title></head>
<body><main><h1>Unlabelled</h1><button type="button" id="icon-only"><svg width="16" height="16"></svg></button></main></body>
</html>"#;

/// Accessible, but 600 px wide whatever the viewport: it scrolls sideways
/// on a phone.
const WIDE_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Wide</title>
  <link rel="stylesheet" href="/wide.css">
</head>
<body><main><h1>Wide</h1><p class="wide">A line that will not wrap.</p></main></body>
</html>"#;

#[derive(Deserialize)]
struct Greeting {
    name: String,
}

/// Serves the pages on a port of its own; returns `http://127.0.0.1:PORT`.
async fn serve_pages() -> String {
    fn page(body: &'static str, content_type: &'static str) -> impl IntoResponse {
        (
            [
                (CONTENT_TYPE, content_type),
                (CONTENT_SECURITY_POLICY, POLICY),
            ],
            body,
        )
    }
    let html = "text/html; charset=utf-8";
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || async move { page(FORM_PAGE, html) }),
        )
        .route(
            "/greet.js",
            axum::routing::get(|| async { page(GREET_JS, "text/javascript") }),
        )
        .route(
            "/greeting",
            axum::routing::get(
                |Query(q): Query<Greeting>| async move { format!("Hello, {}!", q.name) },
            ),
        )
        .route(
            "/unlabelled",
            axum::routing::get(move || async move { page(UNLABELLED_PAGE, html) }),
        )
        .route(
            "/wide",
            axum::routing::get(move || async move { page(WIDE_PAGE, html) }),
        )
        .route(
            "/wide.css",
            axum::routing::get(|| async {
                page(".wide { width: 600px; white-space: nowrap; }", "text/css")
            }),
        )
        // No favicon: an empty answer instead of a 404 in every script's log.
        .route(
            "/favicon.ico",
            axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_script_fills_in_a_form_clicks_and_axe_finds_nothing_serious_at_either_width() {
    let Some(browser) = Browser::ready().await else {
        return;
    };
    let url = serve_pages().await;
    let outcome = browser
        .script("harness")
        .env("HUBWRIGHT_PAGE_URL", format!("{url}/"))
        .run()
        .await;
    // Each step ran and said so, in order, and nothing was left behind.
    let steps: Vec<&str> = outcome
        .output
        .iter()
        .filter_map(|line| line.strip_prefix("step "))
        .collect();
    assert_eq!(
        steps,
        [
            "01 launch chromium",
            "02 open the page",
            "03 check the page before the greeting",
            "04 fill in a name and click \"Say hello\"",
            "05 see the greeting",
            "06 check the page with the greeting",
        ]
    );
    assert!(outcome.artifacts.is_empty(), "{:?}", outcome.artifacts);
}

#[tokio::test]
async fn a_failing_script_panics_naming_the_step_the_rule_and_its_screenshot_and_html() {
    let Some(browser) = Browser::ready().await else {
        return;
    };
    let url = serve_pages().await;
    let script = browser
        .script("harness")
        .env("HUBWRIGHT_PAGE_URL", format!("{url}/unlabelled"));
    let panic = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(script.run()))
        .await
        .expect_err("the script passed on a page with an unlabelled button");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();

    for expected in [
        "FAIL at step 03 check the page before the greeting",
        "at the laptop width (1280x800)",
        "[critical] button-name: Buttons must have discernible text",
        "#icon-only",
    ] {
        assert!(message.contains(expected), "no {expected:?} in:\n{message}");
    }
    // The panic names both files, and they hold the page as it failed.
    let named = |extension: &str| {
        message
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with('/') && line.ends_with(extension))
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| panic!("no {extension} path in:\n{message}"))
    };
    let (png, html) = (named(".png"), named(".html"));
    assert!(
        png.ends_with("harness-03-check-the-page-before-the-greeting.png"),
        "{png:?}"
    );
    let png_bytes = std::fs::read(&png).unwrap();
    assert!(
        png_bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{png:?} is not a PNG"
    );
    let html_text = std::fs::read_to_string(&html).unwrap();
    assert!(html_text.contains(r#"<h1>Unlabelled</h1>"#), "{html_text}");
    assert!(
        html_text.contains(&format!("{url}/unlabelled")),
        "{html_text}"
    );
}

#[tokio::test]
async fn a_page_that_scrolls_sideways_on_a_phone_fails_at_the_phone_width_only() {
    let Some(browser) = Browser::ready().await else {
        return;
    };
    let url = serve_pages().await;
    let outcome = browser
        .script("harness")
        .env("HUBWRIGHT_PAGE_URL", format!("{url}/wide"))
        .outcome()
        .await;
    assert!(!outcome.passed(), "{}", outcome.report());
    let report = outcome.report();
    assert!(
        report.contains("at the phone width (390x844): the form at phone width is"),
        "{report}"
    );
    assert!(report.contains("scrolls sideways"), "{report}");
    assert!(!report.contains("laptop width ("), "{report}");
    assert_eq!(outcome.artifacts.len(), 2, "{report}");
}

#[tokio::test]
async fn a_hung_script_is_killed_with_its_chromium_at_the_deadline() {
    let Some(browser) = Browser::ready().await else {
        return;
    };
    let outcome = browser
        .script("harness-hangs")
        .deadline(Duration::from_secs(8))
        .outcome()
        .await;
    assert_eq!(outcome.status, None, "{}", outcome.report());
    assert!(
        outcome.report().contains("did not exit within 8s"),
        "{}",
        outcome.report()
    );
    let children: Vec<u32> = outcome
        .output
        .iter()
        .find_map(|line| line.strip_prefix("children: "))
        .map(|pids| {
            pids.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !children.is_empty(),
        "no chromium in:\n{}",
        outcome.report()
    );
    // Left alone, chromium notices its DevTools pipe closed and quits after
    // several seconds; killed, it is gone at once.
    wait::until(
        "chromium to be killed with the script",
        Duration::from_secs(2),
        || {
            let children = children.clone();
            async move { !children.iter().any(|pid| is_running(*pid)) }
        },
    )
    .await;
}

/// Whether `pid` is a live process (not gone, not a zombie awaiting its reaper).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}
