//! The developer's pages: the template catalogue, the request form generated
//! from a template's parameter schema (the API's messages at their fields),
//! and an environment's page with its steps, live region, timeline, extend
//! and delete.

use std::path::Path;

use hubwright_state::model::Role;
use hubwright_testkit::console::{ConsoleUser, Page};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, write_workflow};
use serde_json::Value;

mod environment;
mod request;

/// A template with a parameter of every type, and a step that waits with a
/// message ("not ready yet (0 of 1 polls)") for an hour.
const LAB: &str = r#"
name: lab
description: A lab for one course.
ttl: { default: 1h, maximum: 4h }
parameters:
  cpu: { type: number, default: 1, minimum: 0.5, maximum: 4, description: CPUs for each server. }
  seats: { type: integer, default: 10, minimum: 1, maximum: 50 }
  gpu: { type: boolean, default: false }
  profile: { type: string, default: small, enum: [small, large] }
  admins: { type: strings, default: [], max_items: 5, max_length: 32, description: Hub admins. }
  image: { type: string, default: lab, max_length: 64, pattern: "^[a-z]+$" }
  quota: { type: integer, default: 30, settable: false }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: hub, kind: test-polls, with: { polls: 1, interval: 1h } }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// A template whose provisioning finishes at once.
const QUICK: &str = r#"
name: quick
ttl: { default: 2h, maximum: 8h }
workflows:
  provision:
    steps:
      - { name: namespace, kind: noop }
      - { name: hub, kind: noop }
  teardown:
    steps:
      - { name: remove, kind: noop }
"#;

/// A console over `lab` and `quick`, with `extra` serve flags.
struct Console {
    db: TestDatabase,
    server: ApiServer,
}

impl Console {
    async fn start(extra: &[&str]) -> Self {
        let db = TestDatabase::create().await;
        let dir = scratch_dir("console-developer");
        write_workflow(&dir, "lab", LAB);
        write_workflow(&dir, "quick", QUICK);
        let server = ApiServer::start(&db, &dir, extra).await;
        Self { db, server }
    }

    /// Over the repository's own `workflows/`.
    async fn shipped() -> Self {
        let db = TestDatabase::create().await;
        let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
        let server = ApiServer::start(&db, &workflows, &[]).await;
        Self { db, server }
    }

    /// A developer signed in to the console.
    async fn developer(&self, subject: &str) -> ConsoleUser {
        let secret = token(&self.db.store, subject, Role::Developer).await;
        ConsoleUser::sign_in(&self.server, &secret).await
    }

    /// Requests a `template` environment called `name` with the form.
    async fn request(&self, user: &ConsoleUser, template: &str, name: &str) -> String {
        let sent = user
            .post(&format!("/environments/new/{template}"), &[("name", name)])
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
        let page = sent.location.expect("the environment's page");
        page.strip_prefix("/environments/")
            .unwrap_or_else(|| panic!("an environment's page: {page}"))
            .to_owned()
    }

    /// The environment as the API shows it to its owner.
    async fn environment(&self, owner: &str, id: &str) -> Value {
        let secret = token(&self.db.store, owner, Role::Developer).await;
        let shown = self
            .server
            .get(&format!("/v1/environments/{id}"))
            .token(&secret)
            .send()
            .await;
        assert_eq!(shown.status, StatusCode::OK, "{:#}", shown.body);
        shown.body
    }

    async fn environments(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM environments")
            .fetch_one(self.db.store.pool())
            .await
            .unwrap()
    }

    async fn finish(self) {
        drop(self.server);
        self.db.drop_now().await;
    }
}

/// The HTML of the control with `id="<id>"`, up to its closing `>`.
fn control<'a>(page: &'a Page, id: &str) -> &'a str {
    let at = page
        .html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no control {id}:\n{}", page.html));
    let start = page.html[..at].rfind('<').unwrap_or(at);
    let end = at + page.html[at..].find('>').unwrap_or(0);
    &page.html[start..=end]
}

/// The text of the element with `id="<id>"`, up to its next tag.
fn text_of<'a>(page: &'a Page, id: &str) -> &'a str {
    let tag = control(page, id);
    let at = page.html.find(tag).unwrap_or(0) + tag.len();
    let rest = &page.html[at..];
    &rest[..rest.find('<').unwrap_or(rest.len())]
}
