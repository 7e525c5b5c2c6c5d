//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! types they exchange. Served at `/v1/openapi.json` (open, like the probes);
//! `docs/openapi.json` is the committed copy, and a test fails when they drift.
//!
//! Each route is declared once, with `utoipa_axum::routes!` in its module: the
//! router the server runs and the paths of this document come from the same
//! declaration ([`crate::documented_routes`]), so a route cannot be served
//! undocumented or documented unserved.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error;

/// What the document says beyond its paths; [`document_value`] adds the
/// paths from the routes and then the security scheme and problem answers
/// (which apply to every path, so they come after).
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "hubwright", description = "Self-service environments on Kubernetes, provisioned by durable workflows."),
    components(schemas(error::ProblemDocument, error::FieldError)),
    tags(
        (name = "templates", description = "What can be asked for: each template's parameters (as JSON Schema), TTL policy and clusters"),
        (name = "environments", description = "Ask for, list, extend and delete environments, by id or by name"),
        (name = "runs", description = "Workflow runs: list, steps, timeline, operator retry and cancel"),
        (name = "tokens", description = "API tokens: admins create, list and revoke them"),
        (name = "audit", description = "The audit trail: every state-changing call, who made it, from where and how it ended (admins)"),
        (name = "approvals", description = "Approval steps: approvers list what waits for them, approve or deny with a comment"),
        (name = "policy", description = "The policy file in force (operators), and the caller's own limits and current use"),
        (name = "pools", description = "Warm pools (operators): ready members that requests take over"),
        (name = "queue", description = "The queue's health (operators): depth, the oldest due run, workers' leases, rescued runs"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every operation can answer with these problems (the error type and the
/// extractors produce them for any route), so each is documented everywhere, as
/// `application/problem+json`; the live event stream is documented as
/// `text/event-stream` beside its JSON pages.
struct ProblemResponses;

const PROBLEMS: &[(&str, &str)] = &[
    ("400", "The request could not be read (malformed JSON)"),
    ("401", "No token, or an unknown or revoked one"),
    ("403", "The token's role does not allow this"),
    ("404", "Nothing there, or nothing the caller may see"),
    ("409", "The resource's state does not allow this"),
    ("413", "The body is larger than the API accepts"),
    ("415", "The body is not JSON"),
    (
        "422",
        "A field breaks a rule; `detail` names the field and the rule, `errors` says where (`pointer` into the body, `parameter`, or `header`)",
    ),
    ("503", "A dependency (the database) is failing"),
];

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ProblemDocument")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                // OpenAPI requires a description on every response; a handler's
                // own success answers get their status's name when they have none.
                for (status, response) in responses.iter_mut() {
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        let problem = PROBLEMS.iter().find(|(code, _)| code == status);
                        let reason = status
                            .parse::<u16>()
                            .ok()
                            .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                            .and_then(|code| code.canonical_reason());
                        response.description = problem
                            .map(|(_, description)| *description)
                            .or(reason)
                            .unwrap_or("Success")
                            .to_owned();
                    }
                }
                for (status, description) in PROBLEMS {
                    match responses.get_mut(*status) {
                        Some(RefOr::T(response)) => {
                            if let Some(content) = response.content.shift_remove("application/json")
                            {
                                response
                                    .content
                                    .insert("application/problem+json".to_owned(), content);
                            }
                        }
                        Some(RefOr::Ref(_)) => {}
                        None => {
                            responses.insert((*status).to_owned(), RefOr::T(problem(description)));
                        }
                    }
                }
                if path.ends_with("/events")
                    && let Some(RefOr::T(ok)) = responses.get_mut("200")
                {
                    ok.content.insert(
                        "text/event-stream".to_owned(),
                        RefOr::T(
                            ContentBuilder::new()
                                .schema(Some(
                                    utoipa::openapi::schema::ObjectBuilder::new()
                                        .schema_type(utoipa::openapi::schema::Type::String),
                                ))
                                .build(),
                        ),
                    );
                }
            }
        }
    }
}

/// The whole document: the routes' paths, the security scheme, the problem answers.
pub fn document_value() -> utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let (_, mut document) = crate::documented_routes();
            BearerAuth.modify(&mut document);
            ProblemResponses.modify(&mut document);
            document
        })
        .clone()
}

/// The document as pretty JSON, as committed in `docs/openapi.json`.
pub fn document() -> String {
    document_value().to_pretty_json().unwrap_or_default()
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document_value())
}

/// The interactive reference: a page that renders `/v1/openapi.json` and
/// sends requests with the reader's token, its script and its style, all
/// served from here (clusters may have no internet) and none inline, so the
/// page's Content-Security-Policy allows no inline script ([`crate::headers`]).
pub fn docs_routes() -> axum::Router<crate::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/docs", get(docs_page))
        .route(
            "/docs/app.js",
            get(|| {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("docs/app.js"),
                )
            }),
        )
        .route(
            "/docs/app.css",
            get(|| asset("text/css; charset=utf-8", include_str!("docs/app.css"))),
        )
}

/// `GET /docs`.
pub async fn docs_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("docs/page.html"))
}

/// A static file of the reference page, with its media type.
pub(crate) async fn asset(
    media_type: &'static str,
    body: &'static str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (axum::http::header::CONTENT_TYPE, media_type),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
