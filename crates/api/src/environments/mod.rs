//! `/v1/environments`: developers ask for environments, see their own, extend
//! and delete them; operators see all. An environment is addressed by its id
//! or, for its owner, by its name ([`lookup`]).

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod extend;
pub(crate) mod list;
pub(crate) mod lookup;
pub(crate) mod show;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use hubwright_state::workflow::{Catalog, Dur, LoadedTemplate};
use serde::Serialize;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, Problem};

/// The `/v1/environments` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create::create, list::list))
        .routes(routes!(show::show, delete::delete))
        .routes(routes!(extend::extend))
}

/// Names are DNS-1123 labels (they become namespace and host names), short
/// enough to leave room for the prefixes built from them.
pub(crate) const MAX_NAME: usize = 40;

fn check_label(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if hubwright_state::workflow::is_dns_label(value, max) {
        Ok(())
    } else {
        Err(Problem::invalid(
            field,
            &format!(
                "must be a DNS-1123 label: 1 to {max} lowercase letters, digits or `-`, starting and ending with a letter or digit (got `{value}`)"
            ),
        ))
    }
}

/// `name` from `catalog` (the templates in force when the request began).
fn template<'a>(catalog: &'a Catalog, name: &str) -> ApiResult<&'a LoadedTemplate> {
    catalog.template(name).ok_or_else(|| {
        Problem::invalid(
            "template",
            &format!(
                "no template named `{name}` (known: {})",
                catalog.names().join(", ")
            ),
        )
    })
}

fn parse_ttl(text: &str) -> ApiResult<Dur> {
    let ttl: Dur = text
        .parse()
        .map_err(|rule: String| Problem::invalid("ttl", &rule))?;
    if ttl.is_zero() {
        return Err(Problem::invalid("ttl", "must be above zero"));
    }
    Ok(ttl)
}

/// Where to go next after a `202`: the environment, and the run that was
/// started for it, as absolute paths on this server.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
    /// `/v1/environments/{id}`.
    #[schema(example = "/v1/environments/0193a0c4-5f6e-7d8a-9b0c-1d2e3f4a5b6c")]
    environment: String,
    /// `/v1/runs/{run_id}`, when a run was started.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/v1/runs/0193a0c4-5f70-7d8a-9b0c-1d2e3f4a5b6c")]
    run: Option<String>,
}

impl Links {
    fn new(environment: Uuid, run: Option<Uuid>) -> Self {
        Self {
            environment: environment_path(environment),
            run: run.map(run_path),
        }
    }
}

/// `/v1/environments/{id}`.
pub(crate) fn environment_path(id: Uuid) -> String {
    format!("/v1/environments/{id}")
}

/// `/v1/runs/{id}`.
pub(crate) fn run_path(id: Uuid) -> String {
    format!("/v1/runs/{id}")
}
