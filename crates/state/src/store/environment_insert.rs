//! Inserting a cold environment, and the conflict a live name or namespace
//! makes (a claimed pool member's new name can make the first too).

use chrono::{DateTime, Utc};

use super::environments::NewEnvironment;
use crate::{Error, Result};

const UNIQUE_NAME: &str = "environments_owner_name_live";
const UNIQUE_NAMESPACE: &str = "environments_cluster_namespace_live";

/// Inserts a cold environment; a name or namespace already live is a
/// [`Error::Conflict`] on `name`.
pub(super) async fn insert_environment(
    conn: &mut sqlx::PgConnection,
    env: &NewEnvironment<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO environments (id, name, owner, template, parameters, cluster,
                                  namespace, expires_at, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $9, $7, $8, $8)
        "#,
        env.id,
        env.name,
        env.owner,
        env.template,
        env.parameters,
        env.cluster,
        env.expires_at,
        now,
        env.namespace,
    )
    .execute(conn)
    .await
    .map_err(|err| name_conflict(err, env))?;
    Ok(())
}

/// A live name or namespace taken: a conflict on `name` saying which.
pub(super) fn name_conflict(err: sqlx::Error, env: &NewEnvironment<'_>) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.constraint() == Some(UNIQUE_NAME) => Error::Conflict {
            field: "name".to_owned(),
            rule: format!(
                "{} already has an environment named `{}`",
                env.owner, env.name
            ),
        },
        sqlx::Error::Database(db) if db.constraint() == Some(UNIQUE_NAMESPACE) => Error::Conflict {
            field: "name".to_owned(),
            rule: format!(
                "namespace `{}` on cluster `{}` belongs to another live environment; choose another name",
                env.namespace, env.cluster
            ),
        },
        _ => err.into(),
    }
}
