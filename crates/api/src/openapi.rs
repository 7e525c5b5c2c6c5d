//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! types they exchange. Served at `/v1/openapi.json` (open, like the probes);
//! `docs/openapi.json` is the committed copy, and a test fails when they drift.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{environments, error, runs, templates, tokens};

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "hubwright", description = "Self-service environments on Kubernetes, provisioned by durable workflows."),
    paths(
        templates::list,
        templates::show,
        environments::create::create,
        environments::list::list,
        environments::show::show,
        environments::delete::delete,
        environments::extend::extend,
        runs::list::list,
        runs::show,
        runs::events,
        runs::retry,
        runs::cancel,
        tokens::create,
        tokens::list,
        tokens::revoke,
    ),
    components(schemas(error::ProblemDocument, error::FieldError)),
    modifiers(&BearerAuth, &ProblemResponses),
    tags(
        (name = "templates", description = "What can be asked for: each template's parameters (as JSON Schema), TTL policy and clusters"),
        (name = "environments", description = "Ask for, list, extend and delete environments, by id or by name"),
        (name = "runs", description = "Workflow runs: list, steps, timeline, operator retry and cancel"),
        (name = "tokens", description = "API tokens: admins create, list and revoke them"),
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
                        ContentBuilder::new()
                            .schema(Some(
                                utoipa::openapi::schema::ObjectBuilder::new()
                                    .schema_type(utoipa::openapi::schema::Type::String),
                            ))
                            .build(),
                    );
                }
            }
        }
    }
}

/// The document as pretty JSON, as committed in `docs/openapi.json`.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
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
