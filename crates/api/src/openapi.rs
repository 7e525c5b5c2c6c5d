//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! types they exchange. Served at `/v1/openapi.json` (open, like the probes);
//! `docs/openapi.json` is the committed copy, and a test fails when they drift.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{environments, error, runs};

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "hubwright", description = "Self-service environments on Kubernetes, provisioned by durable workflows."),
    paths(
        environments::create,
        environments::list,
        environments::show,
        environments::delete,
        environments::extend,
        runs::show,
        runs::events,
        runs::retry,
        runs::cancel,
    ),
    components(schemas(error::ProblemDocument)),
    modifiers(&BearerAuth),
    tags(
        (name = "environments", description = "Ask for, list, extend and delete environments"),
        (name = "runs", description = "Workflow runs: steps, timeline, operator retry and cancel"),
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

/// The document as pretty JSON, as committed in `docs/openapi.json`.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
