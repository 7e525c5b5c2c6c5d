//! The templates, embedded in the binary, and what every page answer carries.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, Response};
use minijinja::{Environment, Value, context};

use crate::session::Viewer;

/// Every template, by name, compiled in.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("sign_in.html", include_str!("../templates/sign_in.html")),
    ("problem.html", include_str!("../templates/problem.html")),
    (
        "environments.html",
        include_str!("../templates/environments.html"),
    ),
    (
        "environment_delete.html",
        include_str!("../templates/environment_delete.html"),
    ),
    (
        "environment_new.html",
        include_str!("../templates/environment_new.html"),
    ),
    (
        "environment_form.html",
        include_str!("../templates/environment_form.html"),
    ),
    (
        "environment.html",
        include_str!("../templates/environment.html"),
    ),
    (
        "environment_progress.html",
        include_str!("../templates/environment_progress.html"),
    ),
    ("runs.html", include_str!("../templates/runs.html")),
    ("run.html", include_str!("../templates/run.html")),
    (
        "run_detail.html",
        include_str!("../templates/run_detail.html"),
    ),
    ("queue.html", include_str!("../templates/queue.html")),
    ("pools.html", include_str!("../templates/pools.html")),
    (
        "approvals.html",
        include_str!("../templates/approvals.html"),
    ),
    ("tokens.html", include_str!("../templates/tokens.html")),
    (
        "token_revoke.html",
        include_str!("../templates/token_revoke.html"),
    ),
    ("policy.html", include_str!("../templates/policy.html")),
    ("audit.html", include_str!("../templates/audit.html")),
];

/// The console's pages may run only its own script and style, may post
/// forms only to itself, and may not be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// `value` for a template.
pub fn data<T: serde::Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// The templates, compiled once per process.
pub fn views() -> &'static Views {
    static VIEWS: std::sync::OnceLock<Views> = std::sync::OnceLock::new();
    VIEWS.get_or_init(Views::new)
}

/// The compiled templates.
#[derive(Debug)]
pub struct Views {
    env: Environment<'static>,
}

impl Default for Views {
    fn default() -> Self {
        Self::new()
    }
}

impl Views {
    /// Compiles every template; a template that does not compile is a bug
    /// the console's tests catch.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|err| panic!("console template {name}: {err:#}"));
        }
        env.add_global("asset_version", crate::assets::version());
        Self { env }
    }

    /// Renders `template` with `page` for `viewer` (or nobody). A render
    /// error is a bug: it is logged and shown as a plain error page.
    pub fn render(&self, template: &str, viewer: Option<&Viewer>, page: Value) -> Html<String> {
        let user = viewer.map(|viewer| {
            context! {
                subject => viewer.subject(),
                role => viewer.user.principal.role.to_string(),
                is_operator => viewer.has(hubwright_state::model::Role::Operator),
                is_admin => viewer.has(hubwright_state::model::Role::Admin),
                csrf => viewer.csrf.clone(),
            }
        });
        let rendered = self
            .env
            .get_template(template)
            .and_then(|t| t.render(context! { user, ..page }));
        match rendered {
            Ok(html) => Html(html),
            Err(err) => {
                tracing::error!(template, error = %format!("{err:#}"), "console: rendering a page");
                Html(
                    "<!doctype html><html lang=\"en\"><title>Error</title><main><h1>Something went wrong</h1>\
                     <p>This page could not be shown; the server's log says why.</p></main></html>"
                        .to_owned(),
                )
            }
        }
    }
}

/// Console pages are per user and change: never cached, and under the
/// console's own content policy (forms post to the console).
pub async fn page_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !is_asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_compiles() {
        let views = super::Views::new();
        for (name, _) in super::TEMPLATES {
            assert!(views.env.get_template(name).is_ok(), "{name}");
        }
    }
}
