//! The kinds of problem the API answers with, and the page that explains
//! each: a problem document's `type` is `/docs/problems/<slug>` (a relative
//! reference, RFC 9457 §3.1.1), and hubwright serves that page, open, so a
//! person who meets the `type` can follow it.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::Problem;
use crate::json::ApiPath;

/// One kind of problem: its stable slug, its title, and what a reader should
/// know and do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemKind {
    /// Stable identifier, the last segment of the `type` URL.
    pub slug: &'static str,
    /// Short human summary, the document's `title`.
    pub title: &'static str,
    /// The HTTP status it comes with.
    pub status: u16,
    /// What it means.
    pub meaning: &'static str,
    /// What to do about it.
    pub remedy: &'static str,
}

/// Where problem pages are served; a `type` is this plus the slug.
pub const BASE: &str = "/docs/problems/";

impl ProblemKind {
    /// The `type` of a document of this kind: `/docs/problems/<slug>`.
    pub fn type_url(&self) -> String {
        format!("{BASE}{}", self.slug)
    }
}

macro_rules! kinds {
    ($($name:ident = $slug:literal, $status:literal, $title:literal, $meaning:literal, $remedy:literal;)*) => {
        $(
            #[doc = concat!("`", $slug, "`: ", $title, ".")]
            pub const $name: ProblemKind = ProblemKind {
                slug: $slug,
                title: $title,
                status: $status,
                meaning: $meaning,
                remedy: $remedy,
            };
        )*
        /// Every kind, in status order.
        pub const ALL: &[ProblemKind] = &[$($name),*];
    };
}

kinds! {
    BAD_REQUEST = "bad-request", 400, "Bad request",
        "The request could not be read: the body is not valid JSON, or the path could not be decoded.",
        "Check that the body is well-formed JSON; the detail says where reading stopped.";
    UNAUTHORIZED = "unauthorized", 401, "Unauthorized",
        "The request carried no valid credentials: no Authorization header, a malformed one, or a token that is unknown, revoked or expired.",
        "Send `Authorization: Bearer <token>` with a token from `hubwright token create` or, where configured, a JWT from your organisation's OpenID provider.";
    FORBIDDEN = "forbidden", 403, "Forbidden",
        "The token is valid, but its role does not allow this operation (for example retrying a run, which needs an operator).",
        "Ask an admin for a token with the role the detail names.";
    LIMIT_EXCEEDED = "limit-exceeded", 403, "Limit exceeded",
        "The request is valid, but granting it would take the owner past a limit of the platform team's policy file: live environments, environments of a template or profile, total requested CPU or memory, the longest life or the most extensions. `limit` names the limit, its `value`, the `current` use, what the request asked for (`requested`) and the `rule` of the policy file that set it. Nothing was stored.",
        "Delete an environment you no longer need (a deleted one stops counting at once), ask for less, or ask the platform team to raise the limit named in `rule`. `GET /v1/policy/me` shows your limits and current use.";
    TEMPLATE_FORBIDDEN = "template-forbidden", 403, "Template or profile not permitted",
        "The platform team's policy file lets only members of some groups use this template, or choose this profile (e.g. `gpu`); the caller is in none of them. The detail names the rule (`templates.<name>.groups` or `templates.<name>.profiles.<profile>`).",
        "Choose a template or profile `GET /v1/templates` shows as usable, or ask the platform team to add you to one of the groups the rule names.";
    NOT_FOUND = "not-found", 404, "Not found",
        "There is nothing at this address, or nothing the caller may see: another owner's environment or run answers exactly like a missing one. An environment named by name is looked up among the caller's own live environments (operators may add `?owner=`).",
        "Check the id or name; list what you can see with `GET /v1/environments` or `GET /v1/templates`.";
    METHOD_NOT_ALLOWED = "method-not-allowed", 405, "Method not allowed",
        "The path exists, but it does not accept this HTTP method.",
        "See the OpenAPI document at `/v1/openapi.json` for the methods each path accepts.";
    REQUEST_TIMEOUT = "request-timeout", 408, "Request timeout",
        "The request's body did not arrive within the server's body read timeout (`hubwright serve --body-read-timeout`, 10 s by default). The connection is closed.",
        "Send the whole body at once; if a slow network is the cause, ask the platform team to raise the timeout.";
    CONFLICT = "conflict", 409, "Conflict",
        "The request is well-formed, but the resource's current state does not allow it: a name already taken, an environment already being torn down, a run that is not failed, or an extension beyond the template's limit.",
        "Read the detail, look at the resource's current state, and choose another name or wait for the state to change.";
    PAYLOAD_TOO_LARGE = "payload-too-large", 413, "Payload too large",
        "The request body is larger than the API accepts (64 KiB).",
        "Send a smaller body; requests are small JSON documents.";
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type", 415, "Unsupported media type",
        "The request has a body that is not declared as JSON.",
        "Send the body with `Content-Type: application/json`.";
    INVALID_REQUEST = "invalid-request", 422, "Invalid request",
        "The request could be read, but a field breaks a rule. `detail` says it in a sentence; `errors` lists each rule broken, and where: `pointer` is a JSON Pointer (RFC 6901) into the body (e.g. `/parameters/cpu_limit`, or `\"\"` for the whole body), `parameter` names a query or path parameter (e.g. `limit`), `header` names a request header (e.g. `Idempotency-Key`).",
        "Fix the field each entry points at so it follows the rule. A template's parameters and their limits are at `GET /v1/templates/{name}`.";
    TOO_MANY_REQUESTS = "too-many-requests", 429, "Too many requests",
        "The caller has used up its budget of requests: each token (or OpenID user) may make a burst of requests and then a steady number a second, and each client address a limited number of failed sign-ins. The `Retry-After` header says how many seconds until the next request is accepted.",
        "Wait the `Retry-After` seconds, then go on more slowly; scripts should back off on 429. Follow a run with its event stream rather than polling. An operator sets the limits (`serve --rate-limit`, `--rate-limit-burst`).";
    TOO_MANY_STREAMS = "too-many-streams", 429, "Too many event streams",
        "The caller, or the server as a whole, already holds as many open event streams (`Accept: text/event-stream` on `/v1/runs/{id}/events`) as it may (`hubwright serve --max-streams-per-token`, `--max-streams`).",
        "Close streams you no longer read, or reuse one; try again after the `Retry-After` seconds. Pages of JSON (`?after=`) are not limited this way.";
    INTERNAL = "internal", 500, "Internal error",
        "The API failed on this request: a bug in hubwright. It has been logged with the route.",
        "Try again; if it happens again, tell the platform team the time and the route.";
    UNAVAILABLE = "unavailable", 503, "Service unavailable",
        "A dependency of the API (the database, or the OpenID provider's keys) is failing. Nothing was changed unless the detail says so.",
        "Try again shortly; requests with an `Idempotency-Key` are safe to repeat.";
}

/// The kind with `slug`, if any.
pub fn by_slug(slug: &str) -> Option<&'static ProblemKind> {
    ALL.iter().find(|kind| kind.slug == slug)
}

/// `/docs/problems` and `/docs/problems/{slug}` (open, like `/docs`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/docs/problems", get(index))
        .route("/docs/problems/{slug}", get(page))
        .route(
            "/docs/problems.css",
            get(|| crate::openapi::asset("text/css; charset=utf-8", STYLE)),
        )
}

/// The problem pages' style, served as `/docs/problems.css` (the pages carry
/// no inline style; see [`crate::headers`]).
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}code{background:#f2f2f2;padding:0 .2em}";

/// Escapes text for HTML; the texts are ours, but the page must stay valid
/// whatever they hold. Backticks become `<code>`.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '`' => {
                out.push_str(if in_code { "</code>" } else { "<code>" });
                in_code = !in_code;
            }
            _ => out.push(c),
        }
    }
    if in_code {
        out.push_str("</code>");
    }
    out
}

fn document(title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · hubwright</title><link rel=\"stylesheet\" href=\"/docs/problems.css\"></head>\n<body>{body}</body></html>\n"
    );
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Html(page),
    )
        .into_response()
}

/// `GET /docs/problems/{slug}`: what a problem means and what to do.
async fn page(ApiPath(slug): ApiPath<String>) -> Result<Response, Problem> {
    let kind =
        by_slug(&slug).ok_or_else(|| Problem::not_found(format!("no problem type `{slug}`")))?;
    let body = format!(
        "<h1>{title}</h1>\n<p>HTTP {status} · type <code>{url}</code></p>\n<h2>What it means</h2>\n<p>{meaning}</p>\n<h2>What to do</h2>\n<p>{remedy}</p>\n<p><a href=\"/docs/problems\">Every problem type</a> · <a href=\"/docs\">API reference</a></p>\n",
        title = html(kind.title),
        status = kind.status,
        url = html(&kind.type_url()),
        meaning = html(kind.meaning),
        remedy = html(kind.remedy),
    );
    Ok(document(kind.title, &body))
}

/// `GET /docs/problems`: every problem type, linked.
async fn index() -> Response {
    let items: String = ALL
        .iter()
        .map(|kind| {
            format!(
                "<li><a href=\"{url}\">{title}</a> (HTTP {status})</li>\n",
                url = html(&kind.type_url()),
                title = html(kind.title),
                status = kind.status
            )
        })
        .collect();
    document(
        "Problem types",
        &format!(
            "<h1>Problem types</h1>\n<p>Every error hubwright's API answers is <code>application/problem+json</code> (RFC 9457) whose <code>type</code> is one of these pages.</p>\n<ul>\n{items}</ul>\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_slug_and_a_status_of_its_class() {
        for (i, kind) in ALL.iter().enumerate() {
            assert!(
                ALL[i + 1..].iter().all(|other| other.slug != kind.slug),
                "{} twice",
                kind.slug
            );
            assert!((400..600).contains(&kind.status));
            assert_eq!(by_slug(kind.slug), Some(kind));
        }
    }

    #[test]
    fn page_text_is_escaped_and_backticks_become_code() {
        assert_eq!(html("a `<b>` & c"), "a <code>&lt;b&gt;</code> &amp; c");
        assert_eq!(html("`open"), "<code>open</code>");
    }
}
